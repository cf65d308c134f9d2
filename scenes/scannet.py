"""ScanNet v2 raw scans -> scene graphs.

Expected directory tree (names as in the official release)::

    ROOT/
      scannetv2-labels.combined.tsv             not read: categories come from the segGroup labels
      scans/<scene>/
        <scene>_vh_clean_2.ply                  mesh, scan frame (z-up, not axis-aligned)
        <scene>_vh_clean_2.labels.ply           optional; must carry a ushort `label` property
        <scene>_vh_clean_2.0.010000.segs.json   segIndices: one segment id per mesh vertex
        <scene>.aggregation.json                segGroups: objectId, label, segments
        <scene>.txt                             axisAlignment = 16 floats (row-major 4x4)
        <scene>.sens                            RGB-D stream, version 4
        <scene>_2d-instance-filt.zip            optional; instance-filt/<frame>.png, value = objectId + 1

Coordinates: points and camera-to-world poses are both axis-aligned (``A @ x``), giving the z-up
world of the scene graph. Frames use the depth camera's intrinsics and image size; colour frames
are resized to it. Visibility comes from the instance PNGs when the zip is there, otherwise from
depth-tested projection of the instances' vertices.
"""

from __future__ import annotations

import io
import logging
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import ValidationError
from vlm3r.schemas.io import MAX_IMAGE_PIXELS
from vlm3r.scenes.base import (
    AdaptedScene,
    AdapterConfig,
    SceneError,
    select_frames,
)
from vlm3r.schemas.seeding import scene_rng
from vlm3r.scenes.categories import category_counts, source_category
from vlm3r.scenes.readers import read_json
from vlm3r.scenes.geometry import (
    minimal_oriented_box,
    room_size_and_center,
    transform_points,
)
from vlm3r.scenes.mesh_io import read_mesh, read_ply
from vlm3r.scenes.sens import SensError, SensReader
from vlm3r.scenes.visibility import (
    instance_faces,
    visible_from_mask,
    visible_from_projection,
)
from vlm3r.schemas.scene import (
    Frame,
    FrameMetadata,
    Intrinsics,
    ObjectInstance,
    SceneMetadata,
    is_rigid,
)

SCANNET_FPS = 30.0
log = logging.getLogger(__name__)


def read_axis_alignment(path: Path) -> np.ndarray:
    """The 4x4 ``axisAlignment`` of ``<scene>.txt``; identity when the file has none (test scans)."""
    if not path.is_file():
        raise SceneError(path, "missing scene info file")
    text = path.read_text(encoding="utf-8", errors="replace")
    m = re.search(r"^\s*axisAlignment\s*=\s*(.*)$", text, flags=re.MULTILINE)
    if m is None:
        return np.eye(4)
    try:
        values = np.array([float(x) for x in m.group(1).split()], dtype=np.float64)
    except ValueError as exc:
        raise SceneError(path, f"axisAlignment is not numeric ({exc})") from exc
    if values.size != 16 or not np.isfinite(values).all():
        raise SceneError(path, f"axisAlignment needs 16 finite numbers, got {values.size}")
    m = values.reshape(4, 4)
    if not is_rigid(m):
        raise SceneError(path, "axisAlignment is not a rigid transform (an all-zero, scaled or sheared matrix)")
    return m


def check_labels_ply(path: Path, num_vertices: int) -> None:
    """The optional labels mesh must carry a per-vertex ``label`` and match the mesh."""
    try:
        v = read_ply(path)["vertex"]
    except Exception as exc:
        raise SceneError(path, f"unreadable labels mesh ({exc})") from exc
    if "label" not in v.data.dtype.names:
        raise SceneError(path, "ply has no 'label' vertex property")
    if len(v.data) != num_vertices:
        raise SceneError(path, f"{len(v.data)} vertices, mesh has {num_vertices}")


@dataclass(frozen=True)
class InstanceGroups:
    """The aggregation's objects: ``groups`` = (objectId, raw label, vertex indices) of every kept
    segGroup; ``aliases`` = objectId of a dropped duplicate -> objectId of the copy kept."""

    groups: list[tuple[int, str, np.ndarray]]
    aliases: dict[int, int]


