"""Pictures of a build (matplotlib, Agg, no pyplot state) and a self-contained HTML report.

* ``scene_figure``: top-down view of one scene graph in the z-up world (metres): the room outline
  (alpha shape of a seeded sample of the scene mesh's vertices projected on xy, with the sample in
  light grey; when the mesh is not reachable, the dashed bounding rectangle of objects and cameras),
  the oriented boxes' footprints coloured by category and labelled, and the camera path through the
  sampled frames' centres (translation of camera-to-world), numbered 1..N in stream order, with a
  tick for each frame's viewing direction (camera +z projected on xy).
* ``distribution_figure``: questions per task as two rings (inner: task groups, outer: tasks), like
  Figure 2 of the paper.
* ``question_figure``: the frames one question refers to (its ``frame_ids``, stream frame ids; for
  questions without frames, the sampled frames showing most instances of its categories), with the
  2D boxes of its categories' instances drawn, under the question, options and answer.
* ``render_build_figures`` / ``write_html_report``: the figures rendered once, and statistics
  tables with the figures embedded as base64 PNG in one HTML file.
"""

from __future__ import annotations

import base64
import html
import io
import json
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from vlm3r.pipelines.report.stats import TASK_GROUPS, BuildStats, build_stats, task_group, task_order
from vlm3r.schemas.qa import QARecord
from vlm3r.schemas.scene import FrameMetadata, SceneMetadata

if TYPE_CHECKING:
    from matplotlib.figure import Figure

OUTLINE_SAMPLE = 10_000
"""Mesh vertices sampled (seeded) for the room outline."""
OUTLINE_ALPHA = 5.0
"""Alpha (1/m) of the room outline's alpha shape, as for the benchmark's room size."""


def _mpl():
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("pictures need matplotlib: pip install 'vlm3r[eval]'") from None
    del matplotlib
    return Figure


