"""The repository root installs as the single package ``vlm3r`` (DESIGN.md section 2)."""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_editable_install_maps_root_to_vlm3r():
    import vlm3r
    import vlm3r.datagen
    import vlm3r.scenes.scannet

    assert Path(vlm3r.__file__).resolve() == ROOT / "__init__.py"
    assert Path(vlm3r.scenes.scannet.__file__).resolve() == ROOT / "scenes" / "scannet.py"


@pytest.mark.slow
def test_wheel_holds_only_the_vlm3r_package(tmp_path):
    # Build from a copy so that setuptools' build/ folder never lands in the working tree.
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "__pycache__", "demo_out"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(src)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("vlm3r-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"vlm3r"}
    for needed in ("vlm3r/cli.py", "vlm3r/datagen/object_counting.py", "vlm3r/scenes/data/vocabularies.json",
                   "vlm3r/schemas/scene.py", "vlm3r/pipelines/build.py", "vlm3r/model/__init__.py",
                   "vlm3r/model/configs/zero2.json", "vlm3r/pipelines/data/vsibench_eval_scenes.json"):
        assert needed in names
    assert not any(n.startswith("vlm3r/tests") for n in names)
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry).decode()
    assert "vlm3r-data = vlm3r.cli:data_app" in text and "vlm3r-train" in text and "vlm3r-eval" in text
