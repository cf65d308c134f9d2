"""CUT3R's output heads: DPT point-map heads (self view, world/"cross" view, RGB) and the pose MLP.

The heads read four decoder levels per frame: the encoder tokens (``enc_dim``), two intermediate
image-decoder outputs and the final one (``dec_dim``), all (B, h*w, C) on an h x w patch grid of
16-px patches. Outputs are dense maps at the input resolution:

* ``pts3d_in_self_view`` (B, H, W, 3): points in the frame's own camera (OpenCV: x right, y down,
  z forward; units are CUT3R's normalised scene scale, not metres),
* ``pts3d_in_other_view`` (B, H, W, 3): the same points in the first frame's camera,
* ``conf_self``, ``conf`` (B, H, W): confidences ``1 + exp(x)``,
* ``rgb`` (B, H, W, 3) in [-1, 1],
* ``camera_pose`` (B, 7): translation (3) and unit quaternion (w, x, y, z) of camera-to-first-camera.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .cut3r_blocks import ConditionModulationBlock, Mlp, RoPE2D


class _ResidualConvUnit(nn.Module):
    def __init__(self, features: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(features, features, 3, padding=1)
        self.conv2 = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1(F.relu(x))
        out = self.conv2(F.relu(out))
        return out + x


class _FusionBlock(nn.Module):
    """DPT refinement: add the (refined) skip input, refine, upsample x2 (bilinear, corners aligned), 1x1 conv."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.out_conv = nn.Conv2d(features, features, 1)
        self.resConfUnit1 = _ResidualConvUnit(features)
        self.resConfUnit2 = _ResidualConvUnit(features)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        if skip is not None:
            x = x + self.resConfUnit1(skip)
        x = self.resConfUnit2(x)
        x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
        return self.out_conv(x)


class _Interpolate(nn.Module):
    def __init__(self, scale_factor: float) -> None:
        super().__init__()
        self.scale_factor = scale_factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=self.scale_factor, mode="bilinear", align_corners=True)


