"""SIGKILL a build at several points, re-run it, and compare with an uninterrupted build."""

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vlm3r.pipelines.build import BuildConfig, build
from vlm3r.scenes.base import AdapterConfig
from vlm3r.scenes.scannet import ScanNetAdapter

IDS = ["scene0001_00", "scene0002_00", "scene0003_00"]
ARGS = ["--dataset", "scannet", "--frames", "8"]


def digest(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and "manifest" not in p.parts and not p.name.startswith("build_summary")
    }


def kill_when(cmd: list[str], ready, timeout: float = 120.0) -> bool:
    """Start ``cmd``, SIGKILL it as soon as ``ready()`` holds; False if it finished first."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    while proc.poll() is None and time.monotonic() - t0 < timeout:
        if ready():
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.005)
    proc.wait()
    return False


@pytest.fixture(scope="module")
def raw_and_reference(scannet_root, tmp_path_factory):
    src, _ = scannet_root
    root = tmp_path_factory.mktemp("raw")
    for sid in IDS:
        shutil.copytree(src / "scans" / sid, root / "scans" / sid)
    shutil.copy(src / "scannetv2-labels.combined.tsv", root)
    ref = tmp_path_factory.mktemp("reference")
    build(ScanNetAdapter(root), BuildConfig(out=ref, adapter=AdapterConfig(num_frames=8)))
    return root, digest(ref)


def manifests(out: Path) -> int:
    return len(list((out / "manifest" / "scannet").glob("*.json"))) if (out / "manifest").exists() else 0


POINTS = {
    "while writing the first scene": lambda out: any((out / "scenes" / "scannet").glob(".tmp-*"))
    if (out / "scenes" / "scannet").exists() else False,
    "after one scene": lambda out: manifests(out) >= 1,
    "during QA export": lambda out: (out / "qa").exists(),
}


@pytest.mark.parametrize("point", list(POINTS))
def test_killed_build_resumes_to_identical_output(raw_and_reference, tmp_path, point):
    root, reference = raw_and_reference
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "vlm3r.cli", "build", *ARGS, "--root", str(root), "--out", str(out)]
    killed = kill_when(cmd, lambda: POINTS[point](out))
    summary = build(ScanNetAdapter(root), BuildConfig(out=out, adapter=AdapterConfig(num_frames=8)))
    assert summary.scenes_ok == 3
    assert digest(out) == reference, f"killed={killed}"
    assert not [p for p in out.rglob(".*") if ".tmp" in p.name or ".old-" in p.name]
