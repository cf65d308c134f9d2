"""Transformer building blocks of CUT3R (CroCo / DUSt3R lineage), with 2D rotary positions.

Tensors are ``(batch, tokens, channels)``; positions are integer ``(batch, tokens, 2)`` grid
coordinates ``(row, column)`` of each token (patch grid for images, a fixed 2D layout for the state
tokens, ``(-1, -1)`` for the camera/pose token). Sub-module names follow the official checkpoint
(``norm1``, ``attn.qkv``, ``cross_attn.projq``, ``norm_y``, ``mlp.fc1`` ...).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

#: LayerNorm epsilon used everywhere in CUT3R (CroCo's ``partial(nn.LayerNorm, eps=1e-6)``).
LN_EPS = 1e-6


def layer_norm(dim: int) -> nn.LayerNorm:
    """CroCo's LayerNorm (eps 1e-6)."""
    return nn.LayerNorm(dim, eps=LN_EPS)


def _c_float_math() -> tuple[Callable[[float, float], float], Callable[[float], float], Callable[[float], float]] | None:
    """The C library's ``powf``, ``cosf`` and ``sinf`` (the functions the official ``curope`` CPU
    kernel calls), or ``None`` where no C maths library can be loaded."""
    import ctypes
    import ctypes.util

    try:
        lib = ctypes.CDLL(ctypes.util.find_library("m") or None)
        powf, cosf, sinf = lib.powf, lib.cosf, lib.sinf
    except (OSError, AttributeError):
        return None
    powf.argtypes, powf.restype = [ctypes.c_float, ctypes.c_float], ctypes.c_float
    for f in (cosf, sinf):
        f.argtypes, f.restype = [ctypes.c_float], ctypes.c_float
    return powf, cosf, sinf


class RoPE2D(nn.Module):
    """2D rotary position embedding (RoPE100): half the head channels rotate with the row, half with the column.

    Within each half of ``2q`` channels, channel ``j`` pairs with ``j + q`` (rotate-half) and turns by
    ``angle = position / base ** (j / q)``. The arithmetic is the official ``curope`` CPU kernel's
    (``rope_2d_cpu``), so that both give the same bits: ``j / q`` and the angle are float32
    divisions; ``powf``, ``cosf`` and ``sinf`` are the C library's, tabulated once for positions
    -1 ... :attr:`TABLE_POSITIONS` - 2 (a position outside, or a platform without a C maths library,
    uses float64 rounded to float32, equal to the C functions on ~99% of the values); then
    ``u*c - v*s`` and ``v*c + u*s`` in float32. No parameters, no buffers.
    """

    #: Positions tabulated: -1 (the pose token) to 254 (images up to 4080 px a side at 16 px patches).
    TABLE_POSITIONS = 256

    def __init__(self, base: float = 100.0) -> None:
        super().__init__()
        self.base = float(base)
        self._tables: dict[tuple[int, torch.device], tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}

    def _table(self, q: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(float32 denominators (q,), cos (P, q), sin (P, q)) for positions -1 ... P - 2, on ``device``."""
        key = (q, device)
        if key not in self._tables:
            c_math = _c_float_math()
            exponent = np.arange(q, dtype=np.float32) / np.float32(q)
            if c_math is not None:
                powf, cosf, sinf = c_math
                denom = np.array([powf(self.base, float(e)) for e in exponent], dtype=np.float32)
            else:
                denom = (np.float64(self.base) ** exponent.astype(np.float64)).astype(np.float32)
            angles = np.arange(-1, self.TABLE_POSITIONS - 1, dtype=np.float32)[:, None] / denom  # float32
            if c_math is not None:
                cos = np.vectorize(lambda a: cosf(float(a)), otypes=[np.float32])(angles)
                sin = np.vectorize(lambda a: sinf(float(a)), otypes=[np.float32])(angles)
            else:
                cos, sin = np.cos(angles.astype(np.float64)), np.sin(angles.astype(np.float64))
            self._tables[key] = tuple(torch.from_numpy(t.astype(np.float32)).to(device) for t in (denom, cos, sin))  # type: ignore[assignment]
        return self._tables[key]

    def _cos_sin(self, pos: torch.Tensor, q: int) -> tuple[torch.Tensor, torch.Tensor]:
        """cos, sin (B, 1, N, q), float32, of the angles for positions ``pos`` (B, N)."""
        denom, cos_table, sin_table = self._table(q, pos.device)
        index = pos.long() + 1
        inside = (index >= 0) & (index < cos_table.shape[0])
        if pos.device.type == "cpu" and bool(inside.all()):  # the usual case; a free check on a CPU
            return cos_table[index][:, None], sin_table[index][:, None]
        # Elsewhere without a device sync: positions outside the table from float64.
        index, inside = index.clamp(0, cos_table.shape[0] - 1), inside[..., None]
        wide = torch.float32 if pos.device.type == "mps" else torch.float64  # MPS has no float64
        angles = (pos.to(torch.float32)[..., None] / denom).to(wide)
        cos = torch.where(inside, cos_table[index], angles.cos().float())
        sin = torch.where(inside, sin_table[index], angles.sin().float())
        return cos[:, None], sin[:, None]

    def _rope1d(self, x: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        # x: (B, H, N, 2q) float32; pos: (B, N)
        q = x.shape[-1] // 2
        cos, sin = self._cos_sin(pos, q)
        u, v = x[..., :q], x[..., q:]
        return torch.cat((u * cos - v * sin, v * cos + u * sin), dim=-1)

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Rotate ``tokens`` (B, heads, N, head_dim) by ``positions`` (B, N, 2); computed in float32."""
        if tokens.shape[-1] % 4 != 0:
            raise ValueError(f"RoPE2D needs a head dimension divisible by 4, got {tokens.shape[-1]}")
        dtype = tokens.dtype
        y, x = tokens.float().chunk(2, dim=-1)
        y = self._rope1d(y, positions[..., 0])
        x = self._rope1d(x, positions[..., 1])
        return torch.cat((y, x), dim=-1).to(dtype)


class HalfRoPE2D(nn.Module):
    """``rope`` on float16 tokens, as the official image encoder runs it (CroCo's ``Attention`` and
    ``CrossAttention`` cast q and k to float16 before RoPE; the curope kernel reads the half values,
    computes in float32 and stores float16), then back to the tokens' dtype. Only CUT3R's 24 image
    encoder blocks do this; its decoders, ray-map encoder and heads use float32 RoPE."""

    def __init__(self, rope: RoPE2D) -> None:
        super().__init__()
        self.rope = rope

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        half = tokens.to(torch.float16).float()
        return self.rope(half, positions).to(torch.float16).to(tokens.dtype)


class Mlp(nn.Module):
    """fc1 -> GELU -> fc2."""

    def __init__(self, in_features: int, hidden_features: int, out_features: int | None = None) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, out_features or in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Attention(nn.Module):
    """Multi-head self-attention with a fused ``qkv`` projection and optional 2D RoPE on q and k."""

    def __init__(self, dim: int, num_heads: int, rope: RoPE2D | None = None, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.rope = rope

    def forward(self, x: torch.Tensor, xpos: torch.Tensor | None) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        if self.rope is not None and xpos is not None:
            q = self.rope(q, xpos)
            k = self.rope(k, xpos)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class CrossAttention(nn.Module):
    """Multi-head cross-attention (separate ``projq``/``projk``/``projv``), RoPE on q and k."""

    def __init__(self, dim: int, num_heads: int, rope: RoPE2D | None = None, qkv_bias: bool = True) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.projq = nn.Linear(dim, dim, bias=qkv_bias)
        self.projk = nn.Linear(dim, dim, bias=qkv_bias)
        self.projv = nn.Linear(dim, dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.rope = rope

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        b, n, c = t.shape
        return t.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        qpos: torch.Tensor | None,
        kpos: torch.Tensor | None,
    ) -> torch.Tensor:
        b, nq, c = query.shape
        q, k, v = self._heads(self.projq(query)), self._heads(self.projk(key)), self._heads(self.projv(value))
        if self.rope is not None:
            if qpos is not None:
                q = self.rope(q, qpos)
            if kpos is not None:
                k = self.rope(k, kpos)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, nq, c))


