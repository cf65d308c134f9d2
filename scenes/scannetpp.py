"""ScanNet++ scenes (laser-scan mesh + iPhone RGB-D video) -> scene graphs.

Expected directory tree (names as in the official release)::

    ROOT/data/<scene>/
      scans/
        mesh_aligned_0.05.ply         mesh in the aligned z-up world (metres)
        segments.json                 segIndices: one segment id per mesh vertex
        segments_anno.json            segGroups: id (= instance id), label, segments, obb
      iphone/
        pose_intrinsic_imu.json       {"frame_000000": {timestamp, intrinsic 3x3 (colour image),
                                       pose (ARKit frame), aligned_pose (camera-to-world, aligned
                                       world, OpenCV), imu}, ...}: one entry per video frame
        rgb/frame_000000.jpg ...      extracted colour frames (all, or only some: frames without an
                                      image are not sampled), or else
        rgb.mkv                       the colour video (decoded with PyAV); older downloads: rgb.mp4
        depth/frame_000000.png ...    extracted uint16 depth in mm, or else
        depth.bin                     depth stream, one of the three variants the official decoder
                                      (iphone/prepare_iphone_data.py ``extract_depth``) reads: ONE
                                      raw-deflate stream of float32 metres (N, H, W); or per frame a
                                      uint32 little-endian byte count then an LZ4 block of uint16
                                      millimetres (H, W), or else a raw-deflate block of float32 metres
        colmap/cameras.txt, images.txt  optional COLMAP model (``pose_source="colmap"``)

Coordinates: the mesh, ``aligned_pose`` and the COLMAP model share the aligned z-up world, so
``raw_to_world`` is the identity. Frames use the depth image's size (256x192 in real scans) with the
colour intrinsics scaled to it; colour frames are resized to it. A frame is valid when its pose is
finite (COLMAP: when the model registered it). The depth size is the ``depth_size`` argument or,
by default, inferred from the depth data and the colour image's aspect ratio. Instances: one per
segGroup (instance id = the group's ``id``); box = minimal oriented box of the instance's mesh
vertices (the ScanNet convention); the annotation's own ``obb`` is read by :func:`annotation_obbs`
as a cross-check. Visibility: depth-tested projection of the instances' vertices.
"""

from __future__ import annotations

import math
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from vlm3r.schemas.io import MAX_IMAGE_PIXELS
from vlm3r.scenes.base import (
    AdaptedScene,
    AdapterConfig,
    SceneError,
    median_intrinsics,
    select_frames,
    stream_fps,
)
from vlm3r.schemas.seeding import scene_rng
from vlm3r.scenes.categories import category_counts, source_category
from vlm3r.scenes.readers import read_image, read_json, resize_rgb, scale_intrinsics_to
from vlm3r.scenes.geometry import minimal_oriented_box, room_size_and_center
from vlm3r.scenes.mesh_io import read_mesh
from vlm3r.scenes.visibility import instance_faces, visible_from_projection
from vlm3r.schemas.scene import (
    Frame,
    FrameMetadata,
    ObjectInstance,
    OrientedBox,
    SceneMetadata,
)

SCANNETPP_FPS = 60.0
_FRAME_KEY = re.compile(r"^frame_(\d+)$")
_CHUNK = 1 << 20


def instance_objects(
    source: str, points: np.ndarray, groups: list[tuple[int, str, np.ndarray]]
) -> tuple[list[ObjectInstance], np.ndarray]:
    """Benchmark objects (minimal oriented boxes of their vertices) and the (V,) instance id of every
    vertex (-1: none) from (instance id, raw label, vertex indices) groups."""
    objects: list[ObjectInstance] = []
    point_instance = np.full(len(points), -1, dtype=np.int64)
    for iid, raw_label, idx in groups:
        category = source_category(source, raw_label)
        if category is None or len(idx) == 0:
            continue
        objects.append(
            ObjectInstance(
                instance_id=iid, category=category, raw_label=raw_label,
                box=minimal_oriented_box(points[idx]), num_points=len(idx),
            )
        )
        point_instance[idx] = iid
    objects.sort(key=lambda o: o.instance_id)
    return objects, point_instance


