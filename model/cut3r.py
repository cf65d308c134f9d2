"""CUT3R: continuous 3D reconstruction with a persistent state (Wang et al., 2025), as a PyTorch module.

Architecture (``ARCroco3DStereo``, checkpoint ``cut3r_512_dpt_4_64``), written from the public
description, parameter names equal to the official checkpoint so that it loads with ``strict=True``:

* image encoder: 16-px patch embedding, ViT-L (1024-d, 24 blocks, 16 heads) with 2D RoPE (base 100),
  final LayerNorm; a ray-map encoder (6-channel patch embedding + 2 blocks) kept for completeness;
* state: ``state_size`` (768) learned tokens (``register_tokens``) projected 1024 -> 768, laid out
  on a 2D grid of width 28 for RoPE;
* two interacting decoders (768-d, 12 blocks each): at every layer the state stream
  (``dec_blocks_state``, 16 heads) cross-attends to the previous image-stream output and the image
  stream (``dec_blocks``, 12 heads) cross-attends to the previous state-stream output;
* a camera (pose) token prepended to the frame's tokens (position (-1, -1)): the learned
  ``pose_token`` for the first frame, later read from a pose memory (``pose_retriever``) queried with
  the frame's mean encoder feature; after each frame the memory is written with (mean feature,
  output camera token);
* after each frame the state becomes the state stream's (normalised) output;
* heads (:mod:`vlm3r.model.cut3r_heads`): DPT point maps and the pose MLP.

A video is ONE recurrent sequence: frame t sees frames < t only through the state and pose memory.
Images enter normalised to [-1, 1] (``(rgb - 0.5) / 0.5``), (B, 3, H, W) with H, W multiples of 16.
"""

from __future__ import annotations

import pickle
import types
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import Cut3rConfig
from .cut3r_blocks import Block, DecoderBlock, HalfRoPE2D, PatchEmbed, RoPE2D, layer_norm
from .cut3r_heads import Pts3dPoseHead


