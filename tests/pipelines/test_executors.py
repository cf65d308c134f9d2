"""Local and Ray executors give byte-identical builds."""

import hashlib
import os
import shutil

import pytest

from vlm3r.pipelines.build import BuildConfig, build
from vlm3r.pipelines.executors import LocalExecutor, make_executor
from vlm3r.scenes.base import AdapterConfig
from vlm3r.scenes.scannet import ScanNetAdapter


def digest(out):
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and "manifest" not in p.parts and not p.name.startswith("build_summary")
    }


def _square(x: int) -> int:
    return x * x


def test_local_executor_returns_every_result():
    assert sorted(LocalExecutor(1).map_unordered(_square, [1, 2, 3])) == [1, 4, 9]
    assert sorted(LocalExecutor(2).map_unordered(_square, [1, 2, 3])) == [1, 4, 9]
    with pytest.raises(ValueError, match="unknown executor"):
        make_executor("slurm")


def test_ray_and_local_builds_identical(scannet_root, tmp_path):
    pytest.importorskip("ray")
    src, _ = scannet_root
    root = tmp_path / "raw"
    for sid in ("scene0001_00", "scene0002_00"):
        shutil.copytree(src / "scans" / sid, root / "scans" / sid)
    shutil.copy(src / "scannetv2-labels.combined.tsv", root)
    cfg = dict(adapter=AdapterConfig(num_frames=8), workers=2)
    build(ScanNetAdapter(root), BuildConfig(out=tmp_path / "local", **cfg))
    os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
    summary = build(ScanNetAdapter(root), BuildConfig(out=tmp_path / "ray", executor="ray", **cfg))
    assert summary.scenes_ok == 2
    assert digest(tmp_path / "ray") == digest(tmp_path / "local")
