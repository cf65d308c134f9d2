"""Write a :class:`~vlm3r.scenes.demo.synthetic.SyntheticScene` in the ScanNet++ raw layout.

Directory tree written (what :mod:`vlm3r.scenes.scannetpp` reads)::

    <root>/data/<scene_id>/
      scans/mesh_aligned_0.05.ply        aligned z-up world, binary little-endian, vertex colours
      scans/segments.json                {"sceneId", "segIndices"}
      scans/segments_anno.json           segGroups: id, objectId, label, segments, obb
      iphone/pose_intrinsic_imu.json     per frame: timestamp, intrinsic (colour image), pose (a raw
                                         "ARKit" frame), aligned_pose (NaN for invalid frames), imu
      iphone/rgb.mkv                     colour video (MPEG-4 Part 2, fixed quantiser), or with
                                         ``rgb="jpg"`` iphone/rgb/frame_000000.jpg ...
      iphone/depth.bin                   the official decoder's three variants: ``depth="stream"``: one
                                         raw-deflate stream of float32 metres; ``"per_frame_lz4"``:
                                         uint32 size + LZ4 block of uint16 mm; ``"per_frame_deflate"``:
                                         uint32 size + raw-deflate block of float32 metres
      iphone/colmap/cameras.txt, images.txt, points3D.txt   PINHOLE camera, valid frames only

Depth maps have the scene's depth size (``config.width`` x ``config.height``); colour frames its
colour size. The scene directory is built under a temporary name and renamed into place. Output is
deterministic for the same scene and options.
"""

from __future__ import annotations

import json
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np

from .scannet_layout import atomic_scene_dir, rendered_frames
from vlm3r.scenes.sens import encode_jpeg
from .synthetic import SyntheticScene

SCANNETPP_LABELS = {
    "radiator": "heater",
    "lamp": "table lamp",
    "nightstand": "bedside table",
    "trash bin": "trash can",
    "recycling bin": "trash can",
}
"""Synthetic (ScanNet) raw label -> the ScanNet++ instance label written (others are written
unchanged). ScanNet++'s vocabulary then keeps, renames or drops it as it would a real label
(``window``, ``towel``, ``backpack`` and ``desk`` are dropped; ``trash can`` stays a category)."""


def scannetpp_label(raw_label: str) -> str:
    """The ScanNet++ label the writer gives an object or structure of this synthetic raw label."""
    return SCANNETPP_LABELS.get(raw_label, raw_label)


RGB_VARIANTS = ("mkv", "mp4", "jpg")
DEPTH_VARIANTS = ("stream", "per_frame_lz4", "per_frame_deflate")
VIDEO_QUANTISER = 2
JPEG_QUALITY = 92