class PoseRetriever(nn.Module):
    """CUT3R's local pose memory (``LocalMemory``): ``size`` slots of 2 x dec_dim channels, no RoPE."""

    def __init__(self, size: int, k_dim: int, v_dim: int, num_heads: int, depth: int = 2, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.v_dim = v_dim
        self.proj_q = nn.Linear(k_dim, v_dim)
        self.masked_token = nn.Parameter(torch.randn(1, 1, v_dim) * 0.2)
        self.mem = nn.Parameter(torch.randn(1, size, 2 * v_dim) * 0.2)
        self.write_blocks = nn.ModuleList([DecoderBlock(2 * v_dim, num_heads, mlp_ratio) for _ in range(depth)])
        self.read_blocks = nn.ModuleList([DecoderBlock(2 * v_dim, num_heads, mlp_ratio) for _ in range(depth)])

    def write(self, mem: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """New memory (B, size, 2V) after writing (key (B, 1, K), value (B, 1, V))."""
        feat = torch.cat([self.proj_q(key), value], dim=-1)
        for blk in self.write_blocks:
            mem = blk(mem, feat, None, None)
        return mem

    def read(self, query: torch.Tensor, mem: torch.Tensor) -> torch.Tensor:
        """Camera token (B, 1, V) for a frame whose mean encoder feature is ``query`` (B, 1, K)."""
        x = self.proj_q(query)
        x = torch.cat([x, self.masked_token.expand(x.shape[0], -1, -1)], dim=-1)
        for blk in self.read_blocks:
            x = blk(x, mem, None, None)
        return x[..., -self.v_dim :]


@dataclass
class Cut3rState:
    """Recurrent state of a batch of videos: state tokens (B, S, D), their positions (B, S, 2), pose memory (B, L, 2D)."""

    feat: torch.Tensor
    pos: torch.Tensor
    mem: torch.Tensor


@dataclass
class Cut3rFrameOutput:
    """One frame: ``tokens`` (B, 1 + h*w, D) = normalised last decoder layer, camera token first;
    ``heads`` the head outputs (see :mod:`vlm3r.model.cut3r_heads`) when requested."""

    tokens: torch.Tensor
    heads: dict[str, torch.Tensor] | None = None


class CUT3R(nn.Module):
    """The CUT3R network. ``state_dict()`` keys and shapes equal the official checkpoint's."""

    def __init__(self, cfg: Cut3rConfig) -> None:
        super().__init__()
        self.cfg = cfg
        enc, dec = cfg.enc_embed_dim, cfg.dec_embed_dim
        self.rope = RoPE2D(cfg.rope_freq)
        self.pose_token = nn.Parameter(torch.randn(1, 1, dec) * 0.02)
        self.masked_img_token = nn.Parameter(torch.randn(1, enc) * 0.02)
        self.masked_ray_map_token = nn.Parameter(torch.randn(1, enc) * 0.02)
        self.patch_embed = PatchEmbed(cfg.patch_size, 3, enc)
        self.patch_embed_ray_map = PatchEmbed(cfg.patch_size, 6, enc)
        enc_rope = HalfRoPE2D(self.rope) if cfg.encoder_rope_fp16 else self.rope
        self.enc_blocks = nn.ModuleList(
            [Block(enc, cfg.enc_num_heads, cfg.mlp_ratio, rope=enc_rope) for _ in range(cfg.enc_depth)]
        )
        self.enc_norm = layer_norm(enc)
        self.decoder_embed = nn.Linear(enc, dec)
        self.dec_blocks = nn.ModuleList(
            [DecoderBlock(dec, cfg.dec_num_heads, cfg.mlp_ratio, rope=self.rope) for _ in range(cfg.dec_depth)]
        )
        self.dec_norm = layer_norm(dec)
        self.enc_blocks_ray_map = nn.ModuleList(
            [Block(enc, cfg.ray_enc_num_heads, cfg.mlp_ratio, rope=self.rope) for _ in range(cfg.ray_enc_depth)]
        )
        self.enc_norm_ray_map = layer_norm(enc)
        self.pose_retriever = PoseRetriever(cfg.local_mem_size, enc, dec, cfg.dec_num_heads, mlp_ratio=cfg.mlp_ratio)
        self.register_tokens = nn.Embedding(cfg.state_size, enc)
        self.decoder_embed_state = nn.Linear(enc, dec)
        self.dec_blocks_state = nn.ModuleList(
            [DecoderBlock(dec, cfg.state_dec_num_heads, cfg.mlp_ratio, rope=self.rope) for _ in range(cfg.dec_depth)]
        )
        self.dec_norm_state = layer_norm(dec)
        self.downstream_head = Pts3dPoseHead(
            enc,
            dec,
            cfg.dec_num_heads,
            self.rope,
            feature_dim=cfg.dpt_feature_dim,
            layer_dims=cfg.dpt_layer_dims,
            patch_size=cfg.patch_size,
            rgb_head=cfg.rgb_head,
        )

    # ------------------------------------------------------------------ encoder
    def encode_images(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (N, 3, H, W) in [-1, 1] -> encoder tokens (N, h*w, enc_dim) and positions (N, h*w, 2)."""
        x, pos = self.patch_embed(images)
        for blk in self.enc_blocks:
            x = blk(x, pos)
        return self.enc_norm(x), pos

    def encode_ray_maps(self, ray_maps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Ray maps (N, 6, H, W) -> tokens (N, h*w, enc_dim); unused when only images are given."""
        x, pos = self.patch_embed_ray_map(ray_maps)
        for blk in self.enc_blocks_ray_map:
            x = blk(x, pos)
        return self.enc_norm_ray_map(x), pos

    # ------------------------------------------------------------------ state
    def state_positions(self, batch: int, device: torch.device | str) -> torch.Tensor:
        """2D layout of the state tokens: token i at (i // w, i % w), w = even ceiling of sqrt(state_size)."""
        width = int(self.cfg.state_size**0.5)
        width = width + 1 if width % 2 == 1 else width
        idx = torch.arange(self.cfg.state_size, device=device)
        return torch.stack([idx // width, idx % width], dim=-1)[None].expand(batch, -1, -1)

    def init_state(self, batch: int, device: torch.device | str, dtype: torch.dtype | None = None) -> Cut3rState:
        """Initial state for ``batch`` videos."""
        idx = torch.arange(self.cfg.state_size, device=device)
        feat = self.decoder_embed_state(self.register_tokens(idx))[None].expand(batch, -1, -1)
        mem = self.pose_retriever.mem.expand(batch, -1, -1)
        if dtype is not None:
            feat, mem = feat.to(dtype), mem.to(dtype)
        return Cut3rState(feat=feat, pos=self.state_positions(batch, device), mem=mem)

    # ------------------------------------------------------------------ decoder
    def decode(
        self,
        state_feat: torch.Tensor,
        state_pos: torch.Tensor,
        img_feat: torch.Tensor,
        img_pos: torch.Tensor,
        pose_feat: torch.Tensor,
        pose_pos: torch.Tensor,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Run the two interacting decoders on one frame.

        Returns the new state (B, S, D) (after ``dec_norm_state``) and the image-stream levels:
        ``[encoder tokens (B, P, enc_dim), layer 1, ..., layer L]``, each decoder level (B, 1 + P, D)
        with the camera token first, the last one after ``dec_norm``.
        """
        levels: list[torch.Tensor] = [img_feat]
        f_img = torch.cat([pose_feat, self.decoder_embed(img_feat)], dim=1)
        pos_img = torch.cat([pose_pos, img_pos], dim=1)
        f_state = state_feat
        for blk_state, blk_img in zip(self.dec_blocks_state, self.dec_blocks, strict=True):
            # Both streams read the other's output of the previous layer.
            f_state, f_img = blk_state(f_state, f_img, state_pos, pos_img), blk_img(f_img, f_state, pos_img, state_pos)
            levels.append(f_img)
        levels[-1] = self.dec_norm(levels[-1])
        return self.dec_norm_state(f_state), levels

    def step(
        self,
        state: Cut3rState,
        feat: torch.Tensor,
        pos: torch.Tensor,
        first: bool,
        image_size: tuple[int, int] | None = None,
    ) -> tuple[Cut3rState, Cut3rFrameOutput]:
        """Process one frame (encoder tokens ``feat`` (B, P, enc_dim)) and return the updated state.

        ``image_size`` (H, W) in pixels: when given, the heads run too.
        """
        batch = feat.shape[0]
        global_feat = feat.mean(dim=1, keepdim=True)
        if first:
            pose_feat = self.pose_token.expand(batch, -1, -1).to(feat.dtype)
        else:
            pose_feat = self.pose_retriever.read(global_feat, state.mem)
        pose_pos = torch.full((batch, 1, 2), -1, dtype=pos.dtype, device=pos.device)
        new_state, levels = self.decode(state.feat, state.pos, feat, pos, pose_feat, pose_pos)
        tokens = levels[-1]
        new_mem = self.pose_retriever.write(state.mem, global_feat, tokens[:, 0:1])
        heads = None
        if image_size is not None:
            depth = self.cfg.dec_depth
            head_in = [levels[0], levels[depth * 2 // 4][:, 1:], levels[depth * 3 // 4][:, 1:], levels[depth]]
            heads = self.downstream_head(head_in, image_size, pos)
        return Cut3rState(feat=new_state, pos=state.pos, mem=new_mem), Cut3rFrameOutput(tokens=tokens, heads=heads)

    def forward(self, images: torch.Tensor, run_heads: bool = False) -> list[Cut3rFrameOutput]:
        """Run videos ``images`` (B, T, 3, H, W) in [-1, 1] as one recurrent sequence each.

        Returns one :class:`Cut3rFrameOutput` per frame, in order. All frames are encoded in one
        batch; the decoders then run frame by frame.
        """
        if images.ndim != 5:
            raise ValueError(f"CUT3R expects (B, T, 3, H, W) videos, got shape {tuple(images.shape)}")
        b, t = images.shape[:2]
        image_size = (images.shape[-2], images.shape[-1]) if run_heads else None
        feat, pos = self.encode_images(images.flatten(0, 1))
        feat = feat.unflatten(0, (b, t))
        pos = pos.unflatten(0, (b, t))
        state = self.init_state(b, images.device, feat.dtype)
        outputs = []
        for i in range(t):
            state, out = self.step(state, feat[:, i], pos[:, i], first=i == 0, image_size=image_size)
            outputs.append(out)
        return outputs


class _Stub:
    """Stands in for a pickled class that is not importable here (never called for tensors)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def __setstate__(self, state: object) -> None:
        pass


class _LenientUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> object:
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            return _Stub


_lenient_pickle = types.SimpleNamespace(
    Unpickler=_LenientUnpickler, load=pickle.load, loads=pickle.loads, __name__="vlm3r_lenient_pickle"
)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Read a CUT3R state dict from ``.pth``/``.pt`` (optionally under ``"model"``) or ``.safetensors``.

    A ``module.`` prefix (DDP) is removed. Raises ``ValueError`` naming the file on unreadable input.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: CUT3R checkpoint not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        sd = load_file(str(path))
    else:
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
        except Exception as e:
            # The official file also pickles its training arguments (classes of the training code
            # base); those are replaced by inert stubs, the tensors load as usual.
            try:
                obj = torch.load(str(path), map_location="cpu", weights_only=False, pickle_module=_lenient_pickle)
            except Exception:
                raise ValueError(f"{path}: not a readable torch checkpoint ({e})") from e
        sd = obj.get("model", obj) if isinstance(obj, dict) else None
        if not isinstance(sd, dict):
            raise ValueError(f"{path}: expected a state dict or a dict with key 'model'")
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    return sd


def load_cut3r(path: Path, cfg: Cut3rConfig | None = None, device: torch.device | str = "cpu") -> CUT3R:
    """Build CUT3R and load a local checkpoint with ``strict=True`` (the official ``.pth`` works as is).

    ``cfg`` defaults to the paper configuration; a mismatch raises ``ValueError`` naming the file
    and the first differing keys.
    """
    path = Path(path)
    sd = read_state_dict(path)
    cfg = cfg or Cut3rConfig()
    with torch.device("meta"):
        model = CUT3R(cfg)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in sd.items()}
    if expected != got:
        missing = sorted(set(expected) - set(got))[:5]
        unexpected = sorted(set(got) - set(expected))[:5]
        shapes = [k for k in expected if k in got and expected[k] != got[k]][:5]
        raise ValueError(
            f"{path}: does not match the CUT3R config (missing {missing}, unexpected {unexpected}, shape mismatch {shapes})"
        )
    model = model.to_empty(device=device)
    model.load_state_dict(sd, strict=True)
    return model


class Cut3rEncoder(nn.Module):
    """Frozen CUT3R as the VLM's spatial encoder: frames -> per-frame 3D tokens.

    Always in eval mode, never requires grad, runs under ``torch.no_grad``. Input frames are RGB in
    [0, 1], (B, T, 3, H, W); they are resized (bilinear, antialiased) to ``img_size`` x ``img_size``
    and normalised to [-1, 1]. Output (B, T, 1 + P, D): the camera token followed by the P patch
    tokens of the last (normalised) decoder layer; P = 729 and D = 768 for the paper configuration.
    """

    def __init__(self, cut3r: CUT3R) -> None:
        super().__init__()
        self.cut3r = cut3r
        self.cut3r.requires_grad_(False)
        self.cut3r.eval()

    @property
    def img_size(self) -> int:
        return self.cut3r.cfg.img_size

    def train(self, mode: bool = True) -> "Cut3rEncoder":  # noqa: D102 - stays frozen
        super().train(False)
        return self

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, T, 3, H, W) RGB in [0, 1] -> (B, T, 3, S, S) in [-1, 1], S = ``img_size``."""
        if frames.ndim != 5 or frames.shape[2] != 3:
            raise ValueError(f"expected frames (B, T, 3, H, W), got {tuple(frames.shape)}")
        b, t = frames.shape[:2]
        x = frames.flatten(0, 1).float()
        s = self.img_size
        if x.shape[-2:] != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False, antialias=True)
        return ((x - 0.5) / 0.5).unflatten(0, (b, t))

    @torch.no_grad()
    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames (B, T, 3, H, W) in [0, 1] -> tokens (B, T, 1 + P, D), camera token first."""
        outs = self.cut3r(self.preprocess(frames).to(next(self.cut3r.parameters()).dtype))
        return torch.stack([o.tokens for o in outs], dim=1)
