"""ARKitScenes 3DOD videos -> scene graphs.

Expected directory tree (the ``3dod`` download; names as in the official release)::

    ROOT/
      metadata.csv                                 video_id, visit_id, fold, sky_direction, ...
      Training/<video_id>/                         (and Validation/<video_id>/)
        <video_id>_3dod_annotation.json            data[]: uid, label, segments.obbAligned
                                                   {centroid, axesLengths, normalizedAxes}
        <video_id>_3dod_mesh.ply                   mesh, z-up world (metres)
        <video_id>_frames/
          lowres_wide/<video_id>_<t>.png           colour frames, <t> = timestamp in seconds (3 dp)
          lowres_depth/<video_id>_<t>.png          uint16 depth in mm, same size as the colour frame
          lowres_wide_intrinsics/<video_id>_<t>.pincam   one line: w h fx fy cx cy
          lowres_wide.traj                         per line: timestamp, axis-angle rotation[3],
                                                   translation[3] -- WORLD-TO-CAMERA (inverted here)

Coordinates: the mesh, boxes and poses are in ARKit's gravity-aligned z-up world, so
``raw_to_world`` is the identity. Each frame takes the ``.traj`` pose nearest in time (within half
the trajectory's median sampling interval; frames without one are invalid) and its own ``.pincam``
(exact timestamp, else the nearest within 1.5 ms). Frames are rotated upright by the video's
``sky_direction`` (Up: as is; Left: 90 degrees clockwise; Right: counter-clockwise; Down: 180), with
the intrinsics and the camera pose rotated to match (poses stay camera-to-world OpenCV). The
direction is decided from the poses, as the maintainers do (``rectify_im.py`` ``decide_pose``, the
majority of the video's frames); ``metadata.csv``'s value (optional, may be "NA") is only a
cross-check, and a disagreement is logged. An annotation marked ``skipped`` has no usable boxes. Instances:
one per annotated box, instance id = its index in ``data[]`` (uids must be unique); box = the
annotation's ``obbAligned`` (normalizedAxes holds one box axis per row). Visibility: depth-tested
projection of the mesh vertices inside each box. Timestamps are seconds from the first frame.
"""

from __future__ import annotations

import csv
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from vlm3r.scenes.base import (
    AdaptedScene,
    AdapterConfig,
    SceneError,
    median_intrinsics,
    select_frames,
    stream_fps,
)
from vlm3r.schemas.seeding import scene_rng
from vlm3r.scenes.geometry import room_size_and_center
from vlm3r.scenes.mesh_io import read_mesh
from vlm3r.scenes.categories import category_counts, source_category
from vlm3r.scenes.readers import read_image, read_json
from vlm3r.scenes.visibility import instance_faces, visible_from_projection
from vlm3r.schemas.scene import (
    Frame,
    FrameMetadata,
    ObjectInstance,
    OrientedBox,
    SceneMetadata,
)

SPLITS = ("Training", "Validation")
SKY_DIRECTIONS = ("Up", "Down", "Left", "Right")
log = logging.getLogger(__name__)
PINCAM_TOLERANCE_S = 0.0015
BOX_MARGIN = 5e-4
"""Metres a vertex may lie outside an annotated box and still belong to it."""


# --------------------------------------------------------------------------------------------------
# Upright rotation
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upright:
    """How to turn a raw frame upright. ``rot90``: the ``k`` of ``np.rot90(image, k)``;
    ``intrinsics`` (3, 3) of the rotated image; ``size`` its (width, height); ``cam_rotation``
    (3, 3) taking rotated-camera coordinates to raw-camera ones, so that the rotated frame's
    camera-to-world is ``raw_pose @ [[cam_rotation, 0], [0, 1]]``."""

    rot90: int
    intrinsics: np.ndarray
    size: tuple[int, int]
    cam_rotation: np.ndarray

    def image(self, img: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.rot90(img, self.rot90)) if self.rot90 else img

    def pose(self, raw_camera_to_world: np.ndarray) -> np.ndarray:
        m = np.eye(4)
        m[:3, :3] = self.cam_rotation
        return raw_camera_to_world @ m