class Block(nn.Module):
    """Pre-norm ViT block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, rope: RoPE2D | None = None) -> None:
        super().__init__()
        self.norm1 = layer_norm(dim)
        self.attn = Attention(dim, num_heads, rope=rope)
        self.norm2 = layer_norm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, xpos: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), xpos)
        return x + self.mlp(self.norm2(x))


class DecoderBlock(nn.Module):
    """CroCo decoder block: self-attention, cross-attention to the normalised other stream, MLP.

    ``forward(x, y, xpos, ypos)`` returns the updated ``x``; ``y`` is only read.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, rope: RoPE2D | None = None) -> None:
        super().__init__()
        self.norm1 = layer_norm(dim)
        self.attn = Attention(dim, num_heads, rope=rope)
        self.cross_attn = CrossAttention(dim, num_heads, rope=rope)
        self.norm2 = layer_norm(dim)
        self.norm3 = layer_norm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.norm_y = layer_norm(dim)

    def forward(
        self, x: torch.Tensor, y: torch.Tensor, xpos: torch.Tensor | None, ypos: torch.Tensor | None
    ) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), xpos)
        y_ = self.norm_y(y)
        x = x + self.cross_attn(self.norm2(x), y_, y_, xpos, ypos)
        return x + self.mlp(self.norm3(x))


class ModLN(nn.Module):
    """adaLN: LayerNorm(x) * (1 + scale) + shift, with (shift, scale) = Linear(SiLU(cond))."""

    def __init__(self, dim: int, cond_dim: int) -> None:
        super().__init__()
        self.norm = layer_norm(dim)
        self.mlp = nn.Sequential(nn.SiLU(), nn.Linear(cond_dim, dim * 2))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        shift, scale = self.mlp(cond).chunk(2, dim=-1)  # (B, D) each
        return self.norm(x) * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class ConditionModulationBlock(nn.Module):
    """ViT block whose two LayerNorms are modulated by a condition vector (the camera token)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, rope: RoPE2D | None = None) -> None:
        super().__init__()
        self.norm1 = ModLN(dim, dim)
        self.attn = Attention(dim, num_heads, rope=rope)
        self.norm2 = ModLN(dim, dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, cond: torch.Tensor, xpos: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x, cond), xpos)
        return x + self.mlp(self.norm2(x, cond))


class PatchEmbed(nn.Module):
    """Non-overlapping patch projection; returns tokens (B, h*w, D) and (row, col) positions (B, h*w, 2)."""

    def __init__(self, patch_size: int, in_chans: int, embed_dim: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, _, h, w = x.shape
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"image size {h}x{w} is not a multiple of the patch size {self.patch_size}")
        x = self.proj(x)
        gh, gw = x.shape[-2:]
        pos = grid_positions(gh, gw, x.device).expand(b, -1, -1)
        return x.flatten(2).transpose(1, 2), pos


def grid_positions(h: int, w: int, device: torch.device | str) -> torch.Tensor:
    """Row-major (row, col) integer positions of an h x w grid, shape (1, h*w, 2)."""
    rows = torch.arange(h, device=device)
    cols = torch.arange(w, device=device)
    return torch.cartesian_prod(rows, cols)[None]
