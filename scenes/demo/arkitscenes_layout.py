"""Write a :class:`~vlm3r.scenes.demo.synthetic.SyntheticScene` in the ARKitScenes 3DOD raw layout.

Directory tree written (what :mod:`vlm3r.scenes.arkitscenes` reads)::

    <root>/metadata.csv                               merged: one row per video written
    <root>/<split>/<video_id>/
      <video_id>_3dod_annotation.json                 data[]: uid, label, segments.obbAligned
      <video_id>_3dod_mesh.ply                        the scene mesh, z-up world (binary PLY)
      <video_id>_frames/
        lowres_wide/<video_id>_<t>.png                colour, RAW device orientation
        lowres_depth/<video_id>_<t>.png               uint16 mm, RAW orientation
        lowres_wide_intrinsics/<video_id>_<t>.pincam  w h fx fy cx cy of the raw frame
        lowres_wide.traj                              t, axis-angle, translation: world-to-camera

Frames are ray cast directly in the raw orientation of a device held with the sky at
``sky_direction`` (so the adapter's upright rotation is checked against the renderer), at the
scene's depth size (colour and depth share it, as lowres_wide and lowres_depth do). Frame timestamps
are ``100 + i / fps`` seconds written with 3 decimals; the trajectory's timestamps are those plus a
few milliseconds of deterministic jitter, and frames with an invalid pose have no trajectory entry.
Labels follow ARKitScenes' class names where it has one (tv -> tv_monitor, washing machine ->
washer); other categories keep their benchmark name.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from types import MappingProxyType

import numpy as np

from vlm3r.scenes.arkitscenes import INVERSE_SKY, SKY_DIRECTIONS, upright
from .render import SceneRenderer
from .scannet_layout import _atomic_write_bytes, _locked
from .scannetpp_layout import atomic_scene_dir, write_mesh_ply
from .synthetic import SyntheticScene

ARKIT_CLASSES = MappingProxyType({
    "chair": "chair", "table": "table", "bed": "bed", "mattress": "bed", "sofa": "sofa",
    "refrigerator": "refrigerator", "tv": "tv_monitor", "washing machine": "washer", "oven": "oven",
    "bookshelf": "shelf", "closet": "cabinet", "counter": "cabinet",
})
"""Synthetic (ScanNet) category -> the ARKitScenes box class annotated (one of its 17 classes).
Objects of other categories are not annotated, as ARKitScenes annotates only its classes; oven,
shelf and cabinet are annotated and then dropped by ARKitScenes' vocabulary, as VSI-Bench drops them."""


def arkit_class(category: str) -> str | None:
    """The ARKitScenes class an object of this synthetic category is annotated with (None: not annotated)."""
    return ARKIT_CLASSES.get(category)