def category_colors(categories: Sequence[str]) -> dict[str, tuple[float, float, float, float]]:
    """A fixed colour per category (sorted names over tab20, then tab20b)."""
    from matplotlib import colormaps

    cmaps = [colormaps["tab20"], colormaps["tab20b"]]
    names = sorted(set(categories))
    return {c: cmaps[(k // 20) % 2](k % 20) for k, c in enumerate(names)}


def save_png(fig: Figure, dest: Path, dpi: int = 130) -> Path:
    """Write ``fig`` as PNG to ``dest`` (folders created)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(dest, format="png", dpi=dpi, bbox_inches="tight")
    return dest


def png_bytes(fig: Figure, dpi: int = 110) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


# --------------------------------------------------------------------------------------------------
# Scene graph loading
# --------------------------------------------------------------------------------------------------


def find_scene(out: Path, scene: str) -> tuple[str, str]:
    """``"dataset/scene"`` or a bare scene id -> (dataset, scene_id) found under ``OUT/scenes``."""
    root = Path(out) / "scenes"
    if "/" in scene:
        ds, sid = scene.split("/", 1)
        if (root / ds / sid / "scene_metadata.json").is_file():
            return ds, sid
        raise FileNotFoundError(f"{root / ds / sid / 'scene_metadata.json'}: no such scene")
    hits = sorted(p.parent.parent.name for p in root.glob(f"*/{scene}/scene_metadata.json"))
    if not hits:
        raise FileNotFoundError(f"{root}: no scene {scene!r} in any dataset")
    if len(hits) > 1:
        raise ValueError(f"scene {scene!r} is in several datasets ({', '.join(hits)}): write dataset/{scene}")
    return hits[0], scene


def record_scene(out: Path, record: QARecord) -> tuple[str, str]:
    """(build source, scene id) holding a question's scene: ``scenes/<dataset>/<scene>`` or, when
    the build keyed it by another name (``vsibench-meta-scannet`` for a ScanNet scene of a
    meta-info file), the one source folder that has the scene (``find_scene``)."""
    from vlm3r.scenes.base import check_scene_id

    check_scene_id(record.scene_name)
    if (Path(out) / "scenes" / record.dataset / record.scene_name / "scene_metadata.json").is_file():
        return record.dataset, record.scene_name
    return find_scene(out, record.scene_name)


def list_scenes(out: Path) -> list[tuple[str, str]]:
    """Every (dataset, scene_id) with a scene_metadata.json under ``OUT/scenes``, sorted."""
    return sorted((p.parent.parent.name, p.parent.name) for p in (Path(out) / "scenes").glob("*/*/scene_metadata.json"))


def load_scene(out: Path, dataset: str, scene_id: str) -> tuple[SceneMetadata, FrameMetadata | None]:
    """The scene graph of one built scene (frame metadata None when the scene has none)."""
    d = Path(out) / "scenes" / dataset / scene_id
    meta = d / "scene_metadata.json"
    if not meta.is_file():
        raise FileNotFoundError(f"{meta}: no such file")
    try:
        scene = SceneMetadata.model_validate_json(meta.read_bytes())
        fm = d / "frame_metadata.json"
        frames = FrameMetadata.model_validate_json(fm.read_bytes()) if fm.is_file() else None
    except ValueError as exc:
        raise ValueError(f"{d}: invalid scene graph ({str(exc).splitlines()[0]})") from None
    return scene, frames


def mesh_points_xy(scene: SceneMetadata, max_points: int = OUTLINE_SAMPLE, seed: int = 0) -> np.ndarray | None:
    """(K, 2) world xy (metres) of a seeded sample of the scene mesh's vertices, or None when the
    mesh named by ``scene.source_root`` / ``mesh_file`` cannot be read."""
    if not scene.source_root or not scene.mesh_file:
        return None
    path = Path(scene.source_root) / scene.mesh_file
    if not path.is_file():
        return None
    try:
        from plyfile import PlyData

        v = PlyData.read(str(path))["vertex"]
        pts = np.stack([np.asarray(v["x"]), np.asarray(v["y"]), np.asarray(v["z"])], axis=1).astype(np.float64)
    except Exception:  # an unreadable mesh only costs the outline
        return None
    if scene.raw_to_world is not None:
        m = np.asarray(scene.raw_to_world, dtype=np.float64)
        pts = pts @ m[:3, :3].T + m[:3, 3]
    pts = pts[np.isfinite(pts).all(axis=1)]
    if len(pts) > max_points:
        rng = np.random.default_rng(seed)
        pts = pts[np.sort(rng.choice(len(pts), size=max_points, replace=False))]
    return pts[:, :2] if len(pts) else None


def room_outline(points_xy: np.ndarray | None, alpha: float = OUTLINE_ALPHA) -> np.ndarray | None:
    """(K, 2) exterior ring of the alpha shape of (N, 2) xy points (metres): the union of the
    Delaunay triangles whose circumradius is below ``1 / alpha``, holes filled, largest part; the
    benchmark's room-size definition (DESIGN.md section 3) drawn as a polygon. None for degenerate
    input."""
    import shapely
    from scipy.spatial import Delaunay, QhullError

    if points_xy is None or len(points_xy) < 3:
        return None
    pts = np.asarray(points_xy, dtype=np.float64)
    try:
        tri = Delaunay(pts)
    except QhullError:
        return None
    a, b, c = (pts[tri.simplices[:, k]] for k in range(3))
    la, lb, lc = np.linalg.norm(b - c, axis=1), np.linalg.norm(a - c, axis=1), np.linalg.norm(a - b, axis=1)
    area2 = np.abs((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))
    with np.errstate(divide="ignore", invalid="ignore"):
        keep = la * lb * lc / (2.0 * area2) < 1.0 / alpha
    if not keep.any():
        return None
    union = shapely.coverage_union_all(shapely.polygons(np.stack([a[keep], b[keep], c[keep]], axis=1)))
    parts = [g for g in getattr(union, "geoms", [union]) if g.geom_type == "Polygon" and not g.is_empty]
    if not parts:
        return None
    return np.asarray(max(parts, key=lambda g: g.area).exterior.coords)


# --------------------------------------------------------------------------------------------------
# (a) top-down scene picture
# --------------------------------------------------------------------------------------------------


def _footprint(corners: np.ndarray) -> np.ndarray:
    """Convex hull (K, 2) of the xy projection of a box's (8, 3) corners."""
    from scipy.spatial import ConvexHull

    xy = corners[:, :2]
    try:
        return xy[ConvexHull(xy).vertices]
    except Exception:  # degenerate (flat) box: its extreme corners
        return xy[[np.argmin(xy[:, 0]), np.argmax(xy[:, 0])]]


def _numbered(centres_xy: np.ndarray, every: int | None = None, min_sep: float = 0.2) -> list[int]:
    """Which frames (indices) get a number: every ``every``-th when given; otherwise the first, the
    last, and each frame at least ``min_sep`` metres (in xy) from every frame numbered so far, so
    that numbers on a slow stretch of the path do not overprint each other."""
    n = len(centres_xy)
    if every:
        return list(range(0, n, every))
    keep = [0] if n else []
    for k in range(1, n):
        if np.linalg.norm(centres_xy[keep] - centres_xy[k], axis=1).min() >= min_sep:
            keep.append(k)
    if n > 1 and keep[-1] != n - 1:
        keep.append(n - 1)
    return keep


def _draw_boxes(ax, scene: SceneMetadata, colors: Mapping[str, tuple]) -> list[np.ndarray]:  # noqa: ANN001
    """Box footprints (lowest top first, so objects standing on others are drawn above them) and
    labels at the centroids; returns the footprints (K, 2) for the plot extent."""
    from matplotlib.patches import Polygon

    footprints = []
    for obj in sorted(scene.objects, key=lambda o: (o.box.max[2], o.instance_id)):
        fp = _footprint(obj.box.corners())
        footprints.append(fp)
        col = colors[obj.category]
        ax.add_patch(Polygon(fp, closed=True, facecolor=(*col[:3], 0.45), edgecolor=col, lw=1.4, zorder=2,
                             gid=f"box-{obj.instance_id}"))
    for obj in scene.objects:
        cx, cy = obj.box.centroid[:2]
        ax.text(cx, cy, f"{obj.category} #{obj.instance_id}", fontsize=7, ha="center", va="center", zorder=6,
                gid=f"label-{obj.instance_id}",
                bbox=dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor=colors[obj.category], alpha=0.8, lw=0.8))
    return footprints


def _draw_camera_path(ax, frames: FrameMetadata, min_sep: float, number_every: int | None) -> None:  # noqa: ANN001
    """Path through the camera centres (translation of camera-to-world), a tick along each camera's
    +z (viewing direction) projected on xy, and frame numbers placed behind the camera."""
    from matplotlib import patheffects

    poses = np.stack([f.pose() for f in frames.frames])  # (N, 4, 4) camera-to-world
    centres = poses[:, :3, 3]
    fwd = poses[:, :2, 2]  # camera +z in world, xy part
    norm = np.linalg.norm(fwd, axis=1, keepdims=True)
    unit = np.divide(fwd, norm, out=np.zeros_like(fwd), where=norm > 1e-9)
    ax.plot(centres[:, 0], centres[:, 1], "-", color="black", lw=1.0, alpha=0.7, zorder=3, gid="camera-path")
    ax.scatter(centres[:, 0], centres[:, 1], s=14, c="black", zorder=4)
    ax.quiver(centres[:, 0], centres[:, 1], 0.35 * unit[:, 0], 0.35 * unit[:, 1], angles="xy", scale_units="xy",
              scale=1, color="crimson", width=0.003, zorder=4)
    halo = [patheffects.withStroke(linewidth=2.0, foreground="white")]
    for k in _numbered(centres[:, :2], number_every, min_sep):
        off = -unit[k] * 8 if np.any(unit[k]) else np.array([4.0, 4.0])  # points, away from the view tick
        ax.annotate(str(k + 1), centres[k, :2], xytext=tuple(off), textcoords="offset points", fontsize=7,
                    color="darkblue", fontweight="bold", ha="center", va="center", zorder=7, path_effects=halo,
                    gid=f"frame-{k + 1}")
    ax.plot([], [], "-o", color="black", ms=3, label=f"camera path ({len(centres)} sampled frames, numbered)")
    ax.plot([], [], "-", color="crimson", label="viewing direction")


def scene_figure(
    scene: SceneMetadata,
    frames: FrameMetadata | None,
    points_xy: np.ndarray | None = None,
    number_every: int | None = None,
) -> Figure:
    """Top-down picture of one scene graph (see the module docstring). ``points_xy``: mesh sample
    (K, 2) for the outline (``mesh_points_xy``); ``number_every``: number every k-th frame (default:
    frames at least 3% of the plot's size apart on the path, see ``_numbered``)."""
    Figure = _mpl()
    from matplotlib.patches import Polygon

    fig = Figure(figsize=(9.5, 8))
    ax = fig.add_subplot(1, 1, 1)
    ax.set_aspect("equal")
    colors = category_colors([o.category for o in scene.objects])
    extent_pts: list[np.ndarray] = []
    has_frames = frames is not None and bool(frames.frames)

    outline = room_outline(points_xy) if points_xy is not None else None
    if points_xy is not None:
        ax.scatter(points_xy[:, 0], points_xy[:, 1], s=0.3, c="0.82", linewidths=0, zorder=1, rasterized=True)
        extent_pts.append(points_xy)
    if outline is not None:
        ax.add_patch(Polygon(outline, closed=True, facecolor="0.96", edgecolor="0.25", lw=1.6, zorder=0.5,
                             gid="room-outline"))
        ax.plot([], [], "-", color="0.25", label="room outline (mesh)")
    extent_pts.extend(_draw_boxes(ax, scene, colors))
    if has_frames:
        extent_pts.append(np.array([f.camera_center[:2] for f in frames.frames]))  # type: ignore[union-attr]

    allpts = np.concatenate(extent_pts) if extent_pts else np.zeros((1, 2))
    lo, hi = allpts.min(axis=0), allpts.max(axis=0)
    if outline is None:
        ax.add_patch(Polygon([(lo[0], lo[1]), (hi[0], lo[1]), (hi[0], hi[1]), (lo[0], hi[1])], closed=True,
                             fill=False, ls="--", edgecolor="0.4", zorder=0.5, gid="extent"))
        ax.plot([], [], "--", color="0.4", label="extent of objects and cameras (no mesh)")
    if has_frames:
        _draw_camera_path(ax, frames, 0.03 * float(max(hi - lo)), number_every)  # type: ignore[arg-type]
    pad = 0.3
    ax.set_xlim(lo[0] - pad, hi[0] + pad)
    ax.set_ylim(lo[1] - pad, hi[1] + pad)
    for cat, col in colors.items():
        ax.scatter([], [], marker="s", s=60, color=col, label=f"{cat} ({scene.object_counts.get(cat, 0)})")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7.5, frameon=False)
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.grid(True, color="0.9", lw=0.5, zorder=-1)
    ax.set_title(
        f"{scene.dataset}/{scene.scene_id}: {len(scene.objects)} objects, room {scene.room_size:.1f} m², top-down (z-up)",
        fontsize=10,
    )
    return fig


# --------------------------------------------------------------------------------------------------
# (b) distribution of questions by task
# --------------------------------------------------------------------------------------------------


def distribution_figure(
    task_counts: Mapping[str, int], title: str = "Questions per task", merge_variants: bool = True
) -> Figure:
    """Two-ring donut: inner ring the task groups (``stats.TASK_GROUPS``), outer ring the tasks in
    them, sized by question count; wedge labels give counts, the legend percentages. With
    ``merge_variants`` the outer ring shows paper tasks (``scoring.TASK_FAMILIES``: e.g. the three
    relative-direction variants as one ``object_rel_direction``), otherwise every question type."""
    Figure = _mpl()
    from matplotlib import colormaps

    from vlm3r.schemas.qa import task_family

    counts: dict[str, int] = {}
    for t, n in task_counts.items():
        if n > 0:
            key = task_family(t) if merge_variants else t
            counts[key] = counts.get(key, 0) + int(n)
    fig = Figure(figsize=(11, 7.5))
    ax = fig.add_subplot(1, 1, 1)
    ax.set_aspect("equal")
    total = sum(counts.values())
    if total == 0:
        ax.text(0.5, 0.5, "no questions", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    order = list(TASK_GROUPS) + ["Other"]
    groups: dict[str, list[str]] = {}
    for t in sorted(counts, key=task_order):
        groups.setdefault(task_group(t), []).append(t)
    cmap_names = ["Blues", "Oranges", "Greens", "Purples", "RdPu", "Greys", "YlOrBr"]
    inner_vals, inner_cols, outer_vals, outer_cols, outer_names = [], [], [], [], []
    for gi, (g, tasks) in enumerate(groups.items()):
        cmap = colormaps[cmap_names[order.index(g) % len(cmap_names)]]
        inner_vals.append(sum(counts[t] for t in tasks))
        inner_cols.append(cmap(0.75))
        for k, t in enumerate(tasks):
            outer_vals.append(counts[t])
            outer_cols.append(cmap(0.35 + 0.45 * k / max(1, len(tasks))))
            outer_names.append(t)
    wedges, _ = ax.pie(outer_vals, radius=1.0, colors=outer_cols, startangle=90, counterclock=False,
                       wedgeprops=dict(width=0.33, edgecolor="white", linewidth=1.2))
    inner, _ = ax.pie(inner_vals, radius=0.67, colors=inner_cols, startangle=90, counterclock=False,
                      wedgeprops=dict(width=0.3, edgecolor="white", linewidth=1.2))
    for w, t in zip(wedges, outer_names):
        w.set_gid(f"task-{t}")
    for w, g in zip(inner, groups):
        w.set_gid(f"group-{g}")
    for w, g, v in zip(inner, groups, inner_vals):
        if v / total < 0.04:
            continue
        mid = 0.5 * (w.theta1 + w.theta2)
        ang = np.deg2rad(mid)
        rot = (mid - 90.0 + 90.0) % 180.0 - 90.0  # tangential, kept upright
        ax.text(0.52 * np.cos(ang), 0.52 * np.sin(ang), f"{g}\n{100 * v / total:.0f}%", ha="center",
                va="center", fontsize=7.5 if v / total >= 0.1 else 6.5, color="white", fontweight="bold",
                rotation=rot, rotation_mode="anchor")
    for w, t, v in zip(wedges, outer_names, outer_vals):
        if v / total < 0.015:
            continue
        ang = np.deg2rad(0.5 * (w.theta1 + w.theta2))
        x, y = np.cos(ang), np.sin(ang)
        ax.annotate(f"{t}\n{v:,}", xy=(0.99 * x, 0.99 * y), xytext=(1.22 * x, 1.22 * y), fontsize=7.5,
                    ha="left" if x >= 0 else "right", va="center",
                    arrowprops=dict(arrowstyle="-", color="0.5", lw=0.6))
    ax.text(0, 0, f"{total:,}\nquestions", ha="center", va="center", fontsize=10, fontweight="bold")
    ax.legend(wedges, [f"{t}: {v:,} ({100 * v / total:.1f}%)" for t, v in zip(outer_names, outer_vals)],
              loc="center left", bbox_to_anchor=(1.38, 0.5), fontsize=8, frameon=False)
    ax.set_title(title, fontsize=11, pad=28)
    return fig


# --------------------------------------------------------------------------------------------------
# (c) one question with its frames
# --------------------------------------------------------------------------------------------------


def question_frames(record: QARecord, frames: FrameMetadata, scene: SceneMetadata, max_frames: int = 4) -> list[int]:
    """Indices into ``frames.frames`` to show for a question: those whose ``frame_id`` is in
    ``record.frame_ids`` (in the record's order), else up to ``max_frames`` frames chosen greedily to
    show the most not-yet-shown instances of the record's categories (first frames when none)."""
    by_id = {f.frame_id: k for k, f in enumerate(frames.frames)}
    if record.frame_ids:
        return [by_id[i] for i in record.frame_ids if i in by_id][: max(max_frames, len(record.frame_ids))]
    wanted = {o.instance_id for o in scene.objects if o.category in set(record.categories)}
    shown: set[int] = set()
    chosen: list[int] = []
    for _ in range(max_frames):
        gains = [
            (len({v.instance_id for v in f.visible} & (wanted - shown)), -k) for k, f in enumerate(frames.frames)
            if k not in chosen
        ]
        if not gains:
            break
        gain, negk = max(gains)
        if gain == 0:
            break
        chosen.append(-negk)
        shown |= {v.instance_id for v in frames.frames[-negk].visible}
    return sorted(chosen) if chosen else list(range(min(max_frames, len(frames.frames))))


def question_figure(record: QARecord, out: Path, max_frames: int = 4) -> Figure:
    """Frames of one question with its categories' 2D boxes, under its text, options and answer."""
    Figure = _mpl()
    from matplotlib.patches import Rectangle
    from PIL import Image

    scene, frames = load_scene(out, *record_scene(out, record))
    if frames is None:  # a scene graph without frames (vsibench-meta): the question over the top-down view
        fig = scene_figure(scene, None, mesh_points_xy(scene))
        answer = f"{record.mc_answer} = {record.ground_truth}" if record.mc_answer else str(record.ground_truth)
        header = textwrap.fill(record.question, 110)
        if record.options:
            header += "\n" + textwrap.fill("   ".join(record.options), 110)
        fig.suptitle(f"{header}\nanswer: {answer}   [{record.question_type}, {record.id}]", fontsize=8, ha="left", x=0.01)
        return fig
    colors = category_colors(record.categories or [o.category for o in scene.objects])
    inst = {o.instance_id: o for o in scene.objects}
    picks = question_frames(record, frames, scene, max_frames) if frames is not None else []
    ncol = max(1, min(len(picks), 4))
    nrow = max(1, -(-len(picks) // ncol))
    header = textwrap.fill(record.question, 100)
    if record.options:
        header += "\n" + textwrap.fill("   ".join(record.options), 100)
    answer = f"{record.mc_answer} = {record.ground_truth}" if record.mc_answer else str(record.ground_truth)
    header += f"\nanswer: {answer}   [{record.question_type}, {record.id}]"
    if frames is not None and record.categories:
        seen = {inst[v.instance_id].category for k in picks for v in frames.frames[k].visible if v.instance_id in inst}
        unseen = [c for c in record.categories if c not in seen]
        if unseen:
            header += f"\nnot visible in the frames shown: {', '.join(unseen)}"
    aspect = frames.intrinsics.height / frames.intrinsics.width if frames is not None else 0.75
    col_in = 4.2
    header_in = 0.2 * (header.count("\n") + 1) + 0.25
    row_in = col_in * aspect + 0.35
    height = header_in + nrow * row_in
    fig = Figure(figsize=(col_in * ncol, height))
    fig.suptitle(header, fontsize=9, ha="left", x=0.01, y=1 - 0.08 / height, va="top")
    if not picks:
        ax = fig.add_subplot(1, 1, 1)
        ax.text(0.5, 0.5, "no frames for this scene", ha="center", va="center")
        ax.set_axis_off()
        return fig
    n_total = len(frames.frames)
    for j, k in enumerate(picks):
        fr = frames.frames[k]
        ax = fig.add_subplot(nrow, ncol, j + 1)
        path = Path(out) / fr.color_path if fr.color_path else None
        if path is not None and path.is_file():
            ax.imshow(np.asarray(Image.open(path).convert("RGB")))
        else:
            ax.imshow(np.full((frames.intrinsics.height, frames.intrinsics.width, 3), 235, np.uint8))
            ax.text(0.5, 0.5, "image missing", ha="center", va="center", transform=ax.transAxes)
        for v in fr.visible:
            obj = inst.get(v.instance_id)
            if obj is None or (record.categories and obj.category not in record.categories):
                continue
            x0, y0, x1, y1 = v.bbox_2d
            col = colors.get(obj.category, (1, 0, 0, 1))
            ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1, fill=False, edgecolor=col, lw=2,
                                   gid=f"bbox-{fr.frame_id}-{obj.instance_id}"))
            ax.text(x0, max(y0, 12), f"{obj.category} #{obj.instance_id}", fontsize=7, color="white",
                    va="bottom", clip_on=True, bbox=dict(facecolor=col, edgecolor="none", pad=1, alpha=0.9))
        ax.set_title(f"frame {k + 1} of {n_total} (stream {fr.frame_id}, {fr.timestamp_s:.1f} s)", fontsize=8)
        ax.set_axis_off()
    fig.subplots_adjust(top=1 - header_in / height, bottom=0.01, left=0.01, right=0.99, wspace=0.04,
                        hspace=0.35 / row_in)
    return fig


def find_questions(out: Path, question_ids: Sequence[str], records: Sequence[QARecord] | None = None) -> list[QARecord]:
    """The QA records with these ids (in the given order) from a build's ``qa/`` shards, read
    once (or from ``records`` already read); an unknown id raises KeyError."""
    from vlm3r.schemas.io import read_qa_records

    if not question_ids:
        return []
    wanted = set(question_ids)
    found = {r.id: r for r in (read_qa_records(out) if records is None else records) if r.id in wanted}
    missing = [q for q in question_ids if q not in found]
    if missing:
        raise KeyError(f"{out}: no question with id {missing[0]!r}")
    return [found[q] for q in question_ids]


# --------------------------------------------------------------------------------------------------
# HTML report
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedFigure:
    """One PNG of a build: ``name`` is its path relative to the pictures folder."""

    title: str
    name: str
    png: bytes


def render_build_figures(
    out: Path,
    stats: BuildStats | None = None,
    scenes: Sequence[tuple[str, str]] | None = None,
    questions: Sequence[QARecord] = (),
    dpi: int = 120,
    merge_variants: bool = True,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> list[RenderedFigure]:
    """The distribution figure (``merge_variants``: see ``distribution_figure``), top-down pictures
    of ``scenes`` (default: the first scene) and pictures of ``questions``, each rendered once to
    PNG bytes. ``on_progress(done, total)`` after each figure."""
    out = Path(out)
    stats = stats or build_stats(out)
    scenes = list(scenes) if scenes is not None else list_scenes(out)[:1]
    total = 1 + len(scenes) + len(questions)
    figs = [
        RenderedFigure("Questions per task", "distribution.png",
                       png_bytes(distribution_figure({t: s.n for t, s in stats.tasks.items()}, merge_variants=merge_variants), dpi)),
    ]
    on_progress(1, total)
    for ds, sid in scenes:
        scene, frames = load_scene(out, ds, sid)
        png = png_bytes(scene_figure(scene, frames, mesh_points_xy(scene)), dpi)
        figs.append(RenderedFigure(f"Scene {ds}/{sid}", f"scenes/{ds}__{sid}.png", png))
        on_progress(len(figs), total)
    for rec in questions:
        figs.append(RenderedFigure(f"Question {rec.id}", f"questions/{rec.id}.png", png_bytes(question_figure(rec, out), dpi)))
        on_progress(len(figs), total)
    return figs


def write_figures(figures: Sequence[RenderedFigure], dest: Path) -> list[Path]:
    """Write each figure's PNG under ``dest``; returns the paths."""
    from vlm3r.schemas.io import atomic_write_bytes

    paths = []
    for f in figures:
        atomic_write_bytes(Path(dest) / f.name, f.png)
        paths.append(Path(dest) / f.name)
    return paths


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _score_cell(task: Mapping | None) -> str:
    return "-" if task is None else f"{task['score']:.1f}"


def answer_distribution_figure(records: Sequence[QARecord], max_answers: int = 8) -> Figure:
    """One small panel per question type: a histogram of the answers of numeric tasks (gid
    ``answers-<type>``, one bar per bin), else bars of the ``max_answers`` most frequent answers."""
    Figure = _mpl()
    from collections import Counter

    by_type: dict[str, list[QARecord]] = {}
    for r in records:
        by_type.setdefault(r.question_type, []).append(r)
    types = sorted(by_type, key=task_order)
    ncol = 3
    nrow = max(1, -(-len(types) // ncol))
    fig = Figure(figsize=(4.2 * ncol, 2.6 * nrow), layout="constrained")
    if not types:
        ax = fig.add_subplot(1, 1, 1)
        ax.text(0.5, 0.5, "no questions", ha="center", va="center")
        ax.set_axis_off()
        return fig
    for k, t in enumerate(types):
        ax = fig.add_subplot(nrow, ncol, k + 1)
        recs = by_type[t]
        if recs[0].is_numeric:
            values = np.array([float(r.ground_truth) for r in recs])
            _, _, bars = ax.hist(values, bins=min(20, max(1, len(set(values.tolist())))), color="#4c72b0")
            ax.set_xlabel("answer")
        else:
            common = Counter(str(r.ground_truth) for r in recs).most_common(max_answers)
            labels = [textwrap.shorten(a, 22) for a, _ in common]
            bars = ax.barh(range(len(common)), [n for _, n in common], color="#dd8452")
            ax.set_yticks(range(len(common)), labels, fontsize=7)
            ax.invert_yaxis()
        for bar in bars:
            bar.set_gid(f"answers-{t}")
        ax.set_title(f"{t} ({len(recs)})", fontsize=9)
        ax.tick_params(labelsize=7)
    return fig


def loss_figure(runs: Mapping[str, Sequence[tuple[int, float]]]) -> Figure:
    """Training loss (token-mean cross-entropy) against optimizer step, one line per run (gid
    ``loss-<run>``), from the runs' ``train_summary.json``."""
    Figure = _mpl()
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    for name, losses in runs.items():
        steps = [s for s, _ in losses]
        ax.plot(steps, [v for _, v in losses], marker="." if len(losses) < 60 else None, label=name, gid=f"loss-{name}")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    if runs:
        ax.legend(fontsize=8)
    return fig


def scores_figure(results: Mapping[str, Mapping]) -> Figure:
    """Per-task scores (x 100) of each results file side by side (a model next to the random,
    frequency and blind baselines of ``vlm3r-eval baseline``); bars have gid ``score-<run>-<task>``."""
    Figure = _mpl()
    tasks: list[str] = []
    for res in results.values():
        for t in res.get("tasks", {}).values():
            if t["task"] not in tasks:
                tasks.append(t["task"])
    tasks.append("overall")
    fig = Figure(figsize=(max(8.0, 0.7 * len(tasks) * max(1, len(results)) / 2 + 3), 5), layout="constrained")
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / max(1, len(results))
    for j, (name, res) in enumerate(results.items()):
        per = {t["task"]: t["score"] for t in res.get("tasks", {}).values()} | {"overall": res.get("overall", 0.0)}
        drawn = [i for i, task in enumerate(tasks) if task in per]
        for i in drawn:
            ax.bar(i + (j - (len(results) - 1) / 2) * width, per[tasks[i]], width, color=f"C{j}",
                   gid=f"score-{name}-{tasks[i]}", label=name if i == drawn[0] else None)
    ax.set_xticks(range(len(tasks)), tasks, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("score (MRA or accuracy, x 100)")
    if results:
        ax.legend(fontsize=8)
    return fig


def report_figures(
    records: Sequence[QARecord], results: Mapping[str, Mapping] | None = None,
    runs: Mapping[str, Sequence[tuple[int, float]]] | None = None, dpi: int = 120,
) -> list[RenderedFigure]:
    """The report's own figures: answer distributions per task of a build's ``records``
    (``stats.build_records``), then (when given) scores of the results files against each other
    and the runs' training-loss curves."""
    figs = [RenderedFigure("Answers per task", "answers.png", png_bytes(answer_distribution_figure(records), dpi))]
    if results:
        figs.append(RenderedFigure("Scores per task", "scores.png", png_bytes(scores_figure(results), dpi)))
    if runs:
        figs.append(RenderedFigure("Training loss", "loss.png", png_bytes(loss_figure(runs), dpi)))
    return figs


def read_run_losses(run_dir: Path) -> list[tuple[int, float]]:
    """The logged (step, loss) pairs of a ``vlm3r-train`` run folder (its ``train_summary.json``)."""
    path = Path(run_dir) / "train_summary.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [(int(s), float(v)) for s, v in data["losses"]]
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no training summary (is {run_dir} a finished vlm3r-train run?)") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path}: not a training summary ({type(exc).__name__}: {exc})") from None


def report_html(
    out: Path,
    stats: BuildStats,
    figures: Sequence[RenderedFigure] = (),
    results: Mapping[str, Mapping] | None = None,
) -> str:
    """A self-contained HTML page of a build: task table (counts, letters, answers), dataset table,
    result tables (``results``: name -> a ``results.json`` payload) and the ``figures`` embedded
    as base64 PNG."""
    parts = [f"<h1>vlm3r build report: {html.escape(str(out))}</h1>"]
    parts.append(f"<p>{stats.total_questions:,} questions, {len(stats.tasks)} question types, "
                 f"{sum(d.scenes for d in stats.datasets.values())} scenes.</p>")
    parts.append("<h2>Tasks</h2>")
    parts.append(_table(
        ["group", "task", "questions", "scenes", "A", "B", "C", "D", "letters per option count", "answers"],
        [[t.group, t.task, t.n, t.n_scenes, *t.letters.values(),
          ("" if t.letters_balanced else "UNBALANCED ") + "; ".join(
              f"{k}: " + "/".join(str(v) for v in g.values()) for k, g in t.letters_by_options.items()),
          ", ".join(f"{k}: {v}" for k, v in list(t.answers.items())[:6])] for t in stats.tasks.values()],
    ))
    parts.append("<h2>Datasets</h2>")
    parts.append(_table(["dataset", "scenes", "objects", "sampled frames", "questions"],
                        [[d.dataset, d.scenes, d.objects, d.frames, d.questions] for d in stats.datasets.values()]))
    if results:
        parts.append("<h2>Results</h2>")
        tasks: dict[str, tuple[str, object]] = {}
        for res in results.values():
            for t in res.get("tasks", {}).values():
                tasks.setdefault(t["task"], (t["metric"], t["n"]))
        rows = [
            [task, metric, n, *(_score_cell(res.get("tasks", {}).get(task)) for res in results.values())]
            for task, (metric, n) in tasks.items()
        ]
        rows.append(["overall", "mean", "", *(f"{res.get('overall', 0.0):.1f}" for res in results.values())])
        parts.append(_table(["task", "metric", "n", *results], rows))
    for f in figures:
        data = base64.b64encode(f.png).decode("ascii")
        parts.append(f"<h2>{html.escape(f.title)}</h2>")
        parts.append(f'<img alt="{html.escape(f.title)}" src="data:image/png;base64,{data}">')
    style = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:1em 0;font-size:13px}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}th{background:#f2f2f2}"
             "img{max-width:100%;border:1px solid #eee;margin:0.5em 0}")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>vlm3r report</title>'
            f"<style>{style}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")


def write_html_report(
    out: Path,
    dest: Path,
    stats: BuildStats | None = None,
    figures: Sequence[RenderedFigure] | None = None,
    results: Mapping[str, Mapping] | None = None,
) -> Path:
    """Write the report of build ``out`` to ``dest`` (figures rendered with their defaults when
    not given)."""
    from vlm3r.schemas.io import atomic_write_bytes

    stats = stats or build_stats(out)
    figures = render_build_figures(out, stats) if figures is None else figures
    atomic_write_bytes(Path(dest), report_html(out, stats, figures, results).encode("utf-8"))
    return Path(dest)