def instance_vertices(segs_path: Path, agg_path: Path, num_vertices: int) -> InstanceGroups:
    """The aggregation groups and their vertices.

    Some real scans list every object twice (scene0217_00: each segGroup repeated with objectId + N;
    ScanNet/ScanNet#51). A group all of whose segments earlier groups already claimed is such a copy:
    the first group keeps the segments (as other tools do), the copy is dropped and its objectId
    becomes an alias of the kept one, so that instance masks drawn with either id agree. A group that
    only shares some segments is kept without them. A warning names the scene's file.
    """
    segs_json = read_json(segs_path, "segments file")
    segs = segs_json.get("segIndices") if isinstance(segs_json, dict) else None
    if not isinstance(segs, list) or len(segs) != num_vertices:
        n = len(segs) if isinstance(segs, list) else "no"
        raise SceneError(segs_path, f"segIndices has {n} entries, mesh has {num_vertices} vertices")
    seg_of_vertex = np.asarray(segs, dtype=np.int64)
    order = np.argsort(seg_of_vertex, kind="stable")
    seg_sorted = seg_of_vertex[order]
    agg = read_json(agg_path, "aggregation file")
    groups = agg.get("segGroups") if isinstance(agg, dict) else None
    if not isinstance(groups, list):
        raise SceneError(agg_path, "no segGroups list (expected a JSON object with a segGroups list)")
    out: list[tuple[int, str, np.ndarray]] = []
    aliases: dict[int, int] = {}
    seen: set[int] = set()
    owner: dict[int, int] = {}  # segment -> objectId of the first group claiming it
    overlaps = 0
    for g in groups:
        try:
            oid = int(g["objectId"])
            label = str(g["label"])
            segments = np.asarray(g["segments"], dtype=np.int64).reshape(-1)
        except (KeyError, TypeError, ValueError) as exc:
            raise SceneError(agg_path, f"malformed segGroup ({exc})") from exc
        if oid < 0 or oid in seen:
            raise SceneError(agg_path, f"duplicate or negative objectId {oid}")
        seen.add(oid)
        claimed = [owner[x] for x in segments.tolist() if x in owner]
        if claimed and len(claimed) == len(segments):  # nothing of its own: a copy of an earlier group
            aliases[oid] = claimed[0]
            continue
        if claimed:  # an overlap, not a copy: the first claim keeps the shared segments
            overlaps += 1
            segments = np.asarray([x for x in segments.tolist() if x not in owner], dtype=np.int64)
        lo = np.searchsorted(seg_sorted, segments, side="left")
        hi = np.searchsorted(seg_sorted, segments, side="right")
        missing = segments[hi == lo]
        if len(missing):
            raise SceneError(agg_path, f"objectId {oid} references unknown segment {int(missing[0])}")
        owner.update((x, oid) for x in segments.tolist())
        idx = np.concatenate([order[a:b] for a, b in zip(lo, hi)]) if len(segments) else np.empty(0, np.int64)
        out.append((oid, label, np.sort(idx)))
    if aliases:
        log.warning(
            "%s: %d segGroups repeat segments of earlier groups (duplicated objects); kept the first copy of each",
            agg_path, len(aliases),
        )
    if overlaps:
        log.warning("%s: %d segGroups share segments with earlier groups; the first group keeps them", agg_path, overlaps)
    return InstanceGroups(out, aliases)


def resolve_aliases(mask: np.ndarray, aliases: dict[int, int]) -> np.ndarray:
    """An instance mask (value = objectId + 1) with every dropped duplicate's id replaced by its kept copy's."""
    if not aliases:
        return mask
    values, inverse = np.unique(mask, return_inverse=True)
    mapped = np.array([aliases.get(int(v) - 1, int(v) - 1) + 1 if v > 0 else v for v in values], dtype=mask.dtype)
    return mapped[inverse].reshape(mask.shape)


MAX_MASK_BYTES = 64 * 2**20  # a 4096 x 4096 16-bit mask, uncompressed, is 32 MiB