def write_mesh_ply(path: Path, vertices: np.ndarray, faces: np.ndarray, colors: np.ndarray) -> None:
    """Binary little-endian PLY: float32 x, y, z, uchar red, green, blue per vertex; int32 faces."""
    from plyfile import PlyData, PlyElement

    v = np.asarray(vertices, dtype=np.float32)
    vert = np.empty(len(v), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    vert["x"], vert["y"], vert["z"] = v[:, 0], v[:, 1], v[:, 2]
    vert["red"], vert["green"], vert["blue"] = (np.asarray(colors)[:, k] for k in range(3))
    face = np.empty(len(faces), dtype=[("vertex_indices", "<i4", (3,))])
    face["vertex_indices"] = faces
    face_el = PlyElement.describe(face, "face", len_types={"vertex_indices": "u1"}, val_types={"vertex_indices": "i4"})
    PlyData([PlyElement.describe(vert, "vertex"), face_el], text=False, byte_order="<").write(str(path))


def _group_label(scene: SyntheticScene, gid: int) -> str:
    return scannetpp_label(scene.group_label(gid))


def _box_meta(centroid: np.ndarray, extent: np.ndarray, rotation: np.ndarray) -> dict[str, list[float]]:
    return {
        "centroid": np.asarray(centroid, float).tolist(),
        "axesLengths": np.asarray(extent, float).tolist(),
        "normalizedAxes": np.asarray(rotation, float).T.reshape(9).tolist(),
    }


def _write_scans(scene: SyntheticScene, scans: Path) -> None:
    scans.mkdir(parents=True)
    write_mesh_ply(scans / "mesh_aligned_0.05.ply", scene.vertices, scene.faces, scene.vertex_colors)
    sid = scene.scene_id
    (scans / "segments.json").write_text(json.dumps({"sceneId": sid, "segIndices": scene.vertex_segment.tolist()}))
    n_groups = int(scene.vertex_object.max()) + 1
    order = np.argsort(scene.vertex_object, kind="stable")
    bounds = np.searchsorted(scene.vertex_object[order], np.arange(n_groups + 1))
    groups = []
    for gid in range(n_groups):
        members = order[bounds[gid]: bounds[gid + 1]]
        if gid < len(scene.objects):
            o = scene.objects[gid]
            obb = _box_meta(o.centroid, o.axes_lengths, o.rotation)
        else:
            lo, hi = scene.vertices[members].min(axis=0), scene.vertices[members].max(axis=0)
            obb = _box_meta((lo + hi) / 2, hi - lo, np.eye(3))
        groups.append({
            "id": gid, "objectId": gid, "label": _group_label(scene, gid),
            "segments": np.unique(scene.vertex_segment[members]).tolist(), "obb": obb,
        })
    (scans / "segments_anno.json").write_text(json.dumps({"sceneId": sid, "segGroups": groups}))


def _k3(fx: float, fy: float, cx: float, cy: float) -> list[list[float]]:
    return [[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]]


def _colour_intrinsics(scene: SyntheticScene) -> tuple[float, float, float, float]:
    """The colour camera's intrinsics as ScanNet++ relates them to the depth image's: every entry
    scaled by the colour / depth size ratio (``c' = c * s``, the toolkit's convention)."""
    s = scene.config.color_scale
    return tuple(float(x) * s for x in scene.intrinsics)  # type: ignore[return-value]


def _write_poses(scene: SyntheticScene, iphone: Path) -> None:
    invalid = set(scene.invalid_pose_frames.tolist())
    raw_from_aligned = np.linalg.inv(scene.axis_alignment)
    k = _k3(*_colour_intrinsics(scene))
    entries = {}
    for i, pose in enumerate(scene.camera_to_world):
        aligned = np.full((4, 4), np.nan) if i in invalid else pose
        entries[f"frame_{i:06d}"] = {
            "timestamp": i / scene.config.fps,
            "intrinsic": k,
            "pose": (raw_from_aligned @ aligned).tolist(),
            "aligned_pose": aligned.tolist(),
            "imu": {},
        }
    (iphone / "pose_intrinsic_imu.json").write_text(json.dumps(entries))


def _write_colmap(scene: SyntheticScene, colmap: Path) -> None:
    from scipy.spatial.transform import Rotation

    colmap.mkdir(parents=True)
    cw, ch = scene.config.color_size
    fx, fy, cx, cy = _colour_intrinsics(scene)
    (colmap / "cameras.txt").write_text(
        "# Camera list with one line of data per camera:\n#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]\n"
        f"1 PINHOLE {cw} {ch} {fx!r} {fy!r} {cx!r} {cy!r}\n"
    )
    invalid = set(scene.invalid_pose_frames.tolist())
    lines = ["# Image list with two lines of data per image:",
             "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME", "#   POINTS2D[] as (X, Y, POINT3D_ID)"]
    for i, pose in enumerate(scene.camera_to_world):
        if i in invalid:
            continue
        w2c = np.linalg.inv(pose)
        qx, qy, qz, qw = Rotation.from_matrix(w2c[:3, :3]).as_quat()
        t = w2c[:3, 3]
        lines += [" ".join([str(i + 1), *(repr(float(x)) for x in (qw, qx, qy, qz, *t)), "1", f"frame_{i:06d}.jpg"]), ""]
    (colmap / "images.txt").write_text("\n".join(lines) + "\n")
    (colmap / "points3D.txt").write_text("# 3D point list (empty)\n")


class _VideoWriter:
    """MPEG-4 Part 2 in Matroska at a fixed quantiser, one thread: deterministic bytes."""

    def __init__(self, path: Path, width: int, height: int, fps: float) -> None:
        import av

        if width % 2 or height % 2:
            raise ValueError(f"rgb.mkv needs an even colour size, got {width}x{height}")
        self.rate = Fraction(fps).limit_denominator(1000)
        self.container = av.open(str(path), mode="w", format="matroska" if path.suffix == ".mkv" else "mp4")
        self.stream = self.container.add_stream("mpeg4", rate=self.rate)
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, "yuv420p"
        self.stream.time_base = 1 / self.rate
        cc = self.stream.codec_context
        cc.thread_count = 1
        cc.qscale = True
        cc.global_quality = VIDEO_QUANTISER * 118  # FFmpeg's FF_QP2LAMBDA
        self.n = 0

    def write(self, rgb: np.ndarray) -> None:
        import av
        from vlm3r.scenes.video import rgb_to_yuv420

        frame = av.VideoFrame.from_ndarray(rgb_to_yuv420(np.ascontiguousarray(rgb)), format="yuv420p")
        frame.pts, frame.time_base = self.n, 1 / self.rate
        self.container.mux(self.stream.encode(frame))
        self.n += 1

    def close(self) -> None:
        self.container.mux(self.stream.encode())
        self.container.close()


def _write_stream(scene: SyntheticScene, iphone: Path, rgb: str, depth: str, native_color: bool) -> None:
    """Colour (video or JPEGs) and depth.bin, frame by frame."""
    cw, ch = scene.config.color_size
    video = _VideoWriter(iphone / f"rgb.{rgb}", cw, ch, scene.config.fps) if rgb in ("mkv", "mp4") else None
    if rgb == "jpg":
        (iphone / "rgb").mkdir()
    stream = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS) if depth == "stream" else None
    try:
        with open(iphone / "depth.bin", "wb") as out:
            for i, (frame, color) in enumerate(rendered_frames(scene, native_color)):
                if video is not None:
                    video.write(color)
                else:
                    (iphone / "rgb" / f"frame_{i:06d}.jpg").write_bytes(encode_jpeg(color, quality=JPEG_QUALITY))
                if stream is not None:
                    out.write(stream.compress((frame.depth_mm.astype("<f4") / np.float32(1000.0)).tobytes()))
                elif depth == "per_frame_lz4":
                    import lz4.block

                    payload = lz4.block.compress(frame.depth_mm.astype("<u2").tobytes(), store_size=False)
                    out.write(len(payload).to_bytes(4, "little") + payload)
                else:
                    c = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
                    payload = c.compress((frame.depth_mm.astype("<f4") / np.float32(1000.0)).tobytes()) + c.flush()
                    out.write(len(payload).to_bytes(4, "little") + payload)
            if stream is not None:
                out.write(stream.flush())
    finally:
        if video is not None:
            video.close()


