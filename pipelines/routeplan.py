"""``vlm3r-data routeplan``: route-planning QA from the scene meshes of a finished build.

Reads ``OUT/scenes/<dataset>/<scene>/scene_metadata.json`` (the scene mesh is
``Path(source_root) / mesh_file`` in the raw frame, taken to the z-up world by ``raw_to_world``),
builds a navigator per scene with the chosen backend, plans routes (:mod:`vlm3r.datagen.route_plan`)
and writes, like every other task (:func:`vlm3r.pipelines.exports.export_task`):

    qa/route_planning/<dataset>-<k>.jsonl, <dataset>.parquet, <dataset>.done.json
    train/route_planning/<dataset>-<k>.jsonl
    qa/summary.<dataset>.json                    its "route_planning" entry (other entries kept)
    qa/route_planning/<dataset>.routeplan.json   backend, timings, rejection counts, skipped scenes
    routes/<dataset>/<record id>.png             with --png: a top-down picture per question

The rng of a scene is ``scene_rng(seed, "route_planning", dataset, scene)``, the one ``vlm3r-data
build`` uses, so with the grid backend and the same cap this reproduces the build's records.
"""

from __future__ import annotations

import json
import textwrap
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vlm3r.datagen.route_plan import RoutePlanning, plan_routes
from vlm3r.schemas.seeding import scene_rng
from vlm3r.datagen.navigation import NavConfig, NavigationError, TopDown, backend_class, build_navigator, scene_mesh
from vlm3r.schemas.qa import QARecord
from vlm3r.schemas.scene import SceneMetadata

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass
class RoutePlanSummary:
    """What one run did; ``seconds_*`` are wall-clock sums over scenes."""

    backend: str
    records: dict[str, int] = field(default_factory=dict)  # dataset -> records written
    scenes: int = 0
    skipped: dict[str, str] = field(default_factory=dict)  # "<dataset>/<scene>" -> reason
    rejected: dict[str, int] = field(default_factory=dict)  # predicate -> candidates rejected
    seconds_mesh: float = 0.0
    seconds_navmesh: float = 0.0
    seconds_plan: float = 0.0
    pngs: int = 0
    seconds: float = 0.0

    def line(self) -> str:
        return (
            f"route_planning ({self.backend}): {sum(self.records.values())} questions from {self.scenes} scenes, "
            f"{len(self.skipped)} skipped; navmesh {self.seconds_navmesh:.1f}s, planning {self.seconds_plan:.1f}s, "
            f"{self.pngs} pictures; {self.seconds:.1f}s"
        )


def scene_graph_files(scenes_dir: Path) -> dict[str, list[Path]]:
    """``{dataset folder: [scene_metadata.json, ...]}`` under a build's ``scenes/`` folder, sorted."""
    if not scenes_dir.is_dir():
        raise FileNotFoundError(f"{scenes_dir}: not a folder (expected a build's OUT/scenes)")
    found = {
        d.name: sorted(p for p in d.glob("*/scene_metadata.json") if not p.parent.name.startswith("."))
        for d in sorted(scenes_dir.iterdir())
        if d.is_dir()
    }
    found = {k: v for k, v in found.items() if v}
    if not found:
        raise FileNotFoundError(f"{scenes_dir}: no <dataset>/<scene>/scene_metadata.json inside")
    return found


def run_routeplan(
    scenes_dir: Path,
    out: Path | None = None,
    backend: str = "grid",
    per_scene: int = RoutePlanning.max_per_scene,
    png: bool = False,
    seed: int = 0,
    val_fraction: float = 0.1,
    nav_config: NavConfig = NavConfig(),
    exclude_eval_scenes: bool = True,
) -> RoutePlanSummary:
    """Route QA for every scene graph under ``scenes_dir``; outputs go to ``out`` (default: the
    folder holding ``scenes_dir``). A scene without a usable mesh is skipped and reported."""
    from vlm3r.datagen.records import finalize_records
    from vlm3r.pipelines.exports import export_task
    from vlm3r.schemas.io import atomic_write_json
    from vlm3r.pipelines.splits import assign_splits, mark_eval_scenes, vsibench_eval_scenes

    t_start = time.perf_counter()
    backend_class(backend)  # unknown name -> KeyError
    if not backend_class(backend).available():
        raise ImportError(f"navigation backend {backend!r} is not importable here")
    out = out or scenes_dir.parent
    task = RoutePlanning()
    task.max_per_scene = per_scene
    summary = RoutePlanSummary(backend=backend)
    rejected: dict[str, int] = {}
    eval_list = vsibench_eval_scenes() if exclude_eval_scenes else frozenset()
    for dataset, files in scene_graph_files(scenes_dir).items():
        per_scene_drafts = []
        pictures: dict[str, TopDown] = {}
        scenes: dict[str, SceneMetadata] = {}
        for f in files:
            scene = SceneMetadata.model_validate_json(f.read_bytes())
            key = f"{dataset}/{scene.scene_id}"
            t0 = time.perf_counter()
            try:
                mesh = scene_mesh(scene)
                if mesh is None:
                    summary.skipped[key] = "scene graph names no mesh"
                    continue
                t1 = time.perf_counter()
                navigator = build_navigator(*mesh, backend=backend, config=nav_config)
            except NavigationError as exc:
                summary.skipped[key] = " ".join(str(exc).split())
                continue
            t2 = time.perf_counter()
            try:
                rng = scene_rng(seed, task.name, scene.dataset, scene.scene_id)
                drafts, stats = plan_routes(scene, navigator, rng, per_scene)
                if png:
                    pictures[scene.scene_id] = navigator.topdown()
            finally:
                navigator.close()
            t3 = time.perf_counter()
            summary.seconds_mesh += t1 - t0
            summary.seconds_navmesh += t2 - t1
            summary.seconds_plan += t3 - t2
            summary.scenes += 1
            for k, v in stats.items():
                if k != "questions":
                    rejected[k] = rejected.get(k, 0) + v
            per_scene_drafts.append((scene, drafts))
            scenes[scene.scene_id] = scene
        if not per_scene_drafts:
            continue
        splits = assign_splits(dataset, [s.scene_id for s, _ in per_scene_drafts], seed, None, val_fraction)
        eval_ids = {s.scene_id for s, _ in per_scene_drafts if (s.dataset, s.scene_id) in eval_list}
        splits = mark_eval_scenes(splits, eval_ids)
        train = {sid for sid, split in splits.items() if split == "train"}
        records = finalize_records(task, per_scene_drafts, seed, splits)
        task_summary = export_task(out, dataset, task.name, task.version, records, task.numeric, train)
        summary_path = out / "qa" / f"summary.{dataset}.json"
        merged: dict[str, Any] = json.loads(summary_path.read_text("utf-8")) if summary_path.is_file() else {}
        merged[task.name] = task_summary
        atomic_write_json(summary_path, merged)
        summary.records[dataset] = len(records)
        if png:
            for r in records:
                fig = route_figure(pictures[r.scene_name], scenes[r.scene_name], r)
                dest = out / "routes" / dataset / f"{r.id}.png"
                dest.parent.mkdir(parents=True, exist_ok=True)
                fig.savefig(dest, format="png", dpi=110, bbox_inches="tight")
                summary.pngs += 1
    summary.rejected = dict(sorted(rejected.items()))
    summary.seconds = time.perf_counter() - t_start
    for dataset in summary.records:
        atomic_write_json(out / "qa" / task.name / f"{dataset}.routeplan.json", asdict(summary))
    return summary