METADATA_COLUMNS = ("video_id", "visit_id", "fold", "sky_direction")
TIME_ORIGIN_S = 100.0
TRAJ_JITTER_S = (0.002, -0.001, 0.0, 0.003)


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def write_metadata_row(root: Path, video_id: str, fold: str, sky_direction: str) -> Path:
    """Add (or replace) one video's row of ``root/metadata.csv``, under a directory lock, atomically."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "metadata.csv"
    with _locked(root):
        rows: dict[str, dict[str, str]] = {}
        if path.is_file():
            with open(path, newline="", encoding="utf-8") as f:
                rows = {r["video_id"]: r for r in csv.DictReader(f)}
        rows[video_id] = {"video_id": video_id, "visit_id": video_id, "fold": fold, "sky_direction": sky_direction}
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=METADATA_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for vid in sorted(rows):
            writer.writerow(rows[vid])
        _atomic_write_bytes(path, out.getvalue().encode("utf-8"))
    return path


def _annotation(scene: SyntheticScene) -> dict:
    """``<video_id>_3dod_annotation.json`` as ARKitScenes ships it: top-level ``data``, ``stats``,
    ``comment``, ``confirm``, ``skipped``; per box the keys the official loader lists (uid, label,
    modelId, children, objectId, segments.obbAligned, hierarchy, isInGroup, labelType, attributes)."""
    data = []
    for o in scene.objects:
        label = arkit_class(o.category)
        if label is None:
            continue
        data.append({
            "uid": f"{scene.scene_id}-{o.instance_id:04d}",
            "label": label,
            "modelId": "",
            "children": [],
            "objectId": o.instance_id,
            "segments": {"obbAligned": {
                "centroid": np.asarray(o.centroid, float).tolist(),
                "axesLengths": np.asarray(o.axes_lengths, float).tolist(),
                "normalizedAxes": np.asarray(o.rotation, float).T.reshape(9).tolist(),
            }},
            "hierarchy": 0,
            "isInGroup": False,
            "labelType": "object",
            "attributes": {},
        })
    return {"data": data, "stats": {"box_number": len(data)}, "comment": "", "confirm": True, "skipped": False}


def _traj_line(t: float, camera_to_world: np.ndarray) -> str:
    from scipy.spatial.transform import Rotation

    w2c = np.linalg.inv(camera_to_world)
    rotvec = Rotation.from_matrix(w2c[:3, :3]).as_rotvec()
    return " ".join(repr(float(x)) for x in (t, *rotvec, *w2c[:3, 3]))


def write_arkitscenes_scene(
    scene: SyntheticScene,
    root: Path,
    *,
    video_id: str | None = None,
    split: str = "Training",
    sky_direction: str = "Up",
    listed_sky_direction: str | None = None,
) -> Path:
    """Write ``scene`` under ``root/<split>/<video_id>/`` in the ARKitScenes 3DOD layout, with its
    frames as captured by a device whose sky is at ``sky_direction``, and add its row to
    ``root/metadata.csv`` with ``listed_sky_direction`` (default: the true one; "NA" or a wrong
    value imitate real rows). Returns the video folder."""
    if sky_direction not in SKY_DIRECTIONS:
        raise ValueError(f"sky_direction must be one of {SKY_DIRECTIONS}, got {sky_direction!r}")
    vid = video_id or scene.scene_id
    root = Path(root)
    cfg = scene.config
    fx, fy, cx, cy = scene.intrinsics
    k_up = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    raw = upright(INVERSE_SKY[sky_direction], cfg.width, cfg.height, k_up)
    (w, h), kr = raw.size, raw.intrinsics
    pincam = " ".join([str(w), str(h), *(repr(float(x)) for x in (kr[0, 0], kr[1, 1], kr[0, 2], kr[1, 2]))]) + "\n"
    invalid = set(scene.invalid_pose_frames.tolist())
    renderer = SceneRenderer(scene)
    with atomic_scene_dir(root / split / vid) as tmp:
        (tmp / f"{vid}_3dod_annotation.json").write_text(json.dumps(_annotation(scene)))
        write_mesh_ply(tmp / f"{vid}_3dod_mesh.ply", scene.vertices, scene.faces, scene.vertex_colors)
        fdir = tmp / f"{vid}_frames"
        dirs = {name: fdir / name for name in ("lowres_wide", "lowres_depth", "lowres_wide_intrinsics")}
        for p in dirs.values():
            p.mkdir(parents=True)
        traj = []
        for i, pose in enumerate(scene.camera_to_world):
            t = TIME_ORIGIN_S + i / cfg.fps
            stem = f"{vid}_{t:.3f}"
            raw_pose = raw.pose(pose)
            frame = renderer.render(raw_pose, w, h, kr[0, 0], kr[1, 1], kr[0, 2], kr[1, 2])
            (dirs["lowres_wide"] / f"{stem}.png").write_bytes(_png(frame.rgb))
            (dirs["lowres_depth"] / f"{stem}.png").write_bytes(_png(frame.depth_mm))
            (dirs["lowres_wide_intrinsics"] / f"{stem}.pincam").write_text(pincam)
            if i not in invalid:
                traj.append(_traj_line(round(t, 3) + TRAJ_JITTER_S[i % len(TRAJ_JITTER_S)], raw_pose))
        (fdir / "lowres_wide.traj").write_text("\n".join(traj) + "\n")
    write_metadata_row(root, vid, split, listed_sky_direction or sky_direction)
    return root / split / vid
