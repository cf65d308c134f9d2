"""Spatial-visual-view fusion (VLM-3R): visual tokens attend over the frame's CUT3R tokens.

Per frame: LayerNorm both streams; the visual tokens (N_v x 1152, SigLIP) are projected to queries,
the selected 3D tokens (camera 1 x 768 and/or patches 729 x 768) to keys and values (768 -> 1152);
18-head attention; output projection; LayerNorm; residual add of the ORIGINAL visual tokens;
dropout 0.1. Shapes are kept: (frames, N_v, 1152) in, (frames, N_v, 1152) out. Sub-module names
follow VLM-3R's released fusion block (``clip_norm``, ``spatial_encoder_norm``, ``clip_query_proj``,
``spatial_encoder_key_proj``, ``spatial_encoder_value_proj``, ``cross_attention``, ``out_proj``,
``out_norm``) so its weights load directly.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .config import FusionConfig, TokenSelection


def select_spatial_tokens(tokens: torch.Tensor, which: TokenSelection) -> torch.Tensor:
    """From (..., 1 + P, D) CUT3R tokens (camera first) keep ``all``, the ``camera`` token, or the ``patch`` tokens."""
    if which == "all":
        return tokens
    if which == "camera":
        return tokens[..., :1, :]
    if which == "patch":
        return tokens[..., 1:, :]
    raise ValueError(f"unknown spatial token selection {which!r} (all, camera, patch)")


class SpatialFusion(nn.Module):
    """Cross-attention fusion block; see the module docstring."""

    def __init__(self, cfg: FusionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.visual_dim
        self.clip_norm = nn.LayerNorm(d)
        self.spatial_encoder_norm = nn.LayerNorm(cfg.spatial_dim)
        self.clip_query_proj = nn.Linear(d, d)
        self.spatial_encoder_key_proj = nn.Linear(cfg.spatial_dim, d)
        self.spatial_encoder_value_proj = nn.Linear(cfg.spatial_dim, d)
        self.cross_attention = nn.MultiheadAttention(d, cfg.num_heads, batch_first=True)
        self.out_norm = nn.LayerNorm(d)
        self.out_proj = nn.Linear(d, d)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, visual: torch.Tensor, spatial: torch.Tensor) -> torch.Tensor:
        """``visual`` (F, N_v, visual_dim), ``spatial`` (F, 1 + P, spatial_dim) -> (F, N_v, visual_dim).

        F indexes frames (of any number of videos); frame f's visual tokens only see frame f's 3D tokens.
        """
        if visual.shape[0] != spatial.shape[0]:
            raise ValueError(f"fusion: {visual.shape[0]} visual frames but {spatial.shape[0]} spatial frames")
        spatial = select_spatial_tokens(spatial, self.cfg.tokens).to(visual.dtype)
        v = self.clip_norm(visual)
        s = self.spatial_encoder_norm(spatial)
        q = self.clip_query_proj(v)
        k = self.spatial_encoder_key_proj(s)
        val = self.spatial_encoder_value_proj(s)
        attended, _ = self.cross_attention(q, k, val, need_weights=False)
        fused = self.out_norm(self.out_proj(attended)) + visual
        return self.dropout(fused)
