"""Throughput figures for ``vlm3r-data bench`` (figures, not assertions): every stage of a demo
build, the adapter alone on a scan of real ScanNet size, and the metadata tasks on a meta-info file."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from vlm3r.scenes.demo.dataset import default_cache, ensure_demo_dataset
from vlm3r.scenes.base import AdapterConfig, SceneAdapter
from vlm3r.scenes.mesh_io import read_mesh
from vlm3r.scenes.scannet import ScanNetAdapter


def _no_bar(label: str) -> Callable[[int, int], None]:
    return lambda done, total: None


def time_adapter(adapter: SceneAdapter, on_progress: Callable[[int, int], None] = lambda d, t: None) -> list[tuple[str, int, int, float]]:
    """(scene, mesh vertices, stream frames, seconds of ``load``) per scene, one process.

    ``load`` is the whole adapter (mesh, boxes, room, stream, 32 frames decoded, visibility); writing
    the outputs and video encoding are not timed.
    """
    rows = []
    ids = adapter.list_scenes()
    for sid in ids:
        t0 = time.perf_counter()
        adapted = adapter.load(sid, AdapterConfig())
        dt = time.perf_counter() - t0
        scene = adapted.scene
        n_vertices = len(read_mesh(Path(scene.source_root) / scene.mesh_file)[0])
        rows.append((sid, n_vertices, adapted.frames.num_stream_frames, dt))
        on_progress(len(rows), len(ids))
    return rows


def bench_adapter(
    n_scenes: int, real_size: bool, cache: Path | None, layouts: tuple[str, ...] = ("scannet",),
    bars: Callable[[str], Callable[[int, int], None]] = _no_bar,
) -> dict[str, tuple]:
    """Adapter seconds per scene on the demo scenes (and one real-size scan) of each raw layout.
    ``bars(label)`` gives a ``(done, total)`` progress callback per stage (synthesis, timing)."""
    from vlm3r.scenes.demo.dataset import demo_adapter

    cache = cache or default_cache()
    out: dict[str, tuple] = {}
    for layout in layouts:
        sets = [(f"{layout} demo", ensure_demo_dataset(n_scenes, cache_dir=cache, layout=layout, workers=2,
                                                       on_progress=bars(f"synthesise {layout} demo scans")))]
        if real_size:
            from vlm3r.scenes.demo.synthetic import SyntheticConfig

            root = ensure_demo_dataset(
                1, seed=1, cache_dir=cache / "real-size", config=SyntheticConfig.real_scan_size(), layout=layout,
                on_progress=bars(f"synthesise a real-size {layout} scan"),
            )
            sets.append((f"{layout} real-size", root))
        for label, root in sets:
            rows = time_adapter(demo_adapter(root, layout), bars(f"time the adapter: {label}"))
            secs = [r[3] for r in rows]
            out[label] = (
                len(rows),
                max(r[1] for r in rows),
                max(r[2] for r in rows),
                f"{sum(secs) / len(secs):.2f}",
                f"{max(secs):.2f}",
            )
    return out


def bench_tasks(meta_path: Path, seed: int = 0) -> list[tuple[str, int, float, float]]:
    """(task, QA count, seconds, peak MB of Python/numpy allocations) for every metadata-only task
    over the scenes of a VSI-Bench meta-info file, one process; generation plus letter balancing."""
    import tracemalloc

    from vlm3r.datagen import TASKS
    from vlm3r.datagen.records import finalize_records
    from vlm3r.schemas.seeding import scene_rng
    from vlm3r.scenes.registry import make_adapter

    adapter = make_adapter("vsibench-meta", meta_path)
    scenes = [adapter.load(sid, AdapterConfig(seed=seed)).scene for sid in adapter.list_scenes()]

    def run(task) -> int:  # noqa: ANN001
        per_scene = [(s, task.generate(s, None, scene_rng(seed, task.name, s.dataset, s.scene_id))) for s in scenes]
        return len(finalize_records(task, per_scene, seed))

    rows = []
    for task in TASKS.select(None):
        if task.needs_frames:
            continue
        t0 = time.perf_counter()
        n = run(task)
        dt = time.perf_counter() - t0
        tracemalloc.start()  # a second, traced pass for memory (tracing slows Python down)
        run(task)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        rows.append((task.name, n, dt, peak))
    return rows


TINY_SCENES = dict(n_frames=48, width=96, height=72, mesh_resolution=0.1, n_objects=(8, 12))


def bench_build(n_scenes: int, cache: Path | None, tiny: bool = False, workers: int = 1) -> tuple[list[tuple], float]:
    """Build ``n_scenes`` demo scenes from scratch into a temporary folder (scans cached) and return
    per-stage rows (stage, items, seconds, items/s) and the build's peak RSS in MB. Synthesis runs in
    child processes, so the peak RSS is the build's own (imports included)."""
    import resource
    import tempfile

    from vlm3r.pipelines.build import BuildConfig, build
    from vlm3r.scenes.demo.synthetic import SyntheticConfig

    cache = cache or default_cache()
    config = SyntheticConfig(**TINY_SCENES) if tiny else None
    root = ensure_demo_dataset(
        n_scenes, cache_dir=cache / ("tiny" if tiny else ""), workers=max(2, workers), config=config
    )
    with tempfile.TemporaryDirectory() as tmp:
        summary = build(ScanNetAdapter(root, dataset="demo"), BuildConfig(out=Path(tmp), workers=workers))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = [("adapt + write (scenes)", summary.scenes_ok, summary.stage_seconds["adapt (sum over scenes)"])]
    rows += [(k.removeprefix("qa "), summary.qa_per_task[k.removeprefix("qa ")], v)
             for k, v in summary.stage_seconds.items() if k.startswith("qa ")]
    rows.append(("whole build (wall)", summary.scenes_ok, summary.seconds))
    return [(name, n, dt, n / dt if dt > 0 else float("inf")) for name, n, dt in rows], peak