def _read_masks(zip_path: Path, frame_ids: np.ndarray) -> dict[int, np.ndarray]:
    """Instance PNGs of the requested frames that the zip holds, (H, W) in their own integer type
    (8 or 16 bit). A member larger than ``MAX_MASK_BYTES`` or an image above ``MAX_IMAGE_PIXELS`` is
    refused before it is read or decoded."""
    from PIL import Image

    masks: dict[int, np.ndarray] = {}
    try:
        with zipfile.ZipFile(zip_path) as zf:
            infos = {Path(i.filename).stem: i for i in zf.infolist() if i.filename.endswith(".png")}
            for fid in frame_ids:
                info = infos.get(str(int(fid)))
                if info is None:
                    continue
                if info.file_size > MAX_MASK_BYTES:
                    raise SceneError(zip_path, f"{info.filename}: {info.file_size:,} bytes inflated, more than an instance mask can be")
                with Image.open(io.BytesIO(zf.read(info))) as im:
                    if im.size[0] * im.size[1] > MAX_IMAGE_PIXELS:
                        raise SceneError(zip_path, f"{info.filename}: {im.size[0]}x{im.size[1]} mask, more than {MAX_IMAGE_PIXELS:,} pixels")
                    mask = np.asarray(im)
                masks[int(fid)] = mask if mask.dtype.kind in "ui" else mask.astype(np.int32)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SceneError(zip_path, f"unreadable instance zip ({exc})") from exc
    return masks


