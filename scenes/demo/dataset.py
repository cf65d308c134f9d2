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

from vlm3r.schemas.seeding import stable_hash

DEMO_VERSION = 1


def default_cache() -> Path:
    return Path(os.environ.get("VLM3R_CACHE", Path.home() / ".cache" / "vlm3r"))


def demo_scene_ids(n_scenes: int) -> list[str]:
    return [f"demo{i:04d}_00" for i in range(n_scenes)]


DEMO_LAYOUTS = ("scannet", "scannetpp", "arkitscenes")


def _synthesise(scene_id: str, seed: int, root: Path, config=None, layout: str = "scannet") -> str:  # noqa: ANN001
    from vlm3r.scenes.demo.synthetic import SyntheticConfig, make_scene

    scene = make_scene(scene_id, seed=seed * 1_000_003 + stable_hash(scene_id), config=config or SyntheticConfig())
    if layout == "scannet":
        from vlm3r.scenes.demo.scannet_layout import write_scannet_scene

        write_scannet_scene(scene, root)
    elif layout == "scannetpp":
        from vlm3r.scenes.demo.scannetpp_layout import write_scannetpp_scene

        write_scannetpp_scene(scene, root)
    else:
        from vlm3r.scenes.demo.arkitscenes_layout import write_arkitscenes_scene

        write_arkitscenes_scene(scene, root)
    return scene_id


def _present(root: Path, layout: str, scene_id: str) -> bool:
    """A scene is present once its writer finished (each renames its folder into place last)."""
    if layout == "scannet":
        return (root / "scans" / scene_id / f"{scene_id}.sens").is_file()
    if layout == "scannetpp":
        return (root / "data" / scene_id / "iphone" / "depth.bin").is_file()
    csv = root / "metadata.csv"
    return (root / "Training" / scene_id).is_dir() and csv.is_file() and f"\n{scene_id}," in csv.read_text()


def demo_adapter(root: Path, layout: str = "scannet"):  # noqa: ANN201 - SceneAdapter
    """The adapter reading demo scans written in ``layout``; its dataset name is "demo"."""
    from vlm3r.scenes.registry import make_adapter

    return make_adapter(layout, root, name="demo")


def ensure_demo_dataset(
    n_scenes: int = 6, seed: int = 0, cache_dir: Path | None = None, workers: int = 1, config=None,  # noqa: ANN001
    layout: str = "scannet",
) -> Path:
    """Synthesise the missing demo scenes in ``layout`` (scannet, scannetpp, arkitscenes); return the
    dataset root (ScanNet: the folder holding ``scans/``; ScanNet++: ``data/``; ARKitScenes: ``Training/``)."""
    if layout not in DEMO_LAYOUTS:
        raise ValueError(f"unknown demo layout {layout!r}; known: {', '.join(DEMO_LAYOUTS)}")
    suffix = "" if layout == "scannet" else f"-{layout}"
    root = (cache_dir or default_cache()) / f"demo-v{DEMO_VERSION}-seed{seed}-n{n_scenes}{suffix}"
    todo = [s for s in demo_scene_ids(n_scenes) if not _present(root, layout, s)]
    if workers <= 1 or len(todo) <= 1:
        for sid in todo:
            _synthesise(sid, seed, root, config, layout)
    else:
        n = len(todo)
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            list(pool.map(_synthesise, todo, [seed] * n, [root] * n, [config] * n, [layout] * n))
    return root