def _import_seconds(importtime_log: str) -> tuple[float, list[tuple[str, float]]]:
    """Total and the heaviest top-level imports (name, seconds) of a ``python -X importtime`` log."""
    top: list[tuple[str, float]] = []
    for line in importtime_log.splitlines():
        if not line.startswith("import time:") or line.count("|") != 2 or "self [us]" in line:
            continue
        _, cumulative, name = line.split("|")
        if not name.startswith("  "):  # depth 0 only (one space): its cumulative time covers the children
            top.append((name.strip(), int(cumulative) / 1e6))
    top.sort(key=lambda x: -x[1])
    return sum(s for _, s in top), top[:8]


def bench_meta_build(meta_path: Path, runs: int = 5, one_core: bool = True) -> dict:
    """Wall time of the whole ``vlm3r-data build --dataset vsibench-meta`` command on a meta-info file,
    interpreter start included: ``runs`` fresh builds (each into a new folder) in child processes,
    pinned to CPU 0 when ``one_core``; then one ``-X importtime`` run. Returns the median and each
    wall time, the bare interpreter start, the import time (total and heaviest), and the build's own
    work time (its summary's ``seconds``). Bytecode caching is left as the environment sets it."""
    import json
    import os
    import statistics
    import subprocess
    import sys
    import tempfile

    preexec = (lambda: os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})) if one_core else None
    cmd = [sys.executable, "-m", "vlm3r.cli", "data", "build", "--dataset", "vsibench-meta", "--root", str(meta_path)]

    def timed(args: list[str]) -> tuple[float, subprocess.CompletedProcess]:
        t0 = time.perf_counter()
        proc = subprocess.run(args, capture_output=True, text=True, preexec_fn=preexec, check=False)
        dt = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {(proc.stderr or proc.stdout).strip()[-300:]}")
        return dt, proc

    walls, work = [], []
    with tempfile.TemporaryDirectory() as tmp:
        timed(cmd + ["--out", f"{tmp}/warm"])  # first run writes bytecode caches where allowed
        for k in range(runs):
            out = f"{tmp}/run{k}"
            dt, _ = timed(cmd + ["--out", out])
            walls.append(dt)
            (summary_file,) = Path(out).glob("build_summary.vsibench-meta*.json")
            summary = json.loads(summary_file.read_text(encoding="utf-8"))
            work.append(summary["seconds"])
        start, _ = timed([sys.executable, "-c", "pass"])
        _, proc = timed([sys.executable, "-X", "importtime"] + cmd[1:] + ["--out", f"{tmp}/imports"])
    imports, heaviest = _import_seconds(proc.stderr)
    return {
        "median_wall_s": statistics.median(walls), "wall_s": walls, "interpreter_start_s": start,
        "import_s": imports, "heaviest_imports": heaviest, "work_s_median": statistics.median(work),
        "one_core": one_core,
    }