# --------------------------------------------------------------------------------------------------
# Annotations
# --------------------------------------------------------------------------------------------------


def read_segments(path: Path, num_vertices: int) -> np.ndarray:
    """(V,) int64 segment id per mesh vertex from ``segments.json``."""
    segs = read_json(path, "segments file")
    seg = segs.get("segIndices") if isinstance(segs, dict) else None
    if not isinstance(seg, list) or len(seg) != num_vertices:
        n = len(seg) if isinstance(seg, list) else "no"
        raise SceneError(path, f"segIndices has {n} entries, mesh has {num_vertices} vertices")
    try:
        return np.asarray(seg, dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise SceneError(path, f"segIndices are not integers ({exc})") from exc


def _seg_groups(path: Path) -> list[dict]:
    anno = read_json(path, "annotation file")
    groups = anno.get("segGroups") if isinstance(anno, dict) else None
    if not isinstance(groups, list):
        raise SceneError(path, "no segGroups list")
    return groups


def group_vertices(anno_path: Path, seg_of_vertex: np.ndarray) -> list[tuple[int, str, np.ndarray]]:
    """(instance id = segGroup ``id``, raw label, sorted vertex indices) for every segGroup."""
    order = np.argsort(seg_of_vertex, kind="stable")
    seg_sorted = seg_of_vertex[order]
    out: list[tuple[int, str, np.ndarray]] = []
    seen: set[int] = set()
    for g in _seg_groups(anno_path):
        try:
            iid = int(g["id"] if "id" in g else g["objectId"])
            label = str(g["label"])
            segments = np.asarray(g["segments"], dtype=np.int64).reshape(-1)
        except (KeyError, TypeError, ValueError) as exc:
            raise SceneError(anno_path, f"malformed segGroup ({exc})") from exc
        if iid < 0 or iid in seen:
            raise SceneError(anno_path, f"duplicate or negative segGroup id {iid}")
        seen.add(iid)
        lo = np.searchsorted(seg_sorted, segments, side="left")
        hi = np.searchsorted(seg_sorted, segments, side="right")
        idx = np.concatenate([order[a:b] for a, b in zip(lo, hi)]) if len(segments) else np.empty(0, np.int64)
        out.append((iid, label, np.unique(idx)))
    return out


def annotation_obbs(anno_path: Path) -> dict[int, OrientedBox]:
    """The annotation's own oriented boxes (``obb``: centroid, axesLengths, normalizedAxes with one
    box axis per row), by segGroup id, for cross-checking the boxes computed from the vertices."""
    out: dict[int, OrientedBox] = {}
    for g in _seg_groups(anno_path):
        if "obb" not in g:
            continue
        try:
            iid = int(g["id"] if "id" in g else g["objectId"])
            b = g["obb"]
            out[iid] = OrientedBox.from_arrays(
                np.asarray(b["centroid"], float), np.asarray(b["axesLengths"], float),
                np.asarray(b["normalizedAxes"], float).reshape(3, 3).T,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SceneError(anno_path, f"malformed obb ({exc})") from exc
    return out


# --------------------------------------------------------------------------------------------------
# Cameras
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameCameras:
    """Per-frame cameras of one video. ``poses`` (N, 4, 4) camera-to-world (non-finite = invalid),
    ``intrinsics`` (N, 3, 3) of the colour image, ``timestamps`` (N,) seconds; N stream frames."""

    poses: np.ndarray
    intrinsics: np.ndarray
    timestamps: np.ndarray

    @property
    def num_frames(self) -> int:
        return len(self.poses)

    def valid(self) -> np.ndarray:
        """(N,) bool: finite pose and intrinsics."""
        return np.isfinite(self.poses).all(axis=(1, 2)) & np.isfinite(self.intrinsics).all(axis=(1, 2))


def _frame_index(key: str, path: Path) -> int:
    m = _FRAME_KEY.match(Path(key).stem)
    if m is None:
        raise SceneError(path, f"frame name {key!r} is not frame_<index>")
    return int(m.group(1))


MAX_STREAM_FRAMES = 1_000_000
"""More frames than any capture holds (9 hours at 30 fps): a pose key beyond it is refused."""


def read_pose_intrinsic_imu(path: Path) -> FrameCameras:
    """``pose_intrinsic_imu.json`` -> cameras (``aligned_pose``, ``intrinsic``, ``timestamp``).
    Frames are numbered by their key; a missing or non-finite entry is an invalid frame."""
    data = read_json(path, "iPhone poses")
    if not isinstance(data, dict) or not data:
        raise SceneError(path, "expected a non-empty {frame_xxxxxx: {...}} object")
    idx = {key: _frame_index(key, path) for key in data}
    n = max(idx.values()) + 1
    if n > MAX_STREAM_FRAMES:
        last = max(idx, key=idx.get)
        raise SceneError(path, f"{last}: frame index {n - 1:,} is implausible (more than {MAX_STREAM_FRAMES:,} frames)")
    poses = np.full((n, 4, 4), np.nan)
    ks = np.full((n, 3, 3), np.nan)
    ts = np.full(n, np.nan)
    for key, entry in data.items():
        i = idx[key]
        try:
            poses[i] = np.asarray(entry["aligned_pose"], dtype=np.float64).reshape(4, 4)
            ks[i] = np.asarray(entry["intrinsic"], dtype=np.float64).reshape(3, 3)
            ts[i] = float(entry.get("timestamp", i / SCANNETPP_FPS))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SceneError(path, f"{key}: needs aligned_pose 4x4 and intrinsic 3x3 ({exc})") from exc
    return FrameCameras(poses, ks, _fill_timestamps(ts))


def _fill_timestamps(ts: np.ndarray) -> np.ndarray:
    """Timestamps in seconds from the first frame (missing ones interpolated); a stream without
    usable ones gets ``index / 60``."""
    good = np.isfinite(ts)
    if good.sum() >= 2 and np.all(np.diff(ts[good]) > 0):
        idx = np.arange(len(ts))
        full = np.interp(idx, idx[good], ts[good])
        return full - full[0]
    return np.arange(len(ts)) / SCANNETPP_FPS


def _colmap_lines(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise SceneError(path, "missing COLMAP file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SceneError(path, f"unreadable ({exc})") from exc
    return [ln.split() for ln in text.splitlines() if not ln.lstrip().startswith("#")]


def quaternion_to_matrix(q: np.ndarray) -> np.ndarray:
    """3x3 rotation of a unit quaternion (w, x, y, z)."""
    w, x, y, z = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def read_colmap(colmap_dir: Path, num_frames: int, timestamps: np.ndarray) -> FrameCameras:
    """COLMAP text model (``cameras.txt``: PINHOLE, SIMPLE_PINHOLE, OPENCV... -- the first four
    parameters give fx, fy, cx, cy, distortion is ignored; ``images.txt``: world-to-camera
    quaternion and translation per registered frame) -> camera-to-world cameras."""
    cams_path, imgs_path = colmap_dir / "cameras.txt", colmap_dir / "images.txt"
    cams: dict[str, np.ndarray] = {}
    for row in _colmap_lines(cams_path):
        if not row:
            continue
        try:
            params = [float(x) for x in row[4:]]
            fx, fy, cx, cy = (params[0], params[0], params[1], params[2]) if row[1].startswith("SIMPLE") else params[:4]
        except (ValueError, IndexError) as exc:
            raise SceneError(cams_path, f"malformed camera line {' '.join(row)!r} ({exc})") from exc
        cams[row[0]] = np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1.0]])
    poses = np.full((num_frames, 4, 4), np.nan)
    ks = np.full((num_frames, 3, 3), np.nan)
    for row in _colmap_lines(imgs_path)[0::2]:  # image line, then its (possibly empty) POINTS2D line
        if not row:
            continue
        if len(row) < 10:
            raise SceneError(imgs_path, f"malformed image line {' '.join(row)!r}: expected 10 fields")
        try:
            q, t = np.array(row[1:5], float), np.array(row[5:8], float)
            k = cams[row[8]]
        except (ValueError, KeyError) as exc:
            raise SceneError(imgs_path, f"malformed image line {' '.join(row)!r} ({exc})") from exc
        i = _frame_index(row[9], imgs_path)
        if i >= num_frames:
            continue
        w2c = np.eye(4)
        w2c[:3, :3], w2c[:3, 3] = quaternion_to_matrix(q), t
        poses[i] = np.linalg.inv(w2c)
        ks[i] = k
    return FrameCameras(poses, ks, timestamps)


# --------------------------------------------------------------------------------------------------
# Depth
# --------------------------------------------------------------------------------------------------


def _infer_size(pixels: int, aspect: float, path: Path, what: str) -> tuple[int, int]:
    """(w, h) with w * h == pixels and w / h == aspect (the colour image's), else SceneError."""
    if pixels > 0:
        w = int(round(math.sqrt(pixels * aspect)))
        for cand in (w - 1, w, w + 1):
            if cand > 0 and pixels % cand == 0 and abs(cand / (pixels // cand) - aspect) < 0.02 * aspect:
                return cand, pixels // cand
    raise SceneError(path, f"{what}: {pixels} pixels do not form a depth map of the colour aspect {aspect:.4f}")


class DepthBin:
    """Random access to the depth maps of a ScanNet++ ``depth.bin`` (either variant, see the module
    docstring). Depth in metres, float32 (H, W), 0 = no depth."""

    def __init__(self, path: Path, num_frames: int, aspect: float, depth_size: tuple[int, int] | None) -> None:
        self.path = path
        self.num_frames = num_frames
        self.aspect = aspect
        self.size = depth_size
        if not path.is_file():
            raise SceneError(path, "missing depth stream")
        self.records = self._per_frame_records()

    def _per_frame_records(self) -> list[tuple[int, int]] | None:
        """(offset, length) of every size-prefixed record when the records tile the file exactly."""
        total = self.path.stat().st_size
        out: list[tuple[int, int]] = []
        with open(self.path, "rb") as f:
            pos = 0
            while pos < total:
                head = f.read(4)
                if len(head) < 4:
                    return None
                n = int.from_bytes(head, "little")
                if n == 0 or pos + 4 + n > total:
                    return None
                out.append((pos + 4, n))
                pos += 4 + n
                f.seek(pos)
        return out or None

    def read(self, frame_ids: list[int]) -> dict[int, np.ndarray]:
        return self._read_records(frame_ids) if self.records is not None else self._read_stream(frame_ids)

    # per-frame variant -----------------------------------------------------------------------
    def _decode_record(self, data: bytes, k: int) -> np.ndarray:
        """One size-prefixed record, tried in the official decoder's order: an LZ4 block of uint16
        millimetres, else a raw-deflate block of float32 metres."""
        depth = self._lz4_mm(data)
        if depth is None:
            try:  # at most one byte more than the largest depth image: a deflate bomb stops there
                raw = zlib.decompressobj(wbits=-zlib.MAX_WBITS).decompress(data, 4 * MAX_IMAGE_PIXELS + 1)
            except zlib.error as exc:
                raise SceneError(self.path, f"frame {k}: neither an lz4 nor a raw-deflate depth record ({exc})") from exc
            if len(raw) > 4 * MAX_IMAGE_PIXELS:
                raise SceneError(self.path, f"frame {k}: depth record inflates past {4 * MAX_IMAGE_PIXELS:,} bytes")
            if len(raw) % 4:
                raise SceneError(self.path, f"frame {k}: {len(raw)} inflated bytes are not float32 depth")
            depth = np.frombuffer(raw, dtype="<f4")
        if self.size is None:
            self.size = _infer_size(depth.size, self.aspect, self.path, f"frame {k}")
        w, h = self.size
        if depth.size != w * h:
            raise SceneError(self.path, f"frame {k}: depth of {depth.size} pixels, expected {w}x{h}")
        return depth.reshape(h, w).astype(np.float32)

    def _lz4_mm(self, data: bytes) -> np.ndarray | None:
        """Metres of an LZ4 block of uint16 millimetres, or None when ``data`` is not one."""
        try:
            import lz4.block
        except ImportError:  # then only the deflate variant can be read; say so if that fails too
            return None
        bound = self.size[0] * self.size[1] * 2 if self.size else 1 << 24  # an upper bound is enough
        try:
            raw = lz4.block.decompress(data, uncompressed_size=bound)
        except Exception:  # lz4.block.LZ4BlockError: not an lz4 block
            return None
        if len(raw) % 2 or (self.size is not None and len(raw) != bound):
            return None
        return np.frombuffer(raw, dtype="<u2").astype(np.float32) / 1000.0

    def _read_records(self, frame_ids: list[int]) -> dict[int, np.ndarray]:
        assert self.records is not None
        if max(frame_ids) >= len(self.records):
            raise SceneError(self.path, f"{len(self.records)} depth frames, frame {max(frame_ids)} asked for")
        out: dict[int, np.ndarray] = {}
        with open(self.path, "rb") as f:
            for k in [0, *frame_ids]:  # frame 0 fixes the size every frame must have
                off, n = self.records[k]
                f.seek(off)
                out[k] = self._decode_record(f.read(n), k)
        return {k: out[k] for k in frame_ids}

    # single-stream variant ---------------------------------------------------------------------
    def _scan_stream(self) -> tuple[int, list[_InflatePoint]]:
        """One inflate pass over the whole stream: its inflated length, and resumable points every
        ``SNAPSHOT_BYTES`` of output (so reading the sampled frames afterwards inflates only short
        stretches instead of the stream a second time)."""
        d = zlib.decompressobj(wbits=-zlib.MAX_WBITS)
        points = [_InflatePoint(0, d.copy(), 0)]
        produced, next_point = 0, SNAPSHOT_BYTES
        try:
            with open(self.path, "rb") as f:
                while not d.eof and (chunk := f.read(_INPUT_CHUNK)):
                    produced += len(d.decompress(chunk))  # no output limit: no unconsumed input left
                    if produced >= next_point and not d.eof:
                        points.append(_InflatePoint(produced, d.copy(), f.tell()))
                        next_point = produced + SNAPSHOT_BYTES
            produced += len(d.flush())
        except zlib.error as exc:
            raise SceneError(self.path, f"neither size-prefixed frames nor one deflate stream ({exc})") from exc
        if not d.eof:
            raise SceneError(self.path, "truncated deflate stream")
        return produced, points

    def _stream_size(self, total: int) -> tuple[int, int]:
        """(w, h) of the float32 frames of a ``total``-byte stream: one frame per video frame, of the
        colour aspect; else the real iPhone depth size 256x192 if the stream is a multiple of it."""
        n = self.num_frames
        if total % (4 * n) == 0:
            try:
                return _infer_size(total // (4 * n), self.aspect, self.path, "depth stream")
            except SceneError:
                pass
        if total % (4 * 256 * 192) == 0 and abs(self.aspect - 4 / 3) < 0.03:
            return 256, 192
        raise SceneError(self.path, f"{total} bytes are not {n} float32 depth maps of the colour aspect {self.aspect:.4f}")

    def _read_stream(self, frame_ids: list[int]) -> dict[int, np.ndarray]:
        if self.size is None:  # the stream length fixes the frame size
            total, points = self._scan_stream()
            self.size = self._stream_size(total)
        else:
            points = [_InflatePoint(0, zlib.decompressobj(wbits=-zlib.MAX_WBITS), 0)]
        w, h = self.size
        frame_bytes = w * h * 4
        out: dict[int, np.ndarray] = {}
        cursor: _InflateCursor | None = None
        try:
            for k in sorted(set(frame_ids)):
                start = k * frame_bytes
                best = max((p for p in points if p.produced <= start), key=lambda p: p.produced)
                if cursor is None or cursor.position > start or best.produced > cursor.position:
                    if cursor is not None:
                        cursor.close()
                    cursor = _InflateCursor(self.path, best)
                data = cursor.read(start, frame_bytes)
                if data is None:
                    raise SceneError(self.path, f"depth stream ends before frame {k} ({w}x{h} float32 frames)")
                d = np.frombuffer(data, dtype="<f4").reshape(h, w).copy()
                d[~np.isfinite(d)] = 0.0
                out[k] = d
        except zlib.error as exc:
            raise SceneError(self.path, f"corrupt deflate stream ({exc})") from exc
        finally:
            if cursor is not None:
                cursor.close()
        return out


SNAPSHOT_BYTES = 32 << 20
"""Inflated bytes between resumable points of a single-stream depth.bin."""
_INPUT_CHUNK = 1 << 16


@dataclass(frozen=True)
class _InflatePoint:
    """A place to resume inflating from: output bytes so far, the decompressor state, file offset."""

    produced: int
    state: Any
    file_offset: int


class _InflateCursor:
    """Sequential reads of the inflated stream from a resumable point onwards."""

    def __init__(self, path: Path, point: _InflatePoint) -> None:
        self._d = point.state.copy()
        self._f = open(path, "rb")
        self._f.seek(point.file_offset)
        self._buf = bytearray()
        self.position = point.produced  # stream offset of self._buf[0]

    def read(self, start: int, n: int) -> bytes | None:
        """Bytes [start, start + n) of the inflated stream (start >= position), or None past its end."""
        while self.position + len(self._buf) < start + n:
            drop = min(max(start - self.position, 0), len(self._buf))
            del self._buf[:drop]
            self.position += drop
            chunk = self._f.read(_INPUT_CHUNK)
            if not chunk or self._d.eof:
                return None
            self._buf += self._d.decompress(chunk)
        i = start - self.position
        return bytes(self._buf[i : i + n])

    def close(self) -> None:
        self._f.close()


def read_depth_pngs(depth_dir: Path, frame_ids: list[int]) -> dict[int, np.ndarray]:
    """Extracted depth (``depth/frame_xxxxxx.png``, uint16 mm) -> metres, float32 (H, W)."""
    out: dict[int, np.ndarray] = {}
    for k in frame_ids:
        p = depth_dir / f"frame_{k:06d}.png"
        d = read_image(p, "depth image")
        if d.ndim != 2:
            raise SceneError(p, f"depth image must be single-channel, got shape {d.shape}")
        out[k] = d.astype(np.float32) / 1000.0
    return out


# --------------------------------------------------------------------------------------------------
# Colour
# --------------------------------------------------------------------------------------------------


class _NotSeekable(Exception):
    """A video whose timestamps do not map onto frame numbers at its nominal rate."""


SEEK_AHEAD_FRAMES = 12
"""Decode forward instead of seeking when the next wanted frame is at most this many frames ahead."""


def read_video_frames(path: Path, frame_ids: list[int]) -> dict[int, np.ndarray]:
    """Decode the listed frames (0-based, in display order) of a video as (H, W, 3) uint8 RGB.

    Constant-rate videos are read by seeking to the keyframe before each wanted frame (frame
    number = timestamp x nominal rate); others, and any video whose timestamps do not fit its rate,
    are decoded from the start.
    """
    try:
        import av
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("reading rgb.mkv needs PyAV: pip install av") from exc
    wanted = sorted(set(frame_ids))
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            rate, tb = stream.average_rate, stream.time_base
            if rate and tb:
                try:
                    out = _seek_decode(container, stream, wanted, float(rate), float(tb), stream.start_time or 0)
                except _NotSeekable:
                    container.seek(0, stream=stream)
                    out = _sequential_decode(container, stream, wanted)
            else:
                out = _sequential_decode(container, stream, wanted)
    except (av.error.FFmpegError, IndexError) as exc:
        raise SceneError(path, f"unreadable video ({exc})") from exc
    missing = [k for k in wanted if k not in out]
    if missing:
        raise SceneError(path, f"video ends before frame {missing[0]}")
    return out


def _sequential_decode(container: object, stream: object, wanted: list[int]) -> dict[int, np.ndarray]:
    want, last, out = set(wanted), wanted[-1], {}
    for i, frame in enumerate(container.decode(stream)):  # type: ignore[attr-defined]
        if i in want:
            out[i] = frame.to_ndarray(format="rgb24")
        if i >= last:
            break
    return out


def _seek_decode(
    container: object, stream: object, wanted: list[int], rate: float, tb: float, start: int
) -> dict[int, np.ndarray]:
    out: dict[int, np.ndarray] = {}
    frames = None
    pos = -1  # frame number of the last decoded frame
    for target in wanted:
        if frames is None or not pos < target <= pos + SEEK_AHEAD_FRAMES:
            pts = start + int(round(target / rate / tb))
            container.seek(pts, stream=stream, backward=True, any_frame=False)  # type: ignore[attr-defined]
            frames = iter(container.decode(stream))  # type: ignore[attr-defined]
        for frame in frames:
            if frame.pts is None:
                raise _NotSeekable
            exact = (frame.pts - start) * tb * rate
            pos = int(round(exact))
            if abs(exact - pos) > 0.25:
                raise _NotSeekable
            if pos == target:
                out[target] = frame.to_ndarray(format="rgb24")
            if pos >= target:
                break
    return out


def video_size(path: Path) -> tuple[int, int]:
    """(width, height) of a video's first stream."""
    import av

    try:
        with av.open(str(path)) as container:
            cc = container.streams.video[0].codec_context
            return int(cc.width), int(cc.height)
    except (av.error.FFmpegError, IndexError) as exc:
        raise SceneError(path, f"unreadable video ({exc})") from exc


# --------------------------------------------------------------------------------------------------
# Adapter
# --------------------------------------------------------------------------------------------------


class ScanNetPPAdapter:
    """Adapter for the ScanNet++ layout (see the module docstring for the tree).

    ``pose_source``: "json" (``pose_intrinsic_imu.json``'s aligned poses, default) or "colmap"
    (``iphone/colmap``). ``depth_size``: (width, height) of the depth maps; None infers it.
    """

    def __init__(
        self,
        root: str | Path,
        dataset: str = "scannetpp",
        pose_source: str = "json",
        depth_size: tuple[int, int] | None = None,
    ) -> None:
        if pose_source not in ("json", "colmap"):
            raise ValueError(f"pose_source must be 'json' or 'colmap', got {pose_source!r}")
        self.root = Path(root)
        self.dataset = dataset
        self.data = self.root / "data"
        self.pose_source = pose_source
        self.depth_size = depth_size

    def list_scenes(self) -> list[str]:
        if not self.data.is_dir():
            raise FileNotFoundError(f"{self.data}: not a directory (expected ROOT/data/<scene>/)")
        return sorted(p.name for p in self.data.iterdir() if p.is_dir() and not p.name.startswith("."))

    def load(self, scene_id: str, config: AdapterConfig) -> AdaptedScene:
        d = self.data / scene_id
        if not d.is_dir():
            raise SceneError(d, "scene directory missing")
        scans, iphone = d / "scans", d / "iphone"
        f = {
            "mesh": scans / "mesh_aligned_0.05.ply",
            "segments": scans / "segments.json",
            "anno": scans / "segments_anno.json",
        }
        points, faces = read_mesh(f["mesh"])
        groups = group_vertices(f["anno"], read_segments(f["segments"], len(points)))
        objects, point_instance = instance_objects("scannetpp", points, groups)
        room_size, room_center = room_size_and_center(points, scene_rng(config.seed, "room_size", self.dataset, scene_id))
        if faces is not None:
            faces = instance_faces(faces, point_instance)  # the only faces visibility measures
        frames, images, used = self._frames(scene_id, iphone, points, faces, point_instance, config)
        sources = list(f.values()) + used
        scene = SceneMetadata(
            scene_id=scene_id,
            dataset=self.dataset,
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
        self, scene_id: str, iphone: Path, points: np.ndarray, faces: np.ndarray | None,
        point_instance: np.ndarray, config: AdapterConfig,
    ) -> tuple[FrameMetadata, dict[int, np.ndarray], list[Path]]:
        pose_json = iphone / "pose_intrinsic_imu.json"
        if not iphone.is_dir() or not pose_json.is_file():
            raise SceneError(pose_json, "missing iPhone data (the scene has no iphone/ poses)")
        cams = read_pose_intrinsic_imu(pose_json)
        used = [pose_json]
        if self.pose_source == "colmap":
            cams = read_colmap(iphone / "colmap", cams.num_frames, cams.timestamps)
            used += [iphone / "colmap" / "cameras.txt", iphone / "colmap" / "images.txt"]
        rgb_dir = iphone / "rgb"
        video = next((v for v in (iphone / "rgb.mkv", iphone / "rgb.mp4") if v.is_file()), iphone / "rgb.mkv")
        has_pose = cams.valid()
        if rgb_dir.is_dir():  # possibly only some frames (the toolkit's "COLMAP frames only" extraction)
            present = {p.name for p in rgb_dir.iterdir()}
            has_pose = has_pose & np.array([f"frame_{k:06d}.jpg" in present for k in range(cams.num_frames)], dtype=bool)
        valid = np.flatnonzero(has_pose)
        if len(valid) == 0:
            where = rgb_dir if rgb_dir.is_dir() else used[-1]
            raise SceneError(where, f"no frame with both a finite pose and an image among {cams.num_frames}")
        ids = select_frames(valid, cams.timestamps[valid], config).tolist()

        if rgb_dir.is_dir():
            colors = {k: read_image(rgb_dir / f"frame_{k:06d}.jpg", "colour frame") for k in ids}
            color_size = (colors[ids[0]].shape[1], colors[ids[0]].shape[0])
            color_source = rgb_dir
        elif video.is_file():
            color_size = video_size(video)
            colors = read_video_frames(video, ids)
            color_source = video
        else:
            raise SceneError(video, "missing colour video (neither iphone/rgb/ nor iphone/rgb.mkv or rgb.mp4)")
        used.append(color_source)

        depth_dir, depth_bin = iphone / "depth", iphone / "depth.bin"
        if depth_dir.is_dir():
            depths = read_depth_pngs(depth_dir, ids)
            used.append(depth_dir)
        else:
            aspect = color_size[0] / color_size[1]
            depths = DepthBin(depth_bin, cams.num_frames, aspect, self.depth_size).read(ids)
            used.append(depth_bin)
        first = depths[ids[0]]
        size = (first.shape[1], first.shape[0])

        frames: list[Frame] = []
        images: dict[int, np.ndarray] = {}
        ks: list[np.ndarray] = []
        for k in ids:
            depth = depths[k]
            if depth.shape != first.shape:
                where = depth_dir / f"frame_{k:06d}.png" if depth_dir.is_dir() else depth_bin
                raise SceneError(where, f"frame {k}: depth {depth.shape[1]}x{depth.shape[0]}, others {size[0]}x{size[1]}")
            rgb = colors[k]
            if (rgb.shape[1], rgb.shape[0]) != color_size:
                raise SceneError(color_source, f"frame {k}: colour {rgb.shape[1]}x{rgb.shape[0]}, expected {color_size}")
            kd = scale_intrinsics_to(cams.intrinsics[k], color_size, size)
            ks.append(kd)
            images[k] = resize_rgb(rgb, size)
            pose = cams.poses[k]
            visible = visible_from_projection(
                points, point_instance, pose, kd, depth, config.min_visible_pixels, faces=faces
            )
            frames.append(
                Frame(frame_id=k, timestamp_s=float(cams.timestamps[k]), camera_to_world=pose.tolist(), visible=visible)
            )
        meta = FrameMetadata(
            scene_id=scene_id,
            dataset=self.dataset,
            intrinsics=median_intrinsics(ks, size),
            fps=stream_fps(cams.timestamps, default=SCANNETPP_FPS),
            num_stream_frames=cams.num_frames,
            num_valid_frames=len(valid),
            visibility_source="depth_projection",
            frames=frames,
        )
        return meta, images, used
