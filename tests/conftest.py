"""Shared fixtures. Test data is built in code; ../shared/data is used when present."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_file():
    """Path to a file of ../shared/data, skipping the test when it is absent."""

    def get(name: str) -> Path:
        p = SHARED_DATA / name
        if not p.is_file():
            pytest.skip(f"{p} not available")
        return p

    return get


SMALL = dict(n_frames=64, width=160, height=120, mesh_resolution=0.05, n_objects=(8, 14))


def make_small_scenes(root: Path, ids: list[str], seed0: int = 11):
    """Write small synthetic scenes in the ScanNet layout under ``root``; returns {id: SyntheticScene}."""
    from vlm3r.scenes.demo.scannet_layout import write_scannet_scene
    from vlm3r.scenes.demo.synthetic import SyntheticConfig, make_scene

    scenes = {}
    for k, sid in enumerate(ids):
        scenes[sid] = make_scene(sid, seed=seed0 + k, config=SyntheticConfig(**SMALL))
        write_scannet_scene(scenes[sid], root)
    return scenes


@pytest.fixture(scope="session")
def scannet_root(tmp_path_factory):
    """Three synthetic scans in the ScanNet raw layout (read-only for tests: copy before changing)."""
    root = tmp_path_factory.mktemp("scannet_raw")
    scenes = make_small_scenes(root, ["scene0001_00", "scene0002_00", "scene0003_00"])
    return root, scenes


@pytest.fixture
def make_meta_scene():
    from factories import meta_scene

    return meta_scene