class ScanNetAdapter:
    """Adapter for the ScanNet v2 raw layout (see the module docstring for the tree)."""

    def __init__(
        self,
        root: str | Path,
        dataset: str = "scannet",
        scans_dir: str = "scans",
    ) -> None:
        self.root = Path(root)
        self.dataset = dataset
        self.scans = self.root / scans_dir

    def list_scenes(self) -> list[str]:
        if not self.scans.is_dir():
            raise FileNotFoundError(f"{self.scans}: not a directory (expected ROOT/scans/<scene>/)")
        return sorted(p.name for p in self.scans.iterdir() if p.is_dir() and not p.name.startswith("."))

    def load(self, scene_id: str, config: AdapterConfig) -> AdaptedScene:
        d = self.scans / scene_id
        if not d.is_dir():
            raise SceneError(d, "scene directory missing")
        f = {
            "mesh": d / f"{scene_id}_vh_clean_2.ply",
            "labels_mesh": d / f"{scene_id}_vh_clean_2.labels.ply",
            "segs": d / f"{scene_id}_vh_clean_2.0.010000.segs.json",
            "agg": d / f"{scene_id}.aggregation.json",
            "info": d / f"{scene_id}.txt",
            "sens": d / f"{scene_id}.sens",
            "masks": d / f"{scene_id}_2d-instance-filt.zip",
        }
        align = read_axis_alignment(f["info"])
        raw_pts, faces = read_mesh(f["mesh"])
        if f["labels_mesh"].exists():
            check_labels_ply(f["labels_mesh"], len(raw_pts))
        points = transform_points(align, raw_pts)

        objects: list[ObjectInstance] = []
        point_instance = np.full(len(points), -1, dtype=np.int64)  # benchmark objects only
        instances = instance_vertices(f["segs"], f["agg"], len(points))
        for oid, raw_label, idx in instances.groups:
            category = source_category("scannet", raw_label)
            if category is None or len(idx) == 0:
                continue
            try:
                box = minimal_oriented_box(points[idx])
            except ValidationError as exc:
                raise SceneError(f["mesh"], f"objectId {oid} ({raw_label}): {exc.errors()[0]['msg']}") from exc
            objects.append(
                ObjectInstance(instance_id=oid, category=category, raw_label=raw_label, box=box, num_points=len(idx))
            )
            point_instance[idx] = oid
        objects.sort(key=lambda o: o.instance_id)
        room_size, room_center = room_size_and_center(points, scene_rng(config.seed, "room_size", self.dataset, scene_id))

        frames, images = self._frames(scene_id, f, align, points, point_instance, faces, config, instances.aliases)
        sources = [p for k, p in f.items() if p.exists()]
        scene = SceneMetadata(
            scene_id=scene_id,
            dataset=self.dataset,
            room_size=room_size,
            room_center=room_center,
            object_counts=category_counts(objects),
            objects=objects,
            source_root=str(self.root.resolve()),
            source_files=sorted(str(p.relative_to(self.root)) for p in sources),
            mesh_file=str(f["mesh"].relative_to(self.root)),
            raw_to_world=align.tolist(),
        )
        return AdaptedScene(scene=scene, frames=frames, images=images)

    def _frames(
        self,
        scene_id: str,
        f: dict[str, Path],
        align: np.ndarray,
        points: np.ndarray,
        point_instance: np.ndarray,
        faces: np.ndarray | None,
        config: AdapterConfig,
        aliases: dict[int, int],
    ) -> tuple[FrameMetadata, dict[int, np.ndarray]]:
        """Sample frames from the .sens stream, align their poses, decode images, find visibility."""
        from PIL import Image

        if not f["sens"].is_file():
            raise SceneError(f["sens"], "missing RGB-D stream")
        try:
            reader = SensReader(f["sens"])
        except SensError as exc:
            raise SceneError(f["sens"], exc.args[0].split(": ", 1)[-1]) from exc
        with reader:
            h = reader.header
            valid = np.flatnonzero(reader.valid_mask())
            if len(valid) == 0:
                raise SceneError(f["sens"], f"no frame with a finite pose among {h.num_frames}")
            k = h.depth_intrinsics
            intr = Intrinsics(fx=k[0, 0], fy=k[1, 1], cx=k[0, 2], cy=k[1, 2], width=h.depth_width, height=h.depth_height)
            ts = reader.color_timestamps.astype(np.float64) / 1e6
            if not (len(ts) > 1 and np.all(np.diff(ts) > 0)):  # many real scans store zeros
                ts = np.arange(h.num_frames) / SCANNET_FPS
            ids = select_frames(valid, ts[valid], config)
            instance_ids = {int(i) for i in np.unique(point_instance[point_instance >= 0])}
            masks = _read_masks(f["masks"], ids) if f["masks"].is_file() else {}
            inst_faces = instance_faces(faces, point_instance) if faces is not None and len(masks) < len(ids) else None
            frames: list[Frame] = []
            images: dict[int, np.ndarray] = {}
            sources = set()
            try:
                for fid in ids.tolist():
                    pose = align @ reader.poses[fid]
                    rgb = reader.read_color(fid)
                    if rgb.shape[:2] != (intr.height, intr.width):
                        rgb = np.asarray(Image.fromarray(rgb).resize((intr.width, intr.height), Image.BILINEAR))
                    images[fid] = rgb
                    if fid in masks:
                        mask = masks[fid]
                        if mask.shape != (intr.height, intr.width):
                            mask = np.asarray(
                                Image.fromarray(mask.astype(np.int32)).resize((intr.width, intr.height), Image.NEAREST)
                            ).astype(np.int64)
                        visible = visible_from_mask(resolve_aliases(mask, aliases), instance_ids, config.min_visible_pixels)
                        sources.add("instance_masks")
                    else:
                        depth = reader.read_depth(fid).astype(np.float64) / h.depth_shift
                        visible = visible_from_projection(
                            points, point_instance, pose, intr.matrix(), depth, config.min_visible_pixels,
                            faces=inst_faces,
                        )
                        sources.add("depth_projection")
                    frames.append(
                        Frame(frame_id=fid, timestamp_s=float(ts[fid]), camera_to_world=pose.tolist(), visible=visible)
                    )
            except SensError as exc:
                raise SceneError(f["sens"], exc.args[0].split(": ", 1)[-1]) from exc
        meta = FrameMetadata(
            scene_id=scene_id,
            dataset=self.dataset,
            intrinsics=intr,
            fps=SCANNET_FPS,
            num_stream_frames=h.num_frames,
            num_valid_frames=len(valid),
            visibility_source="+".join(sorted(sources)),
            frames=frames,
        )
        return meta, images