class DPTHead(nn.Module):
    """DPT decoder over four token levels -> a dense map with ``num_channels`` channels at full resolution."""

    def __init__(
        self,
        dim_tokens: tuple[int, int, int, int],
        num_channels: int,
        feature_dim: int = 256,
        layer_dims: tuple[int, int, int, int] = (96, 192, 384, 768),
        patch_size: int = 16,
    ) -> None:
        super().__init__()
        self.patch_size = patch_size
        scratch = nn.Module()
        convs = [nn.Conv2d(layer_dims[i], feature_dim, 3, padding=1, bias=False) for i in range(4)]
        scratch.layer1_rn, scratch.layer2_rn, scratch.layer3_rn, scratch.layer4_rn = convs
        scratch.layer_rn = nn.ModuleList(convs)  # the official module registers them twice
        scratch.refinenet1 = _FusionBlock(feature_dim)
        scratch.refinenet2 = _FusionBlock(feature_dim)
        scratch.refinenet3 = _FusionBlock(feature_dim)
        scratch.refinenet4 = _FusionBlock(feature_dim)
        self.scratch = scratch
        last_dim = feature_dim // 2
        self.head = nn.Sequential(
            nn.Conv2d(feature_dim, feature_dim // 2, 3, padding=1),
            _Interpolate(patch_size / 8),
            nn.Conv2d(feature_dim // 2, last_dim, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(last_dim, num_channels, 1),
        )
        d0, d1, d2, d3 = layer_dims
        self.act_postprocess = nn.ModuleList(
            [
                nn.Sequential(nn.Conv2d(dim_tokens[0], d0, 1), nn.ConvTranspose2d(d0, d0, 4, stride=4)),
                nn.Sequential(nn.Conv2d(dim_tokens[1], d1, 1), nn.ConvTranspose2d(d1, d1, 2, stride=2)),
                nn.Sequential(nn.Conv2d(dim_tokens[2], d2, 1)),
                nn.Sequential(nn.Conv2d(dim_tokens[3], d3, 1), nn.Conv2d(d3, d3, 3, stride=2, padding=1)),
            ]
        )

    def forward(self, levels: list[torch.Tensor], image_size: tuple[int, int]) -> torch.Tensor:
        """``levels``: four (B, h*w, C_i) token maps; returns (B, num_channels, H, W)."""
        gh, gw = image_size[0] // self.patch_size, image_size[1] // self.patch_size
        maps = []
        for i, tokens in enumerate(levels):
            # (B, h*w, C) -> (B, C, h, w) as a channels-last view of a contiguous copy, the layout the
            # official head (einops ``rearrange``) gives its convolutions: CPU convolutions round
            # differently per memory layout.
            x = tokens.contiguous().unflatten(1, (gh, gw)).permute(0, 3, 1, 2)
            maps.append(self.scratch.layer_rn[i](self.act_postprocess[i](x)))
        path4 = self.scratch.refinenet4(maps[3])[:, :, : maps[2].shape[2], : maps[2].shape[3]]
        path3 = self.scratch.refinenet3(path4, maps[2])
        path2 = self.scratch.refinenet2(path3, maps[1])
        path1 = self.scratch.refinenet1(path2, maps[0])
        return self.head(path1)


class PoseHead(nn.Module):
    """Camera token (B, D) -> raw pose (B, 7): translation (3) + quaternion (4)."""

    def __init__(self, dim: int, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        self.mlp = Mlp(dim, int(dim * mlp_ratio), 7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x)


def _points_exp(xyz: torch.Tensor) -> torch.Tensor:
    d = xyz.norm(dim=-1, keepdim=True)
    return xyz / d.clip(min=1e-8) * torch.expm1(d)


def _conf_exp(x: torch.Tensor, vmin: float = 1.0) -> torch.Tensor:
    return vmin + x.exp()


def _pose_exp(raw: torch.Tensor) -> torch.Tensor:
    trans, quat = raw[..., :3], raw[..., 3:7]
    d = trans.norm(dim=-1, keepdim=True)
    trans = trans * (torch.expm1(d) / d.clip(min=1e-8))
    quat = F.normalize(quat, p=2, dim=-1)
    quat = torch.where(quat[..., :1] < 0, -quat, quat)
    return torch.cat([trans, quat], dim=-1)


class Pts3dPoseHead(nn.Module):
    """CUT3R's ``DPTPts3dPose`` head (points in self and first view, RGB, pose); float32 throughout."""

    def __init__(
        self,
        enc_dim: int,
        dec_dim: int,
        dec_num_heads: int,
        rope: RoPE2D,
        feature_dim: int = 256,
        layer_dims: tuple[int, int, int, int] = (96, 192, 384, 768),
        patch_size: int = 16,
        rgb_head: bool = True,
    ) -> None:
        super().__init__()
        dims = (enc_dim, dec_dim, dec_dim, dec_dim)
        self.dpt_self = DPTHead(dims, 4, feature_dim, layer_dims, patch_size)
        self.final_transform = nn.ModuleList(
            [ConditionModulationBlock(dec_dim, dec_num_heads, rope=rope) for _ in range(2)]
        )
        self.dpt_cross = DPTHead(dims, 4, feature_dim, layer_dims, patch_size)
        self.dpt_rgb = DPTHead(dims, 3, feature_dim, layer_dims, patch_size) if rgb_head else None
        self.pose_head = PoseHead(dec_dim)

    def forward(
        self, levels: list[torch.Tensor], image_size: tuple[int, int], pos: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """``levels[-1]`` carries the camera token first; ``pos`` are the patch positions (B, h*w, 2)."""
        levels = [lv.float() for lv in levels]
        pose_token = levels[-1][:, 0]
        tokens = levels[-1][:, 1:]
        raw_pose = self.pose_head(pose_token)
        cross = tokens
        for blk in self.final_transform:
            cross = blk(cross, pose_token, pos)
        self_out = self.dpt_self(levels[:-1] + [tokens], image_size).permute(0, 2, 3, 1)
        cross_out = self.dpt_cross(levels[:-1] + [cross], image_size).permute(0, 2, 3, 1)
        out = {
            "pts3d_in_self_view": _points_exp(self_out[..., :3]),
            "conf_self": _conf_exp(self_out[..., 3]),
            "pts3d_in_other_view": _points_exp(cross_out[..., :3]),
            "conf": _conf_exp(cross_out[..., 3]),
            "camera_pose": _pose_exp(raw_pose),
        }
        if self.dpt_rgb is not None:
            rgb = self.dpt_rgb(levels[:-1] + [tokens], image_size).permute(0, 2, 3, 1)
            eps = 1e-6
            out["rgb"] = ((torch.sigmoid(rgb) * (1 - 2 * eps) + eps) - 0.5) * 2
        return out