def upright(sky_direction: str, width: int, height: int, k: np.ndarray) -> Upright:
    """The rotation that brings the sky of a ``width`` x ``height`` frame with intrinsics ``k`` to the
    top (integer pixel coordinates at pixel centres)."""
    fx, fy, cx, cy = k[0, 0], k[1, 1], k[0, 2], k[1, 2]

    def mat(a: float, b: float, c: float, d: float) -> np.ndarray:
        return np.array([[a, 0.0, c], [0.0, b, d], [0.0, 0.0, 1.0]])

    if sky_direction == "Up":
        return Upright(0, mat(fx, fy, cx, cy), (width, height), np.eye(3))
    if sky_direction == "Left":  # clockwise: (u, v) -> (H-1-v, u); x' = -y, y' = x
        return Upright(-1, mat(fy, fx, height - 1 - cy, cx), (height, width),
                       np.array([[0.0, 1, 0], [-1, 0, 0], [0, 0, 1]]))
    if sky_direction == "Right":  # counter-clockwise: (u, v) -> (v, W-1-u); x' = y, y' = -x
        return Upright(1, mat(fy, fx, cy, width - 1 - cx), (height, width),
                       np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]]))
    if sky_direction == "Down":  # 180 degrees: (u, v) -> (W-1-u, H-1-v)
        return Upright(2, mat(fx, fy, width - 1 - cx, height - 1 - cy), (width, height), np.diag([-1.0, -1, 1]))
    raise ValueError(f"sky_direction must be one of {SKY_DIRECTIONS}, got {sky_direction!r}")


INVERSE_SKY = {"Up": "Up", "Down": "Down", "Left": "Right", "Right": "Left"}
"""The sky direction whose upright rotation undoes another's (used to write raw frames)."""


# --------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------


def read_sky_direction(path: Path, video_id: str) -> str | None:
    """``sky_direction`` of a video from ``metadata.csv``, or None when the table, the video's row
    or its value is missing or "NA" (the orientation is decided from the poses anyway)."""
    if not path.is_file():
        return None
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SceneError(path, f"unreadable metadata table ({exc})") from exc
    if not rows or "video_id" not in rows[0]:
        raise SceneError(path, "metadata table lacks a video_id column")
    for r in rows:
        if (r.get("video_id") or "").strip() == video_id:
            sky = (r.get("sky_direction") or "").strip()
            return sky if sky in SKY_DIRECTIONS else None
    return None


