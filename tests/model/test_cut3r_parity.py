"""The parity harness's own parts (no official checkout needed): the comparison, the views, the
weights, and the errors a user sees. The comparison with the official code itself is
``test_cut3r_official_parity.py``."""

from __future__ import annotations

import dataclasses

import pytest

torch = pytest.importorskip("torch")

from vlm3r.model import cut3r_parity as parity  # noqa: E402


def test_compare_reports_relative_and_absolute_error_per_output():
    a = torch.tensor([3.0, 4.0])
    table = parity.compare({"x": [a, a]}, {"x": [a, a + torch.tensor([0.0, 0.5])]})
    rel, absolute = table["x"]
    assert rel == pytest.approx(0.5 / torch.tensor([3.0, 4.5]).norm().item())
    assert absolute == pytest.approx(0.5)
    assert parity.compare({"x": [a]}, {"x": [a.clone()]})["x"] == (0.0, 0.0)


def test_compare_refuses_missing_outputs_and_other_shapes():
    with pytest.raises(ValueError, match="official only"):
        parity.compare({"x": [torch.zeros(2)]}, {"x": [torch.zeros(2)], "y": [torch.zeros(2)]})
    with pytest.raises(ValueError, match="x: shape"):
        parity.compare({"x": [torch.zeros(2)]}, {"x": [torch.zeros(3)]})


def test_views_are_vlm3rs_image_only_views():
    video = parity.sample_video(parity.reduced_config(img_size=64), frames=2)
    assert video.shape == (2, 3, 64, 64) and video.min() >= -1 and video.max() <= 1
    assert not torch.equal(video[0], video[1])  # the frames move
    views = parity.vlm3r_views(video)
    assert [v["idx"] for v in views] == [0, 1]
    for i, v in enumerate(views):
        assert torch.equal(v["img"], video[i : i + 1])
        assert v["img_mask"].tolist() == [True] and v["ray_mask"].tolist() == [False]
        assert v["update"].tolist() == [True] and v["reset"].tolist() == [False]
        assert v["true_shape"].tolist() == [[64, 64]]


def test_random_weights_are_seeded_and_move_every_layer_norm(tiny_cfg):
    cfg = tiny_cfg.cut3r
    a, b, c = parity.random_weights(cfg, 1), parity.random_weights(cfg, 1), parity.random_weights(cfg, 2)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert any(not torch.equal(a[k], c[k]) for k in a)
    assert not torch.equal(a["enc_norm.weight"], torch.ones_like(a["enc_norm.weight"]))
    assert not torch.equal(a["dec_norm.bias"], torch.zeros_like(a["dec_norm.bias"]))


def test_official_kwargs_keep_the_checkpoints_fixed_settings():
    kw = parity.official_config_kwargs(parity.reduced_config())
    assert (kw["enc_depth"], kw["dec_depth"], kw["enc_embed_dim"], kw["dec_embed_dim"]) == (2, 4, 1024, 768)
    assert (kw["head_type"], kw["output_mode"], kw["pos_embed"], kw["state_size"]) == ("dpt", "pts3d+pose", "RoPE100", 768)


def test_a_folder_that_is_no_checkout_is_named(tmp_path):
    with pytest.raises(ValueError, match=rf"{tmp_path}: not a CUT3R checkout \(src/croco/models/curope/curope.cpp is missing\)"):
        parity.check_checkout(tmp_path)


def test_weights_of_another_depth_are_refused_in_one_line(tiny_cfg):
    from vlm3r.model.cut3r import CUT3R

    a, b = CUT3R(tiny_cfg.cut3r), CUT3R(tiny_cfg.cut3r)
    deeper = parity.random_weights(dataclasses.replace(tiny_cfg.cut3r, enc_depth=tiny_cfg.cut3r.enc_depth + 1))
    with pytest.raises(ValueError, match=r"do not fit this CUT3R configuration .*enc_blocks"):
        parity.load_both(a, b, deeper)
    parity.load_both(a, b, parity.random_weights(tiny_cfg.cut3r, 3))
    assert torch.equal(a.enc_norm.weight, b.enc_norm.weight)
