"""Our CUT3R against the OFFICIAL code, same random weights, one 3-frame video, every output.

Skipped unless ``VLM3R_CUT3R_OFFICIAL`` names a checkout of CUT3R/CUT3R (its code is imported from
there at run time, never copied)::

    git clone https://github.com/CUT3R/CUT3R /tmp/CUT3R
    VLM3R_CUT3R_OFFICIAL=/tmp/CUT3R .venv/bin/python -m pytest tests/model/test_cut3r_official_parity.py -s

The official model is built at reduced depth (2 encoder, 4 + 4 decoder blocks) with the paper's
widths (1024 / 768, 16 / 12 / 16 heads, 768 state tokens, 256 memory slots, DPT heads); its RoPE is
its own ``curope`` kernel compiled for the CPU (see :mod:`vlm3r.model.cut3r_parity`). About 90 s on
2 cores, 45 s of which compile the kernel.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from vlm3r.model import cut3r_parity as parity  # noqa: E402
from vlm3r.model.cut3r import CUT3R  # noqa: E402
from vlm3r.model.cut3r_blocks import RoPE2D  # noqa: E402

OFFICIAL = os.environ.get("VLM3R_CUT3R_OFFICIAL")
pytestmark = pytest.mark.skipif(not OFFICIAL, reason="VLM3R_CUT3R_OFFICIAL does not name a CUT3R checkout")

#: Every output the comparison must cover.
OUTPUTS = {"encoder tokens", "camera token", "patch tokens", "state", "pose memory", *parity.HEAD_KEYS}


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    """(the compiled curope module, the official ``dust3r.model`` module)."""
    pytest.importorskip("einops")
    pytest.importorskip("ninja")
    root = parity.check_checkout(Path(OFFICIAL))
    curope = parity.build_curope(root, tmp_path_factory.mktemp("curope"))
    return curope, parity.import_official(root, curope)


@pytest.fixture(scope="module")
def run(official):
    """(config, weights, video, the official model's outputs) at reduced depth."""
    cfg = parity.reduced_config()
    weights = parity.random_weights(cfg, seed=0)
    theirs = parity.build_official(official[1], cfg)
    parity.load_both(theirs, CUT3R(cfg), weights)  # strict both ways, or ValueError
    video = parity.sample_video(cfg, frames=3)
    return cfg, weights, video, parity.run_official(theirs, video)


def _ours(cfg, weights):
    model = CUT3R(cfg).eval()
    model.load_state_dict(weights, strict=True)
    return model


def test_every_output_equals_the_official_models(run):
    cfg, weights, video, theirs = run
    table = parity.compare(parity.run_ours(_ours(cfg, weights), video), theirs)
    print("\n" + parity.format_table(table))
    assert set(table) == OUTPUTS
    assert all(len(frames) == 3 for frames in theirs.values())
    worst = {name: rel for name, (rel, _) in table.items() if rel > 1e-6}
    assert not worst, f"relative error above 1e-6: {worst}"


def test_the_comparison_sees_the_encoders_float16_rope(run):
    """Negative control: with float32 RoPE in the image encoder (the official code casts q and k to
    float16 there) the same comparison fails."""
    cfg, weights, video, theirs = run
    table = parity.compare(parity.run_ours(_ours(dataclasses.replace(cfg, encoder_rope_fp16=False), weights), video), theirs)
    assert table["encoder tokens"][0] > 1e-5
    assert table["patch tokens"][0] > 1e-6


@pytest.mark.parametrize("head_dim", [64, 48])  # image / decoder heads, state-decoder heads
def test_rope_equals_the_official_kernel_bit_for_bit(official, head_dim):
    curope = official[0]
    gen = torch.Generator().manual_seed(head_dim)
    tokens = torch.randn(2, 4, 730, head_dim, generator=gen)  # (B, heads, N, head_dim)
    grid = torch.stack(torch.meshgrid(torch.arange(27), torch.arange(27), indexing="ij"), -1).reshape(1, -1, 2)
    pos = torch.cat([torch.full((1, 1, 2), -1), grid], 1).expand(2, -1, -1).contiguous()
    theirs = tokens.clone()
    curope.kernel.rope_2d(theirs.transpose(1, 2), pos, 100.0, 1.0)  # in place, (B, N, heads, head_dim)
    assert torch.equal(RoPE2D(100.0)(tokens, pos), theirs)
    half = tokens.half()
    curope.rope_2d(half.transpose(1, 2), pos, 100.0, 1.0)
    assert torch.equal(RoPE2D(100.0)(tokens.half().float(), pos).half(), half)
