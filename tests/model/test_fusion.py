"""Spatial-visual-view fusion: shapes, token selection, per-frame isolation, residual structure."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from vlm3r.model.config import FusionConfig  # noqa: E402
from vlm3r.model.fusion import SpatialFusion, select_spatial_tokens  # noqa: E402


def test_paper_fusion_keeps_visual_shape():
    torch.manual_seed(0)
    fusion = SpatialFusion(FusionConfig()).eval()
    visual, spatial = torch.randn(2, 729, 1152), torch.randn(2, 730, 768)
    with torch.no_grad():
        out = fusion(visual, spatial)
    assert out.shape == (2, 729, 1152)
    assert fusion.cross_attention.num_heads == 18
    assert fusion.spatial_encoder_key_proj.weight.shape == (1152, 768)


@pytest.mark.parametrize("which, n", [("all", 5), ("camera", 1), ("patch", 4)])
def test_token_selection(which, n):
    tokens = torch.arange(2 * 5 * 3).reshape(2, 5, 3)
    sel = select_spatial_tokens(tokens, which)
    assert sel.shape == (2, n, 3)
    first = {"all": 0, "camera": 0, "patch": 1}[which]
    assert torch.equal(sel[:, 0], tokens[:, first])
    with pytest.raises(ValueError, match="unknown spatial token selection"):
        select_spatial_tokens(tokens, "depth")


def _small(tokens="all"):
    torch.manual_seed(1)
    return SpatialFusion(FusionConfig(visual_dim=16, spatial_dim=12, num_heads=4, tokens=tokens)).eval()


def test_camera_only_fusion_ignores_patch_tokens():
    fusion = _small("camera")
    visual, spatial = torch.randn(3, 9, 16), torch.randn(3, 5, 12)
    other = spatial.clone()
    other[:, 1:] = torch.randn(3, 4, 12)
    with torch.no_grad():
        assert torch.equal(fusion(visual, spatial), fusion(visual, other))
        other[:, 0] += 1.0
        assert not torch.allclose(fusion(visual, spatial), fusion(visual, other))


def test_frames_attend_only_to_their_own_3d_tokens():
    fusion = _small()
    visual, spatial = torch.randn(3, 9, 16), torch.randn(3, 5, 12)
    changed = spatial.clone()
    changed[1] = torch.randn(5, 12)
    with torch.no_grad():
        a, b = fusion(visual, spatial), fusion(visual, changed)
    assert torch.equal(a[0], b[0]) and torch.equal(a[2], b[2]) and not torch.allclose(a[1], b[1])
    with pytest.raises(ValueError, match="3 visual frames but 2 spatial"):
        fusion(visual, spatial[:2])


def test_output_is_layernormed_update_plus_original_visual_tokens():
    fusion = _small()
    visual, spatial = torch.randn(2, 9, 16), torch.randn(2, 5, 12)
    with torch.no_grad():
        fusion.out_norm.weight.zero_()
        fusion.out_norm.bias.fill_(0.5)  # LayerNorm output is then exactly its bias
        out = fusion(visual, spatial)
    torch.testing.assert_close(out, visual + 0.5)
    fusion.train()  # dropout 0.1 acts on the fused tokens in training
    torch.manual_seed(0)
    with torch.no_grad():
        dropped = fusion(visual, spatial)
    zeros = (dropped == 0).float().mean().item()
    assert 0.02 < zeros < 0.25
