"""VLM-3R: LLaVA-Video (transformers' LLaVA-OneVision classes) with CUT3R tokens fused into the visual stream.

Per video of T frames (paper: T = 32):

1. SigLIP (transformers ``SiglipVisionModel``, 384 px) -> hidden states of
   ``config.vision_feature_layer`` (the converted checkpoint keeps 26 layers, so -1 is the original
   layer -2): (T, 729, 1152);
2. CUT3R (:class:`~vlm3r.model.cut3r.Cut3rEncoder`, 432 px, one recurrent pass over the video) or
   cached tokens: (T, 730, 768);
3. :class:`~vlm3r.model.fusion.SpatialFusion` per frame: (T, 729, 1152);
4. transformers' 2-layer GELU projector (``multi_modal_projector``): (T, 729, 3584);
5. transformers' 2x2 bilinear pooling (``apply_pooling``, 27 -> 14): (T, 196, 3584);
6. one ``image_newline`` token after each row of each frame (LLaVA-Video's "grid" layout):
   (T * 14 * 15, 3584) = T * 210 tokens,

which replace the prompt's ``<video>`` placeholder tokens (exactly T * 210 of them per sample) in
the Qwen2 input embeddings. SigLIP, the projector, pooling, Qwen2, the loss and generation are
transformers' own; this module only adds the fusion and the glue.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import ModelConfig
from .cut3r import CUT3R, Cut3rEncoder, load_cut3r
from .fusion import SpatialFusion


def _require_transformers():
    try:
        import transformers
    except ImportError as e:  # pragma: no cover
        raise ImportError("the VLM-3R model needs transformers and peft: pip install 'vlm3r[model]'") from e
    return transformers


def llava_config(cfg: ModelConfig) -> Any:
    """transformers ``LlavaOnevisionConfig`` for ``cfg`` (SigLIP + Qwen2, 'full' features, last kept layer)."""
    tf = _require_transformers()
    vision = tf.SiglipVisionConfig(
        hidden_size=cfg.vision.hidden_size,
        intermediate_size=cfg.vision.intermediate_size,
        num_hidden_layers=cfg.vision.num_hidden_layers,
        num_attention_heads=cfg.vision.num_attention_heads,
        image_size=cfg.vision.image_size,
        patch_size=cfg.vision.patch_size,
        vision_use_head=False,
    )
    text = tf.Qwen2Config(
        vocab_size=cfg.text.vocab_size,
        hidden_size=cfg.text.hidden_size,
        intermediate_size=cfg.text.intermediate_size,
        num_hidden_layers=cfg.text.num_hidden_layers,
        num_attention_heads=cfg.text.num_attention_heads,
        num_key_value_heads=cfg.text.num_key_value_heads,
        max_position_embeddings=cfg.text.max_position_embeddings,
        rope_theta=cfg.text.rope_theta,
        rms_norm_eps=cfg.text.rms_norm_eps,
        initializer_range=cfg.text.initializer_range,
        tie_word_embeddings=False,
    )
    return tf.LlavaOnevisionConfig(
        vision_config=vision.to_dict(),
        text_config=text.to_dict(),
        image_token_index=cfg.image_token_id,
        video_token_index=cfg.video_token_id,
        vision_feature_select_strategy="full",
        vision_feature_layer=-1,
        tie_word_embeddings=False,
    )


def build_llava(
    cfg: ModelConfig, base_model_dir: Path | None = None, dtype: torch.dtype = torch.float32, seed: int = 0
) -> Any:
    """The LLaVA-OneVision/LLaVA-Video base: from a local transformers directory, or random (seeded) from ``cfg``.

    Never downloads (``local_files_only=True``). Raises ``ValueError`` when the directory's
    vision/text sizes disagree with ``cfg``.
    """
    tf = _require_transformers()
    if base_model_dir is not None:
        path = Path(base_model_dir)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path}: no config.json (expected a transformers LLaVA-OneVision directory)")
        model = tf.LlavaOnevisionForConditionalGeneration.from_pretrained(str(path), local_files_only=True, dtype=dtype)
        _check_base(cfg, model.config, path)
        return model
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = tf.LlavaOnevisionForConditionalGeneration(llava_config(cfg))
    return model.to(dtype)


def _check_base(cfg: ModelConfig, hf: Any, path: Path) -> None:
    checks = {
        "vision hidden_size": (hf.vision_config.hidden_size, cfg.vision.hidden_size),
        "vision image_size": (hf.vision_config.image_size, cfg.vision.image_size),
        "vision patch_size": (hf.vision_config.patch_size, cfg.vision.patch_size),
        "text hidden_size": (hf.text_config.hidden_size, cfg.text.hidden_size),
        "video_token_id": (hf.video_token_id, cfg.video_token_id),
    }
    for name, (got, want) in checks.items():
        if got != want:
            raise ValueError(f"{path}: {name} is {got}, the {cfg.name!r} model config expects {want}")


def siglip_pixels(frames: torch.Tensor, size: int) -> torch.Tensor:
    """RGB frames in [0, 1], (B, T, 3, H, W) -> SigLIP input (B, T, 3, size, size): bicubic resize, (x - 0.5) / 0.5."""
    if frames.ndim != 5 or frames.shape[2] != 3:
        raise ValueError(f"expected frames (B, T, 3, H, W), got {tuple(frames.shape)}")
    b, t = frames.shape[:2]
    x = frames.flatten(0, 1).float()
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    return ((x - 0.5) / 0.5).unflatten(0, (b, t))


class VLM3R(nn.Module):
    """The VLM-3R model. ``llava`` may be wrapped by peft (LoRA); see :mod:`vlm3r.model.lora`."""

    def __init__(self, cfg: ModelConfig, llava: nn.Module, fusion: SpatialFusion, spatial_encoder: Cut3rEncoder | None):
        super().__init__()
        self.cfg = cfg
        self.llava = llava
        self.fusion = fusion
        self.spatial_encoder = spatial_encoder

    # ----------------------------------------------------------------- parts
    @property
    def base(self) -> Any:
        """The unwrapped ``LlavaOnevisionForConditionalGeneration``."""
        get = getattr(self.llava, "get_base_model", None)
        return get() if get is not None else self.llava

    @property
    def projector(self) -> nn.Module:
        return self.base.model.multi_modal_projector

    @property
    def vision_tower(self) -> nn.Module:
        return self.base.model.vision_tower

    @property
    def tokens_per_frame(self) -> int:
        return self.cfg.tokens_per_frame

    def train(self, mode: bool = True) -> "VLM3R":
        super().train(mode)
        self.vision_tower.eval()  # frozen
        if self.spatial_encoder is not None:
            self.spatial_encoder.eval()
        return self

    # ----------------------------------------------------------------- features
    def visual_tokens(self, pixel_values_videos: torch.Tensor) -> torch.Tensor:
        """SigLIP input (B, T, 3, S, S) -> per-frame visual tokens (B*T, N_v, D_v) of the selected layer."""
        b, t = pixel_values_videos.shape[:2]
        tower = self.vision_tower
        dtype = next(tower.parameters()).dtype
        with torch.no_grad():
            out = tower(pixel_values_videos.flatten(0, 1).to(dtype), output_hidden_states=True)
        return out.hidden_states[self.base.config.vision_feature_layer]

    def spatial_tokens(self, cut3r_frames: torch.Tensor) -> torch.Tensor:
        """RGB frames in [0, 1] (B, T, 3, H, W) -> CUT3R tokens (B, T, 1 + P, D_s) (frozen, no grad)."""
        if self.spatial_encoder is None:
            raise ValueError("this VLM-3R model has no CUT3R encoder: pass cached spatial_tokens instead of frames")
        return self.spatial_encoder(cut3r_frames)

    def video_embeddings(
        self,
        pixel_values_videos: torch.Tensor,
        spatial_tokens: torch.Tensor | None = None,
        cut3r_frames: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """LM-space video tokens (B, T * tokens_per_frame, D_text): fuse, project, pool, add row newlines."""
        if (spatial_tokens is None) == (cut3r_frames is None):
            raise ValueError("give exactly one of spatial_tokens (cached) or cut3r_frames (computed on the fly)")
        if pixel_values_videos.ndim != 5:
            raise ValueError(f"pixel_values_videos must be (B, T, 3, H, W), got {tuple(pixel_values_videos.shape)}")
        b, t = pixel_values_videos.shape[:2]
        if spatial_tokens is None:
            spatial_tokens = self.spatial_tokens(cut3r_frames)
        if spatial_tokens.shape[:2] != (b, t):
            raise ValueError(f"spatial tokens for {tuple(spatial_tokens.shape[:2])} (videos, frames), visual for {(b, t)}")
        visual = self.visual_tokens(pixel_values_videos)
        fused = self.fusion(visual, spatial_tokens.flatten(0, 1).to(visual.device))
        feats = self.base.model.multi_modal_projector(fused)
        feats = self.base.model.apply_pooling(feats)  # (B*T, g*g, D)
        g = self.cfg.pooled_grid
        feats = feats.view(b * t, g, g, -1)
        newline = self.base.model.image_newline.to(feats.dtype).expand(b * t, g, 1, -1)
        feats = torch.cat([feats, newline], dim=2)  # newline after every row
        return feats.reshape(b, t * g * (g + 1), -1)

    def embed(self, input_ids: torch.Tensor, video_embeds: torch.Tensor) -> torch.Tensor:
        """Token embeddings with the ``<video>`` placeholders replaced by ``video_embeds`` (B, N, D) in order."""
        embeds = self.base.get_input_embeddings()(input_ids)
        mask = input_ids == self.cfg.video_token_id
        counts = mask.sum(dim=1)
        n = video_embeds.shape[1]
        if video_embeds.shape[0] != input_ids.shape[0] or bool((counts != n).any()):
            raise ValueError(
                f"each sample needs exactly {n} <video> tokens (frames x {self.tokens_per_frame}); got {counts.tolist()}"
            )
        return embeds.masked_scatter(mask[..., None], video_embeds.to(embeds.dtype))

    # ----------------------------------------------------------------- forward / generate
    def forward(
        self,
        input_ids: torch.Tensor,
        pixel_values_videos: torch.Tensor,
        spatial_tokens: torch.Tensor | None = None,
        cut3r_frames: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> Any:
        """Causal-LM output (``loss`` when ``labels`` are given, ``logits`` (B, L, vocab))."""
        video = self.video_embeddings(pixel_values_videos, spatial_tokens, cut3r_frames)
        embeds = self.embed(input_ids, video)
        return self.llava(inputs_embeds=embeds, attention_mask=attention_mask, labels=labels, **kwargs)

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        pixel_values_videos: torch.Tensor,
        spatial_tokens: torch.Tensor | None = None,
        cut3r_frames: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        **generate_kwargs: Any,
    ) -> torch.Tensor:
        """transformers generation from the fused prompt embeddings; returns only the new token ids (B, n)."""
        video = self.video_embeddings(pixel_values_videos, spatial_tokens, cut3r_frames)
        embeds = self.embed(input_ids, video)
        if attention_mask is None:
            attention_mask = torch.ones(input_ids.shape, dtype=torch.long, device=input_ids.device)
        return self.llava.generate(inputs_embeds=embeds, attention_mask=attention_mask, **generate_kwargs)


def build_cut3r_encoder(
    cfg: ModelConfig, checkpoint: Path | None = None, dtype: torch.dtype = torch.float32, seed: int = 0
) -> Cut3rEncoder:
    """Frozen CUT3R: the official weights from a local ``checkpoint`` (strict), or random (seeded) for tests/benchmarks."""
    if checkpoint is not None:
        net = load_cut3r(Path(checkpoint), cfg.cut3r)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            net = CUT3R(cfg.cut3r)
    return Cut3rEncoder(net.to(dtype))


def cut3r_dtype(cfg: ModelConfig, device: str | torch.device | None = None) -> torch.dtype:
    """CUT3R's dtype: ``cfg.cut3r.compute_dtype`` on a GPU (float16 for the paper, as VLM-3R runs
    CUT3R), float32 on a CPU (where float16 matmuls are slow and VLM-3R never runs).

    One recurrent sequence per video, always: VLM-3R's ``prepare_input`` stacks a batch's videos
    as one frame sequence (marked FIXME there), which lets one video's state leak into the next;
    here each video of a batch is its own sequence (the batch dimension: one recurrent state per video)."""
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = getattr(torch, cfg.cut3r.compute_dtype, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"cut3r.compute_dtype {cfg.cut3r.compute_dtype!r}: not a torch dtype (float32, float16, bfloat16)")
    return dtype if dev.type == "cuda" else torch.float32


def build_fusion(cfg: ModelConfig, dtype: torch.dtype = torch.float32, seed: int = 0) -> SpatialFusion:
    """The fusion block, seeded initialisation."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fusion = SpatialFusion(cfg.fusion)
    return fusion.to(dtype)


def build_vlm3r(
    cfg: ModelConfig,
    base_model_dir: Path | None = None,
    cut3r_checkpoint: Path | None = None,
    with_cut3r: bool = True,
    lora: bool = True,
    dtype: torch.dtype = torch.float32,
    seed: int = 0,
) -> VLM3R:
    """Assemble VLM-3R for training: base LLaVA (local dir or random), CUT3R (local checkpoint or random),
    fusion; LoRA applied and trainability set (LoRA + fusion + projector) when ``lora``."""
    llava = build_llava(cfg, base_model_dir, dtype=dtype, seed=seed)
    encoder = build_cut3r_encoder(cfg, cut3r_checkpoint, dtype=cut3r_dtype(cfg), seed=seed + 1) if with_cut3r else None
    fusion = build_fusion(cfg, dtype=dtype, seed=seed + 2)
    if lora:
        from .lora import apply_lora, set_trainable

        model = VLM3R(cfg, apply_lora(llava, cfg.lora), fusion, encoder)
        set_trainable(model)
        return model
    return VLM3R(cfg, llava, fusion, encoder)
