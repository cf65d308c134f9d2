"""The model sub-app: strict CUT3R checkpoint check, the official-parity command's errors."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("safetensors")
from typer.testing import CliRunner  # noqa: E402

from vlm3r.cli import model_app  # noqa: E402


def test_check_cut3r(tiny_checkpoints, tiny_cfg):
    from vlm3r.model.cut3r import CUT3R

    _, ckpt = tiny_checkpoints
    res = CliRunner().invoke(model_app, ["check-cut3r", str(ckpt), "--config", "tiny"])
    assert res.exit_code == 0, res.output
    expected = sum(p.numel() for p in CUT3R(tiny_cfg.cut3r).parameters())
    assert json.loads(res.output)["parameters"] == expected
    bad = CliRunner().invoke(model_app, ["check-cut3r", str(ckpt), "--config", "paper"])
    flat = " ".join(bad.output.replace("│", " ").split())  # undo rich's box and line wrapping
    assert bad.exit_code == 2 and "does not match the CUT3R config" in flat


def test_parity_cut3r_names_a_folder_that_is_no_checkout(tmp_path):
    res = CliRunner().invoke(model_app, ["parity-cut3r", "--official", str(tmp_path), "--build-dir", str(tmp_path / "b")])
    flat = " ".join(res.output.replace("│", " ").split())
    assert res.exit_code == 2 and f"{tmp_path}: not a CUT3R checkout" in flat
    assert not (tmp_path / "b").exists()  # nothing compiled for a folder that is no checkout
