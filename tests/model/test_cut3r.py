"""CUT3R: official parameter names/shapes, token shapes, recurrence, batch isolation, strict loading."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from vlm3r.model.config import Cut3rConfig  # noqa: E402
from vlm3r.model.cut3r import CUT3R, Cut3rEncoder, load_cut3r, read_state_dict  # noqa: E402
from vlm3r.model.cut3r_blocks import RoPE2D  # noqa: E402


@pytest.fixture(scope="module")
def tiny_net(tiny_cfg):
    torch.manual_seed(0)
    net = CUT3R(tiny_cfg.cut3r).eval()
    with torch.no_grad():  # random non-trivial weights everywhere (LayerNorms included)
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net


def _tokens(net, video):
    with torch.no_grad():
        return torch.stack([o.tokens for o in net(video)], dim=1)


def test_paper_state_dict_matches_official_checkpoint(shared_file):
    ref = json.loads(shared_file("cut3r_512_dpt_4_64.keys.json").read_text())["state_dict"]
    with torch.device("meta"):
        net = CUT3R(Cut3rConfig())
    got = {k: list(v.shape) for k, v in net.state_dict().items()}
    assert sorted(set(ref) - set(got)) == []
    assert sorted(set(got) - set(ref)) == []
    assert {k: v for k, v in got.items() if ref[k] != v} == {}
    assert len(got) == 1248


def test_paper_shaped_tokens_on_meta_device():
    with torch.device("meta"):
        net = CUT3R(Cut3rConfig())
        video = torch.empty(1, 2, 3, 432, 432)
    outs = net(video)
    assert len(outs) == 2
    assert all(tuple(o.tokens.shape) == (1, 1 + 729, 768) for o in outs)


def test_tiny_shapes_and_heads(tiny_net, tiny_cfg):
    s = tiny_cfg.cut3r.img_size
    video = torch.rand(2, 3, 3, s, s) * 2 - 1
    with torch.no_grad():
        outs = tiny_net(video, run_heads=True)
    p = (s // 16) ** 2
    assert [tuple(o.tokens.shape) for o in outs] == [(2, 1 + p, tiny_cfg.cut3r.dec_embed_dim)] * 3
    h = outs[1].heads
    assert h["pts3d_in_self_view"].shape == (2, s, s, 3) and h["pts3d_in_other_view"].shape == (2, s, s, 3)
    assert h["rgb"].shape == (2, s, s, 3) and float(h["rgb"].abs().max()) <= 1.0
    assert float(h["conf"].min()) >= 1.0 and float(h["conf_self"].min()) >= 1.0
    q = h["camera_pose"][:, 3:]
    assert torch.allclose(q.norm(dim=-1), torch.ones(2), atol=1e-5) and bool((q[:, 0] >= 0).all())


def test_recurrent_state_carries_earlier_frames(tiny_net, tiny_cfg):
    s = tiny_cfg.cut3r.img_size
    torch.manual_seed(1)
    video = torch.rand(1, 3, 3, s, s) * 2 - 1
    changed = video.clone()
    changed[:, 0] = torch.rand(1, 3, s, s) * 2 - 1  # only frame 1 (index 0) differs
    a, b = _tokens(tiny_net, video), _tokens(tiny_net, changed)
    assert not torch.allclose(a[:, 1], b[:, 1], atol=1e-4)  # frame 2 sees frame 1 through the state
    # Causal: changing the last frame leaves earlier frames untouched.
    later = video.clone()
    later[:, 2] = -later[:, 2]
    c = _tokens(tiny_net, later)
    assert torch.equal(a[:, :2], c[:, :2]) and not torch.allclose(a[:, 2], c[:, 2], atol=1e-4)


def test_videos_in_a_batch_are_independent(tiny_net, tiny_cfg):
    s = tiny_cfg.cut3r.img_size
    torch.manual_seed(2)
    v1, v2 = torch.rand(1, 3, 3, s, s) * 2 - 1, torch.rand(1, 3, 3, s, s) * 2 - 1
    both = _tokens(tiny_net, torch.cat([v1, v2]))
    torch.testing.assert_close(both[0:1], _tokens(tiny_net, v1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(both[1:2], _tokens(tiny_net, v2), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(both[0], both[1], atol=1e-3)


def test_first_frame_uses_pose_token_later_frames_the_pose_memory(tiny_cfg):
    torch.manual_seed(3)
    net = CUT3R(tiny_cfg.cut3r).eval()
    s = tiny_cfg.cut3r.img_size
    video = torch.rand(1, 2, 3, s, s) * 2 - 1
    before = _tokens(net, video)
    with torch.no_grad():
        net.pose_retriever.masked_token.add_(1.0)  # read only for frames after the first
    after = _tokens(net, video)
    assert torch.equal(before[:, 0], after[:, 0]) and not torch.allclose(before[:, 1], after[:, 1], atol=1e-4)


def test_rope_depends_on_relative_position_only():
    rope = RoPE2D(100.0)
    torch.manual_seed(4)
    q, k = torch.randn(1, 2, 1, 16), torch.randn(1, 2, 1, 16)

    def score(pq, pk):
        rq = rope(q, torch.tensor([[pq]]))
        rk = rope(k, torch.tensor([[pk]]))
        return (rq * rk).sum(-1)

    base = score((3, 5), (1, 2))
    torch.testing.assert_close(score((10, -1), (8, -4)), base, atol=1e-5, rtol=1e-5)  # same offset (2, 3)
    assert not torch.allclose(score((3, 5), (1, 3)), base, atol=1e-4)
    torch.testing.assert_close(rope(q, torch.tensor([[[7, -1]]])).norm(dim=-1), q.norm(dim=-1))  # a rotation
    torch.testing.assert_close(rope(q, torch.zeros(1, 1, 2, dtype=torch.long)), q)


def test_rope_angles_are_the_official_kernels_float32_arithmetic():
    """RoPE2D against an independent float64 evaluation of the official kernel's formula
    (``angle = p / powf(base, j / q)``, float32 divisions): inside its table (the C library's
    float functions) and outside it (float64 rounded), every cos/sin within one float32 ulp."""
    import numpy as np

    rope = RoPE2D(100.0)
    q = 16
    pos = torch.tensor([[-1, 0, 1, 7, 27, 254, 255, 300, 4000]])  # 255+ lie outside the table
    cos, sin = rope._cos_sin(pos, q)
    exponent = np.arange(q, dtype=np.float32) / np.float32(q)
    denom = (100.0 ** exponent.astype(np.float64)).astype(np.float32)
    angles = (pos.numpy().astype(np.float32)[..., None] / denom).astype(np.float64)
    for got, want in ((cos, np.cos(angles)), (sin, np.sin(angles))):
        want32 = torch.from_numpy(want.astype(np.float32))[:, None]
        ulp = torch.from_numpy(np.spacing(np.abs(want.astype(np.float32))))[:, None]
        assert ((got - want32).abs() <= ulp).all()
    # One rotation of a unit pair gives back (cos, sin): the pairing is channel j with j + q.
    x = torch.zeros(1, 1, 1, 4 * q)
    x[..., 0] = 1.0
    out = rope(x, torch.tensor([[[7, 0]]]))
    assert out[0, 0, 0, 0] == cos[0, 0, 3, 0] and out[0, 0, 0, q] == sin[0, 0, 3, 0]


def test_strict_load_from_pth_and_safetensors(tmp_path, tiny_net, tiny_cfg):
    from safetensors.torch import save_file

    sd = tiny_net.state_dict()
    pth = tmp_path / "ddp.pth"
    torch.save({"model": {f"module.{k}": v for k, v in sd.items()}, "epoch": 3}, pth)
    st = tmp_path / "w.safetensors"
    save_file({k: v.contiguous().clone() for k, v in sd.items()}, str(st))
    s = tiny_cfg.cut3r.img_size
    video = torch.rand(1, 2, 3, s, s) * 2 - 1
    ref = _tokens(tiny_net, video)
    for path in (pth, st):
        net = load_cut3r(path, tiny_cfg.cut3r).eval()
        assert torch.equal(_tokens(net, video), ref)
    bad = dict(read_state_dict(st))
    bad.pop("pose_token")
    save_file(bad, str(tmp_path / "bad.safetensors"))
    with pytest.raises(ValueError, match="bad.safetensors.*missing \\['pose_token'\\]"):
        load_cut3r(tmp_path / "bad.safetensors", tiny_cfg.cut3r)
    with pytest.raises(ValueError, match="ddp.pth.*shape mismatch"):
        load_cut3r(pth, Cut3rConfig(**{**tiny_cfg.cut3r.__dict__, "state_size": 25}))


def test_encoder_is_frozen_and_preprocesses(tiny_net, tiny_cfg):
    enc = Cut3rEncoder(tiny_net)
    enc.train()
    assert not enc.cut3r.training and not any(p.requires_grad for p in enc.parameters())
    frames = torch.rand(2, 2, 3, 48, 40)  # any size: resized to img_size
    out = enc(frames)
    p = tiny_cfg.cut3r.num_patches
    assert out.shape == (2, 2, 1 + p, tiny_cfg.cut3r.dec_embed_dim) and not out.requires_grad
    x = enc.preprocess(torch.ones(1, 1, 3, 32, 32))
    assert torch.equal(x, torch.ones_like(x))  # white -> +1
    torch.testing.assert_close(out, _tokens(tiny_net, enc.preprocess(frames)))


def test_official_style_pth_with_unimportable_pickled_args(tmp_path, tiny_net, tiny_cfg):
    """The official .pth pickles training arguments next to the weights; those classes need not exist here."""
    class Args:
        pass

    Args.__module__ = "training_code_not_installed"
    Args.__qualname__ = "Args"
    path = tmp_path / "official.pth"
    with pytest.MonkeyPatch.context() as mp:
        import sys
        import types

        fake = types.ModuleType("training_code_not_installed")
        fake.Args = Args
        mp.setitem(sys.modules, "training_code_not_installed", fake)
        torch.save({"args": Args(), "model": tiny_net.state_dict(), "epoch": 9}, path)
    net = load_cut3r(path, tiny_cfg.cut3r)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), tiny_net.state_dict().values(), strict=True))


def test_image_encoder_rope_runs_on_float16_as_the_official_code(tiny_cfg):
    """Official numerics: the 24 image-encoder blocks round q and k to float16 before RoPE (CroCo's
    Attention) and the kernel stores float16; decoders and the ray-map encoder stay float32."""
    import dataclasses

    from vlm3r.model.cut3r import CUT3R
    from vlm3r.model.cut3r_blocks import HalfRoPE2D, RoPE2D, grid_positions

    rope = RoPE2D(100.0)
    q = torch.randn(2, 4, 9, 16, generator=torch.Generator().manual_seed(0))
    pos = grid_positions(3, 3, "cpu").expand(2, -1, -1)
    got = HalfRoPE2D(rope)(q, pos)
    want = rope(q.half().float(), pos).half().float()  # half in, float32 math, half out
    assert got.dtype == torch.float32 and torch.equal(got, want)
    assert not torch.equal(got, rope(q, pos))  # float32 RoPE differs (~1e-4 relative)
    net = CUT3R(tiny_cfg.cut3r)
    assert all(isinstance(b.attn.rope, HalfRoPE2D) for b in net.enc_blocks)
    assert all(isinstance(b.attn.rope, RoPE2D) for b in net.enc_blocks_ray_map)
    assert all(isinstance(b.attn.rope, RoPE2D) and isinstance(b.cross_attn.rope, RoPE2D) for b in net.dec_blocks)
    plain = CUT3R(dataclasses.replace(tiny_cfg.cut3r, encoder_rope_fp16=False))
    assert set(plain.state_dict()) == set(net.state_dict())  # no parameter added


def test_cut3r_dtype_is_the_configs_on_a_gpu_and_float32_on_a_cpu(tiny_cfg):
    from vlm3r.model.config import paper_config
    from vlm3r.model.vlm import build_cut3r_encoder, cut3r_dtype

    paper = paper_config()
    assert paper.cut3r.compute_dtype == "float16"  # as VLM-3R runs CUT3R
    assert cut3r_dtype(paper, "cuda") == torch.float16 and cut3r_dtype(paper, "cpu") == torch.float32
    assert cut3r_dtype(tiny_cfg, "cuda") == torch.float32
    enc = build_cut3r_encoder(tiny_cfg, dtype=cut3r_dtype(tiny_cfg, "cpu"))
    assert {p.dtype for p in enc.parameters()} == {torch.float32}
