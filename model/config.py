"""Model configurations: ``paper`` (VLM-3R at full size) and ``tiny`` (every component tiny, for CPU tests).

Both go through the same builders (:mod:`vlm3r.model.vlm`); only the numbers differ. All
configurations are plain, JSON-serialisable dataclasses (:func:`config_to_dict` /
:func:`config_from_dict`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

TokenSelection = Literal["all", "camera", "patch"]


@dataclass(frozen=True)
class Cut3rConfig:
    """CUT3R (``ARCroco3DStereo``) sizes. Defaults are the official ``cut3r_512_dpt_4_64`` model.

    ``img_size`` is the square side (pixels) frames are resized to for the VLM (432 -> 27 x 27 = 729
    patches of 16 px).
    """

    img_size: int = 432
    patch_size: int = 16
    enc_embed_dim: int = 1024
    enc_depth: int = 24
    enc_num_heads: int = 16
    dec_embed_dim: int = 768
    dec_depth: int = 12
    dec_num_heads: int = 12
    state_size: int = 768
    state_dec_num_heads: int = 16
    ray_enc_depth: int = 2
    ray_enc_num_heads: int = 16
    local_mem_size: int = 256
    mlp_ratio: float = 4.0
    rope_freq: float = 100.0
    dpt_feature_dim: int = 256
    dpt_layer_dims: tuple[int, int, int, int] = (96, 192, 384, 768)
    rgb_head: bool = True
    encoder_rope_fp16: bool = True  # the image encoder's RoPE on float16 q/k, as the official code (model.cut3r_blocks.HalfRoPE2D)
    compute_dtype: str = "float16"  # CUT3R's weights and compute on a GPU, as VLM-3R runs it; a CPU uses float32

    @property
    def grid(self) -> int:
        """Patches per side at ``img_size``."""
        return self.img_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid * self.grid


@dataclass(frozen=True)
class FusionConfig:
    """Spatial-visual-view fusion: visual tokens (``visual_dim``) attend over 3D tokens (``spatial_dim``)."""

    visual_dim: int = 1152
    spatial_dim: int = 768
    num_heads: int = 18
    dropout: float = 0.1
    tokens: TokenSelection = "all"


@dataclass(frozen=True)
class VisionConfig:
    """SigLIP vision tower (HF ``SiglipVisionConfig`` fields). Paper: so400m/14 at 384 px, 26 layers."""

    hidden_size: int = 1152
    intermediate_size: int = 4304
    num_hidden_layers: int = 26
    num_attention_heads: int = 16
    image_size: int = 384
    patch_size: int = 14

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size


@dataclass(frozen=True)
class TextConfig:
    """Qwen2 language model (HF ``Qwen2Config`` fields). Paper: Qwen2-7B (LLaVA-Video-7B-Qwen2)."""

    vocab_size: int = 152064
    hidden_size: int = 3584
    intermediate_size: int = 18944
    num_hidden_layers: int = 28
    num_attention_heads: int = 28
    num_key_value_heads: int = 4
    max_position_embeddings: int = 32768
    rope_theta: float = 1_000_000.0
    rms_norm_eps: float = 1e-6
    initializer_range: float = 0.02  # std of random (untrained) weights; the tiny model needs more (see tiny_config)


@dataclass(frozen=True)
class LoraSettings:
    """peft LoRA on the language model's linear layers (never ``lm_head``)."""

    r: int = 128
    alpha: int = 256
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True)
class ModelConfig:
    """The whole VLM-3R model."""

    name: str
    cut3r: Cut3rConfig = field(default_factory=Cut3rConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)
    vision: VisionConfig = field(default_factory=VisionConfig)
    text: TextConfig = field(default_factory=TextConfig)
    lora: LoraSettings = field(default_factory=LoraSettings)
    num_frames: int = 32
    time_instruction: bool = True  # VLM-3R's "The video lasts for ..." line in the first user turn
    image_token_id: int = 151646
    video_token_id: int = 151647

    @property
    def pooled_grid(self) -> int:
        """Side of the 2x2-bilinear-pooled visual grid (27 -> 14 in the paper)."""
        return -(-self.vision.grid // 2)

    @property
    def tokens_per_frame(self) -> int:
        """LM tokens per frame: pooled grid plus one newline token per row (14 * 14 + 14 = 210)."""
        return self.pooled_grid * (self.pooled_grid + 1)

    def __post_init__(self) -> None:
        if self.fusion.visual_dim != self.vision.hidden_size:
            raise ValueError(f"fusion.visual_dim {self.fusion.visual_dim} != vision.hidden_size {self.vision.hidden_size}")
        if self.fusion.spatial_dim != self.cut3r.dec_embed_dim:
            raise ValueError(f"fusion.spatial_dim {self.fusion.spatial_dim} != cut3r.dec_embed_dim {self.cut3r.dec_embed_dim}")


def paper_config() -> ModelConfig:
    """VLM-3R as in the paper: CUT3R 512-DPT at 432 px, SigLIP so400m, Qwen2-7B, LoRA r=128."""
    return ModelConfig(name="paper")


def tiny_config() -> ModelConfig:
    """Every component tiny (2 blocks, 32-64-d, 32 px CUT3R frames, 42 px SigLIP frames); real Qwen2 vocab."""
    return ModelConfig(
        name="tiny",
        cut3r=Cut3rConfig(
            img_size=32,
            enc_embed_dim=64,
            enc_depth=2,
            enc_num_heads=4,
            dec_embed_dim=48,
            dec_depth=2,
            dec_num_heads=4,
            state_size=16,
            state_dec_num_heads=4,
            ray_enc_depth=1,
            ray_enc_num_heads=4,
            local_mem_size=8,
            dpt_feature_dim=16,
            dpt_layer_dims=(8, 8, 16, 16),
            compute_dtype="float32",
        ),
        fusion=FusionConfig(visual_dim=32, spatial_dim=48, num_heads=4),
        vision=VisionConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=42, patch_size=14
        ),
        text=TextConfig(
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=4096,
            initializer_range=0.3,  # with 0.02 a 64-d random lm_head gives logits within +-1.3: nothing can be learned
        ),
        lora=LoraSettings(r=8, alpha=16),
        num_frames=4,
    )


CONFIGS = {"paper": paper_config, "tiny": tiny_config}


def get_config(name: str) -> ModelConfig:
    """``paper`` or ``tiny``."""
    try:
        return CONFIGS[name]()
    except KeyError:
        raise ValueError(f"unknown model config {name!r}; choose from {sorted(CONFIGS)}") from None


def config_to_dict(cfg: ModelConfig) -> dict[str, Any]:
    """JSON-ready dict of a :class:`ModelConfig`."""
    return asdict(cfg)


def config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """Inverse of :func:`config_to_dict` (tuples restored, unknown keys rejected)."""
    sub = {"cut3r": Cut3rConfig, "fusion": FusionConfig, "vision": VisionConfig, "text": TextConfig, "lora": LoraSettings}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key in sub:
            cls = sub[key]
            names = {f.name: f for f in dataclasses.fields(cls)}
            unknown = set(value) - set(names)
            if unknown:
                raise ValueError(f"model config: unknown {key} keys {sorted(unknown)}")
            kwargs[key] = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in value.items()})
        else:
            kwargs[key] = value
    return ModelConfig(**kwargs)
