"""The demo dataset: synthetic scenes written in the ScanNet raw layout, cached on disk.

The raw scans go to ``<cache>/demo-v<N>-seed<S>-n<K>/`` (default cache: ``$VLM3R_CACHE`` or
``~/.cache/vlm3r``). A scene counts as present once its ``.sens`` exists; the layout writer renames
every file into place only when complete, so an interrupted synthesis resumes.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from vlm3r.scenes.base import stable_hash

DEMO_VERSION = 1


def default_cache() -> Path:
    return Path(os.environ.get("VLM3R_CACHE", Path.home() / ".cache" / "vlm3r"))


def demo_scene_ids(n_scenes: int) -> list[str]:
    return [f"demo{i:04d}_00" for i in range(n_scenes)]


def _synthesise(scene_id: str, seed: int, root: Path, config=None) -> str:  # noqa: ANN001
    from vlm3r.scenes.scannet_layout import write_scannet_scene
    from vlm3r.scenes.synthetic import SyntheticConfig, make_scene

    scene = make_scene(scene_id, seed=seed * 1_000_003 + stable_hash(scene_id), config=config or SyntheticConfig())
    write_scannet_scene(scene, root)
    return scene_id


def ensure_demo_dataset(
    n_scenes: int = 6, seed: int = 0, cache_dir: Path | None = None, workers: int = 1, config=None  # noqa: ANN001
) -> Path:
    """Synthesise the missing demo scenes; return the dataset root (the folder holding ``scans/``)."""
    root = (cache_dir or default_cache()) / f"demo-v{DEMO_VERSION}-seed{seed}-n{n_scenes}"
    todo = [s for s in demo_scene_ids(n_scenes) if not (root / "scans" / s / f"{s}.sens").is_file()]
    if workers <= 1 or len(todo) <= 1:
        for sid in todo:
            _synthesise(sid, seed, root, config)
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            list(pool.map(_synthesise, todo, [seed] * len(todo), [root] * len(todo), [config] * len(todo)))
    return root
