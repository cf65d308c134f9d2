"""The benchmark runs end to end on the tiny model (figures are reported, never asserted)."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from vlm3r.model.bench import bench  # noqa: E402


def test_bench_reports_a_training_step():
    res = bench("tiny", steps=1, warmup=0, frames=2)
    assert res["video_tokens"] == 2 * 6 and res["sequence_tokens"] == 64 + 12 + 16
    assert math.isfinite(res["loss"]) and res["step_s"] > 0 and res["tokens_per_s"] > 0
    assert 0 < res["trainable_params"] < res["total_params"]
    # the trainer's defaults: float32 without a bf16 GPU, the preset's checkpointing (off for tiny)
    assert (res["dtype"], res["grad_ckpt"]) == ("float32", False)