POSE_ORIENTATIONS = ("Up", "Left", "Down", "Right")
"""Sky direction of each row of :data:`CAMERA_AXES_DOWN` (the official ``decide_pose`` order)."""
CAMERA_AXES_DOWN = np.array([[0.0, -1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
"""World-z components of the raw camera's x, y, z axes when the frame's sky is Up, Left, Down, Right."""


def sky_from_poses(camera_to_world: np.ndarray) -> str:
    """The sky direction of a video from its raw camera-to-world poses (N, 4, 4), as the ARKitScenes
    maintainers decide it (apple/ARKitScenes ``rectify_im.py`` ``decide_pose``): per frame, the
    candidate best aligned with the world-z row of the rotation; one decision per video, the
    majority of its frames (ties to the earlier of Up, Left, Down, Right)."""
    z_rows = np.asarray(camera_to_world, dtype=np.float64)[:, 2, :3]
    votes = np.argmax(z_rows @ CAMERA_AXES_DOWN.T, axis=1)
    return POSE_ORIENTATIONS[int(np.argmax(np.bincount(votes, minlength=4)))]


def read_traj(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``.traj`` -> (N,) timestamps (sorted) and (N, 4, 4) camera-to-world poses (the file's
    world-to-camera transforms inverted)."""
    from scipy.spatial.transform import Rotation

    if not path.is_file():
        raise SceneError(path, "missing camera trajectory")
    rows: list[list[float]] = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            tokens = line.split()
            try:
                values = [float(t) for t in tokens]
            except ValueError:
                values = []
            if len(tokens) != 7 or len(values) != 7 or not np.isfinite(values).all():
                raise SceneError(path, f"line {n}: expected 7 finite numbers (timestamp, axis-angle[3], translation[3])")
            rows.append(values)
    if not rows:
        raise SceneError(path, "empty camera trajectory")
    arr = np.asarray(rows)
    arr = arr[np.argsort(arr[:, 0], kind="stable")]
    w2c = np.tile(np.eye(4), (len(arr), 1, 1))
    w2c[:, :3, :3] = Rotation.from_rotvec(arr[:, 1:4]).as_matrix()
    w2c[:, :3, 3] = arr[:, 4:7]
    return arr[:, 0], np.linalg.inv(w2c)


def read_pincam(path: Path) -> tuple[tuple[int, int], np.ndarray]:
    """``.pincam`` (w h fx fy cx cy) -> ((w, h), 3x3 intrinsics)."""
    try:
        values = [float(x) for x in path.read_text(encoding="utf-8").split()]
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SceneError(path, f"unreadable intrinsics ({exc})") from exc
    if len(values) != 6 or not np.isfinite(values).all() or min(values[:4]) <= 0:
        raise SceneError(path, "expected 6 numbers: w h fx fy cx cy")
    w, h, fx, fy, cx, cy = values
    return (int(round(w)), int(round(h))), np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def timestamped_files(folder: Path, video_id: str, suffix: str) -> tuple[np.ndarray, list[Path]]:
    """Files ``<video_id>_<t><suffix>`` of a folder sorted by ``t``: ((N,) seconds, paths)."""
    pattern = re.compile(rf"^{re.escape(video_id)}_(\d+(?:\.\d*)?){re.escape(suffix)}$")
    found = []
    for p in folder.iterdir() if folder.is_dir() else []:
        m = pattern.match(p.name)
        if m:
            found.append((float(m.group(1)), p))
    found.sort(key=lambda tp: tp[0])
    return np.array([t for t, _ in found], dtype=np.float64), [p for _, p in found]


def nearest(sorted_ts: np.ndarray, queries: np.ndarray, tolerance: float) -> np.ndarray:
    """(M,) index of the nearest entry of ``sorted_ts`` to each query, -1 when further than ``tolerance``."""
    if len(sorted_ts) == 0:
        return np.full(len(queries), -1, dtype=np.int64)
    right = np.clip(np.searchsorted(sorted_ts, queries), 0, len(sorted_ts) - 1)
    left = np.clip(right - 1, 0, len(sorted_ts) - 1)
    best = np.where(np.abs(sorted_ts[left] - queries) <= np.abs(sorted_ts[right] - queries), left, right)
    return np.where(np.abs(sorted_ts[best] - queries) <= tolerance, best, -1)


def read_boxes(path: Path) -> list[tuple[str, str, OrientedBox]]:
    """(uid, label, box) of every annotated object, in file order."""
    if not path.is_file():
        raise SceneError(path, "missing annotation (this video has no 3D boxes)")
    data = read_json(path, "annotation")
    if isinstance(data, dict) and data.get("skipped") is True:
        raise SceneError(path, "annotation is marked skipped (the video was not annotated)")
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise SceneError(path, "no data[] list")
    out: list[tuple[str, str, OrientedBox]] = []
    seen: set[str] = set()
    for k, item in enumerate(items):
        try:
            uid, label = str(item["uid"]), str(item["label"])
            obb = item["segments"]["obbAligned"]
            c = np.asarray(obb["centroid"], dtype=np.float64).reshape(3)
            e = np.asarray(obb["axesLengths"], dtype=np.float64).reshape(3)
            r = np.asarray(obb["normalizedAxes"], dtype=np.float64).reshape(3, 3).T
        except (KeyError, TypeError, ValueError) as exc:
            raise SceneError(path, f"data[{k}]: needs uid, label, segments.obbAligned ({exc})") from exc
        if uid in seen:
            raise SceneError(path, f"data[{k}]: duplicate uid {uid}")
        seen.add(uid)
        if not (np.isfinite(c).all() and np.isfinite(e).all() and np.isfinite(r).all()) or (e < 0).any():
            raise SceneError(path, f"data[{k}] ({label}): non-finite box or negative axesLengths")
        if np.abs(r.T @ r - np.eye(3)).max() > 1e-3:
            raise SceneError(path, f"data[{k}] ({label}): normalizedAxes is not a rotation")
        if np.linalg.det(r) < 0:  # a reflection: flip one axis, same box
            r = r.copy()
            r[:, 2] *= -1
        out.append((uid, label, OrientedBox.from_arrays(c, e, r)))
    return out


def points_in_box(points: np.ndarray, box: OrientedBox, margin: float = BOX_MARGIN) -> np.ndarray:
    """(V,) bool: points (V, 3) inside the box grown by ``margin`` metres."""
    local = (points - np.asarray(box.centroid)) @ np.asarray(box.rotation)
    return (np.abs(local) <= np.asarray(box.axes_lengths) / 2 + margin).all(axis=1)


# --------------------------------------------------------------------------------------------------
# Adapter
# --------------------------------------------------------------------------------------------------


class ARKitScenesAdapter:
    """Adapter for the ARKitScenes 3DOD layout (see the module docstring for the tree)."""

    def __init__(
        self,
        root: str | Path,
        dataset: str = "arkitscenes",
        splits: tuple[str, ...] = SPLITS,
        metadata_csv: str = "metadata.csv",
    ) -> None:
        self.root = Path(root)
        self.dataset = dataset
        self.splits = splits
        self.metadata = self.root / metadata_csv

    def _videos(self) -> dict[str, tuple[str, Path]]:
        out: dict[str, tuple[str, Path]] = {}
        present = [s for s in self.splits if (self.root / s).is_dir()]
        if not present:
            raise FileNotFoundError(f"{self.root}: none of {', '.join(self.splits)} is a directory")
        for split in present:
            for p in sorted((self.root / split).iterdir()):
                if p.is_dir() and not p.name.startswith("."):
                    out.setdefault(p.name, (split, p))
        return out

    def list_scenes(self) -> list[str]:
        return sorted(self._videos())

    def load(self, scene_id: str, config: AdapterConfig) -> AdaptedScene:
        found = self._videos().get(scene_id)
        if found is None:
            raise SceneError(self.root / self.splits[0] / scene_id, "video directory missing")
        split, d = found
        f = {
            "anno": d / f"{scene_id}_3dod_annotation.json",
            "mesh": d / f"{scene_id}_3dod_mesh.ply",
            "traj": d / f"{scene_id}_frames" / "lowres_wide.traj",
        }
        boxes = read_boxes(f["anno"])
        listed_sky = read_sky_direction(self.metadata, scene_id)
        points, faces = read_mesh(f["mesh"])
        objects: list[ObjectInstance] = []
        point_instance = np.full(len(points), -1, dtype=np.int64)
        for iid, (_, label, box) in enumerate(boxes):
            category = source_category("arkitscenes", label)
            if category is None:
                continue
            inside = points_in_box(points, box)
            point_instance[inside] = iid
            objects.append(ObjectInstance(instance_id=iid, category=category, raw_label=label, box=box,
                                          num_points=int(inside.sum())))
        room_size, room_center = room_size_and_center(points, scene_rng(config.seed, "room_size", self.dataset, scene_id))
        if faces is not None:
            faces = instance_faces(faces, point_instance)  # the only faces visibility measures
        frames, images, used = self._frames(scene_id, d, f["traj"], listed_sky, points, faces, point_instance, config)
        sources = list(f.values()) + used + ([self.metadata] if self.metadata.is_file() else [])
        scene = SceneMetadata(
            scene_id=scene_id,
            dataset=self.dataset,
            split=split,
            room_size=room_size,
            room_center=room_center,
            object_counts=category_counts(objects),
            objects=objects,
            source_root=str(self.root.resolve()),
            source_files=sorted(p.relative_to(self.root).as_posix() for p in sources),
            mesh_file=f["mesh"].relative_to(self.root).as_posix(),
            raw_to_world=np.eye(4).tolist(),
        )
        return AdaptedScene(scene=scene, frames=frames, images=images)

    def _frames(
        self, vid: str, d: Path, traj: Path, listed_sky: str | None, points: np.ndarray, faces: np.ndarray | None,
        point_instance: np.ndarray, config: AdapterConfig,
    ) -> tuple[FrameMetadata, dict[int, np.ndarray], list[Path]]:
        fdir = d / f"{vid}_frames"
        wide_dir, depth_dir, intr_dir = fdir / "lowres_wide", fdir / "lowres_depth", fdir / "lowres_wide_intrinsics"
        ts, color_paths = timestamped_files(wide_dir, vid, ".png")
        if len(ts) == 0:
            raise SceneError(wide_dir, f"no {vid}_<timestamp>.png colour frames")
        traj_ts, traj_poses = read_traj(traj)
        sky = sky_from_poses(traj_poses)
        if listed_sky is not None and listed_sky != sky:
            log.warning("%s: video %s sky_direction %s disagrees with its poses (%s); using the poses",
                        self.metadata, vid, listed_sky, sky)
        gap = float(np.median(np.diff(traj_ts))) if len(traj_ts) > 1 else 0.1
        pose_idx = nearest(traj_ts, ts, 0.5 * gap * (1 - 1e-6))
        cam_ts, cam_paths = timestamped_files(intr_dir, vid, ".pincam")
        cam_idx = nearest(cam_ts, ts, PINCAM_TOLERANCE_S)
        depth_names = {p.name for p in depth_dir.iterdir()} if depth_dir.is_dir() else set()
        has_depth = np.array([p.name in depth_names for p in color_paths])
        valid = np.flatnonzero((pose_idx >= 0) & (cam_idx >= 0) & has_depth)
        if len(valid) == 0:
            raise SceneError(fdir, f"no frame with colour, depth, intrinsics and a pose among {len(ts)}")
        rel_ts = ts - ts[0]
        ids = select_frames(valid, rel_ts[valid], config).tolist()

        frames: list[Frame] = []
        images: dict[int, np.ndarray] = {}
        ks: list[np.ndarray] = []
        size: tuple[int, int] | None = None
        for k in ids:
            rgb = read_image(color_paths[k], "colour frame")
            if rgb.ndim != 3:
                raise SceneError(color_paths[k], f"colour frame must be RGB, got shape {rgb.shape}")
            h, w = rgb.shape[:2]
            depth_path = depth_dir / color_paths[k].name
            depth = read_image(depth_path, "depth map")
            if depth.shape != (h, w):
                raise SceneError(depth_path, f"depth map is {depth.shape[1]}x{depth.shape[0]}, its frame {w}x{h}")
            cam_path = cam_paths[cam_idx[k]]
            cam_size, k_raw = read_pincam(cam_path)
            if cam_size != (w, h):
                raise SceneError(cam_path, f"intrinsics for {cam_size[0]}x{cam_size[1]}, frame is {w}x{h}")
            up = upright(sky, w, h, k_raw)
            if size is None:
                size = up.size
            elif up.size != size:
                raise SceneError(color_paths[k], f"frame is {w}x{h}, earlier frames differ")
            pose = up.pose(traj_poses[pose_idx[k]])
            depth_m = up.image(depth).astype(np.float32) / 1000.0
            images[k] = up.image(rgb)
            ks.append(up.intrinsics)
            visible = visible_from_projection(
                points, point_instance, pose, up.intrinsics, depth_m, config.min_visible_pixels, faces=faces
            )
            frames.append(Frame(frame_id=k, timestamp_s=float(rel_ts[k]), camera_to_world=pose.tolist(), visible=visible))
        assert size is not None
        meta = FrameMetadata(
            scene_id=vid,
            dataset=self.dataset,
            intrinsics=median_intrinsics(ks, size),
            fps=stream_fps(ts, default=10.0),
            num_stream_frames=len(ts),
            num_valid_frames=len(valid),
            visibility_source="depth_projection",
            frames=frames,
        )
        return meta, images, [wide_dir, depth_dir, intr_dir]
