"""The demo dataset: synthetic scenes written in the ScanNet raw layout, cached on disk.

The raw scans go to ``<cache>/demo-v<N>-seed<S>-n<K>/`` (default cache: ``$VLM3R_CACHE`` or
``~/.cache/vlm3r``). A scene counts as present once its ``.sens`` exists; the layout writer renames
every file into place only when complete, so an interrupted synthesis resumes.
"""

from __future__ import annotations

from collections.abc import Callable

import os
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

from vlm3r.schemas.seeding import stable_hash

DEMO_VERSION = 2  # 2: ScanNet-vocabulary catalogue, real TSV rows, real per-source image sizes and ids


def default_cache() -> Path:
    return Path(os.environ.get("VLM3R_CACHE", Path.home() / ".cache" / "vlm3r"))


def demo_scene_ids(n_scenes: int) -> list[str]:
    return [f"demo{i:04d}_00" for i in range(n_scenes)]


DEMO_LAYOUTS = ("scannet", "scannetpp", "arkitscenes")
ARKIT_SKY = ("Up", "Left", "Right", "Down")
"""Sky direction each ARKitScenes demo video is captured with (cycled over the videos)."""
MISLABELLED_ARKIT_VIDEO = 1
"""The demo video whose metadata.csv sky_direction is wrong (as users report of real rows)."""


def layout_config(layout: str):  # noqa: ANN201 - SyntheticConfig
    """The demo's synthesis settings per layout, at the real downloads' image sizes: ScanNet 320x240
    depth (a reduced 640x480); ScanNet++ iPhone depth 256x192 with colour 2.5x that; ARKitScenes
    ``lowres_wide`` 256x192."""
    from vlm3r.scenes.demo.synthetic import SyntheticConfig

    if layout == "scannet":
        return SyntheticConfig()
    return SyntheticConfig(width=256, height=192, color_scale=2.5 if layout == "scannetpp" else 1.0)


def arkit_video_id(scene_id: str) -> str:
    """The 8-digit numeric video id ARKitScenes would give demo scene ``demoNNNN_00``."""
    return f"{48_000_000 + int(scene_id[4:8]):08d}"


def _synthesise(scene_id: str, seed: int, root: Path, config=None, layout: str = "scannet") -> str:  # noqa: ANN001
    from vlm3r.scenes.demo.synthetic import make_scene

    scene = make_scene(scene_id, seed=seed * 1_000_003 + stable_hash(scene_id), config=config or layout_config(layout))
    if layout == "scannet":
        from vlm3r.scenes.demo.scannet_layout import write_scannet_scene

        write_scannet_scene(scene, root)
    elif layout == "scannetpp":
        from vlm3r.scenes.demo.scannetpp_layout import write_scannetpp_scene

        write_scannetpp_scene(scene, root)
    else:
        from vlm3r.scenes.demo.arkitscenes_layout import write_arkitscenes_scene

        k = int(scene_id[4:8])
        sky = ARKIT_SKY[k % len(ARKIT_SKY)]
        listed = ARKIT_SKY[(k + 1) % len(ARKIT_SKY)] if k == MISLABELLED_ARKIT_VIDEO else sky
        write_arkitscenes_scene(scene, root, video_id=arkit_video_id(scene_id), sky_direction=sky, listed_sky_direction=listed)
    return scene_id


def _present(root: Path, layout: str, scene_id: str) -> bool:
    """A scene is present once its writer finished (each renames its folder into place last)."""
    if layout == "scannet":
        return (root / "scans" / scene_id / f"{scene_id}.sens").is_file()
    if layout == "scannetpp":
        return (root / "data" / scene_id / "iphone" / "depth.bin").is_file()
    csv, vid = root / "metadata.csv", arkit_video_id(scene_id)
    return (root / "Training" / vid).is_dir() and csv.is_file() and f"\n{vid}," in csv.read_text()


def demo_adapter(root: Path, layout: str = "scannet"):  # noqa: ANN201 - SceneAdapter
    """The adapter reading demo scans written in ``layout``; its dataset name is "demo"."""
    from vlm3r.scenes.registry import make_adapter

    return make_adapter(layout, root, name="demo")


def ensure_demo_dataset(
    n_scenes: int = 6, seed: int = 0, cache_dir: Path | None = None, workers: int = 1, config=None,  # noqa: ANN001
    layout: str = "scannet", on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> Path:
    """Synthesise the missing demo scenes in ``layout`` (scannet, scannetpp, arkitscenes); return the
    dataset root (ScanNet: the folder holding ``scans/``; ScanNet++: ``data/``; ARKitScenes: ``Training/``).
    ``on_progress(done, total)`` after each synthesised scene (total = the missing ones)."""
    if layout not in DEMO_LAYOUTS:
        raise ValueError(f"unknown demo layout {layout!r}; known: {', '.join(DEMO_LAYOUTS)}")
    suffix = "" if layout == "scannet" else f"-{layout}"
    root = (cache_dir or default_cache()) / f"demo-v{DEMO_VERSION}-seed{seed}-n{n_scenes}{suffix}"
    todo = [s for s in demo_scene_ids(n_scenes) if not _present(root, layout, s)]
    if workers <= 1 or len(todo) <= 1:
        for k, sid in enumerate(todo):
            _synthesise(sid, seed, root, config, layout)
            on_progress(k + 1, len(todo))
    else:
        n = len(todo)
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            for k, _ in enumerate(pool.map(_synthesise, todo, [seed] * n, [root] * n, [config] * n, [layout] * n)):
                on_progress(k + 1, n)
    return root