def write_scannetpp_scene(
    scene: SyntheticScene,
    root: Path,
    *,
    rgb: str = "mkv",
    depth: str = "stream",
    colmap: bool = True,
    native_color: bool = False,
) -> Path:
    """Write ``scene`` under ``root/data/<scene_id>/`` in the ScanNet++ layout; returns that folder.

    ``rgb``: "mkv" (the release's video), "mp4" (older downloads' ``rgb.mp4``) or "jpg" (extracted
    frames); ``depth``: "stream" (one deflate stream of float32 metres), "per_frame_lz4"
    (size-prefixed LZ4 uint16 mm records) or "per_frame_deflate" (size-prefixed deflate float32 m);
    ``colmap``: also write the COLMAP text model; ``native_color``: see
    :func:`vlm3r.scenes.demo.scannet_layout.rendered_frames`.
    """
    if rgb not in RGB_VARIANTS or depth not in DEPTH_VARIANTS:
        raise ValueError(f"rgb must be one of {RGB_VARIANTS} and depth one of {DEPTH_VARIANTS}, got {rgb!r}, {depth!r}")
    final = Path(root) / "data" / scene.scene_id
    with atomic_scene_dir(final) as tmp:
        _write_scans(scene, tmp / "scans")
        iphone = tmp / "iphone"
        iphone.mkdir()
        _write_poses(scene, iphone)
        if colmap:
            _write_colmap(scene, iphone / "colmap")
        _write_stream(scene, iphone, rgb, depth, native_color)
    return final