# --------------------------------------------------------------------------------------------------
# Pictures
# --------------------------------------------------------------------------------------------------

FREE_RGB = (0.82, 0.92, 0.82)
OBSTACLE_RGB = (0.35, 0.35, 0.38)
OTHER_RGB = (1.0, 1.0, 1.0)


def topdown_rgb(top: TopDown) -> np.ndarray:
    """(H, W, 3) float image: free space light green, obstacles dark grey, the rest white."""
    img = np.empty((*top.free.shape, 3))
    img[:] = OTHER_RGB
    img[top.obstacle] = OBSTACLE_RGB
    img[top.free] = FREE_RGB
    return img


def footprint(corners: np.ndarray) -> np.ndarray:
    """(K, 2) xy outline (convex hull, counter-clockwise) of a box's (8, 3) corners."""
    import shapely

    hull = shapely.MultiPoint(corners[:, :2]).convex_hull
    return np.asarray(hull.exterior.coords)[:-1] if hull.geom_type == "Polygon" else corners[:, :2]


def route_figure(top: TopDown, scene: SceneMetadata, record: QARecord) -> Figure:
    """Top-down picture of one route question (z-up world seen from above, metres): free space,
    obstacles, the navigator's path (thin) and route vertices (dots), the anchor objects' box
    footprints, and anchors labelled "ROLE: category"; the question, options and answer below."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("--png needs matplotlib: pip install 'vlm3r[eval]'") from None
    from matplotlib.patches import Polygon

    extra = record.extra
    fig = Figure(figsize=(7.5, 8.0))
    ax = fig.add_axes((0.08, 0.2, 0.88, 0.74))
    ax.imshow(topdown_rgb(top), origin="lower", extent=top.extent, interpolation="nearest")
    by_id = {o.instance_id: o for o in scene.objects}
    for o in scene.objects:
        ax.add_patch(Polygon(footprint(o.box.corners()), closed=True, fill=False, edgecolor="0.55", linewidth=0.6))
    path = np.asarray(extra["path"])
    way = np.asarray(extra["waypoints"])
    ax.plot(path[:, 0], path[:, 1], color="tab:blue", linewidth=1.0, alpha=0.6)
    ax.plot(way[:, 0], way[:, 1], color="tab:blue", linewidth=2.0, marker="o", markersize=3)
    for a in extra["anchors"]:
        obj = by_id.get(a["instance_id"])
        if obj is not None:
            ax.add_patch(Polygon(footprint(obj.box.corners()), closed=True, alpha=0.35, facecolor="tab:orange", edgecolor="tab:red"))
        x, y = a["point"][:2]
        ax.plot([x], [y], marker="*", markersize=11, color="tab:red")
        ax.annotate(f"{a['role']}: {a['category']}", (x, y), xytext=(6, 6), textcoords="offset points", fontsize=8,
                    bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.8})
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.set_title(f"{record.id}  (template {extra['template']}, {extra['geodesic_m']:.1f} m)", fontsize=9)
    text = "\n".join(textwrap.wrap(record.question, 110)) + "\n\n" + "   ".join(record.options or [])
    text += f"\nanswer: {record.mc_answer}. {record.ground_truth}   (turns: {extra['turn_angles_deg']} deg)"
    fig.text(0.02, 0.02, text, fontsize=7, va="bottom", ha="left", family="monospace")
    return fig
