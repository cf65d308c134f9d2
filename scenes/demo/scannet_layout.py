"""Write a :class:`~vlm3r.scenes.demo.synthetic.SyntheticScene` in the real ScanNet raw layout.

Directory tree written (DESIGN.md section 4)::

    <root>/scannetv2-labels.combined.tsv              (merged: union of rows over all scenes)
    <root>/scans/<scene_id>/
        <scene_id>_vh_clean_2.ply                     mesh, RAW scan frame, binary little-endian
        <scene_id>_vh_clean_2.labels.ply              same + ``label`` (NYU40 id, ushort)
        <scene_id>_vh_clean_2.0.010000.segs.json      {"params", "sceneId", "segIndices"}
        <scene_id>.aggregation.json                   segGroups: id, objectId, segments, label
        <scene_id>.txt                                axisAlignment (aligned = A @ raw) + sizes
        <scene_id>.sens                               RGB-D stream v4, RAW-frame poses
        <scene_id>_2d-instance-filt.zip               instance-filt/<frame>.png, objectId + 1

The scene keeps its ground truth in the aligned z-up world; everything geometric in the files is in
the raw frame ``inv(A) @ aligned`` exactly as in real ScanNet, so reading the files back and applying
``axisAlignment`` recovers the ground truth. Output is byte-identical for the same scene (fixed zip
dates, no timestamps, fixed JSON key order). Each scene directory is written under a temporary name
and renamed into place when complete; the labels tsv is replaced atomically under a file lock.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np
from vlm3r.schemas.io import atomic_write_bytes as _atomic_write_bytes

from .render import RenderedFrame, SceneRenderer
from vlm3r.scenes.sens import SensFrame, SensHeader, encode_depth_zlib, encode_jpeg, write_sens
from .synthetic import SyntheticScene

LABELS_TSV = "scannetv2-labels.combined.tsv"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
JPEG_QUALITY = 90


@cache
def real_label_rows() -> tuple[str, dict[str, list[str]]]:
    """(header line, {raw_category: cells}) of the real ScanNet label rows the demo writes: a subset
    of ScanNet's own ``scannetv2-labels.combined.tsv`` (real ids, columns and values), shipped as
    ``scenes/data/scannetv2-labels.subset.tsv``."""
    text = resources.files("vlm3r.scenes.data").joinpath("scannetv2-labels.subset.tsv").read_text("utf-8")
    lines = text.splitlines()
    rows = {cells[1]: cells for cells in (line.split("\t") for line in lines[1:] if line.strip())}
    return lines[0], rows


SEGS_PARAMS = {
    "kThresh": "0.0001", "segMinVerts": "20", "minPoints": "750", "maxPoints": "5000",
    "thinThresh": "0.05", "flatThresh": "0.001", "minLength": "0.02", "maxLength": "1",
}


# --------------------------------------------------------------------------------------------------
# Labels tsv
# --------------------------------------------------------------------------------------------------


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive advisory lock on a directory (POSIX flock; a no-op where unavailable), so that
    concurrent writers merging into the same labels tsv do not lose rows. Leaves no file behind."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _read_tsv_rows(path: Path) -> dict[str, list[str]]:
    """Rows of an existing labels tsv keyed by raw_category."""
    if not path.is_file():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    return {cells[1]: cells for cells in (line.split("\t") for line in lines[1:] if line.strip())}


def write_labels_tsv(root: Path, raw_labels: Iterable[str]) -> Path:
    """Write (or extend) ``root/scannetv2-labels.combined.tsv`` with ScanNet's real row of every raw
    label (:func:`real_label_rows`), under ScanNet's real header, rows sorted by id as in the real
    file. Rows already there are kept; a raw label ScanNet's table does not have is a ValueError."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    path = root / LABELS_TSV
    header, real = real_label_rows()
    unknown = sorted(set(raw_labels) - set(real))
    if unknown:
        raise ValueError(f"raw labels not in ScanNet's label table: {', '.join(unknown)}")
    with _locked(root):
        rows = _read_tsv_rows(path)
        for raw in sorted(set(raw_labels)):
            rows.setdefault(raw, real[raw])
        ordered = sorted(rows.values(), key=lambda c: (_int(c[0]), c[1]))
        text = header + "\n" + "".join("\t".join(c) + "\n" for c in ordered)
        _atomic_write_bytes(path, text.encode("utf-8"))
    return path


def _int(s: str) -> int:
    try:
        return int(s)
    except ValueError:
        return 0


# --------------------------------------------------------------------------------------------------
# Scene files
# --------------------------------------------------------------------------------------------------


def _raw_vertices(scene: SyntheticScene) -> np.ndarray:
    """(V, 3) float32 vertices in the raw scan frame: inv(A) @ aligned."""
    inv = np.linalg.inv(scene.axis_alignment)
    return (scene.vertices @ inv[:3, :3].T + inv[:3, 3]).astype(np.float32)


def _vertex_nyu40(scene: SyntheticScene) -> np.ndarray:
    """(V,) uint16 NYU40 id of each vertex's aggregation group (0 for unknown labels)."""
    n_groups = int(scene.vertex_object.max()) + 1
    lut = np.zeros(n_groups, dtype=np.uint16)
    header, real = real_label_rows()
    col = header.split("\t").index("nyu40id")
    for gid in range(n_groups):
        row = real.get(scene.group_label(gid))
        lut[gid] = _int(row[col]) if row is not None else 0
    return lut[scene.vertex_object]


def _write_plys(scene: SyntheticScene, out: Path) -> None:
    from plyfile import PlyData, PlyElement

    xyz = _raw_vertices(scene)
    base = [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1"), ("alpha", "u1")]
    face = np.empty(len(scene.faces), dtype=[("vertex_indices", "<i4", (3,))])
    face["vertex_indices"] = scene.faces
    face_el = PlyElement.describe(face, "face", len_types={"vertex_indices": "u1"}, val_types={"vertex_indices": "i4"})
    for name, extra in ((f"{scene.scene_id}_vh_clean_2.ply", []),
                        (f"{scene.scene_id}_vh_clean_2.labels.ply", [("label", "<u2")])):
        vert = np.empty(len(xyz), dtype=base + extra)
        vert["x"], vert["y"], vert["z"] = xyz[:, 0], xyz[:, 1], xyz[:, 2]
        vert["red"], vert["green"], vert["blue"] = (scene.vertex_colors[:, k] for k in range(3))
        vert["alpha"] = 255
        if extra:
            vert["label"] = _vertex_nyu40(scene)
        PlyData([PlyElement.describe(vert, "vertex"), face_el], text=False, byte_order="<").write(str(out / name))


def _json_bytes(obj: object) -> bytes:
    return json.dumps(obj, separators=(", ", ": ")).encode("utf-8")


def _write_segs_and_aggregation(scene: SyntheticScene, out: Path) -> None:
    sid = scene.scene_id
    segs_name = f"{sid}_vh_clean_2.0.010000.segs.json"
    segs = {"params": dict(SEGS_PARAMS), "sceneId": sid, "segIndices": scene.vertex_segment.tolist()}
    (out / segs_name).write_bytes(_json_bytes(segs))
    n_groups = int(scene.vertex_object.max()) + 1
    order = np.argsort(scene.vertex_object, kind="stable")
    bounds = np.searchsorted(scene.vertex_object[order], np.arange(n_groups + 1))
    groups = []
    for gid in range(n_groups):
        segments = np.unique(scene.vertex_segment[order[bounds[gid]: bounds[gid + 1]]])
        groups.append({"id": gid, "objectId": gid, "segments": segments.tolist(), "label": scene.group_label(gid)})
    agg = {"sceneId": f"scannet.{sid}", "appId": "vlm3r.synthetic", "segGroups": groups,
           "segmentsFile": f"scannet.{segs_name}"}
    (out / f"{sid}.aggregation.json").write_bytes(_json_bytes(agg))


def _scene_type(scene: SyntheticScene) -> str:
    cats = {o.category for o in scene.objects}
    for needles, name in (({"bed", "mattress"}, "Bedroom / Hotel"), ({"oven", "refrigerator", "counter"}, "Kitchen"),
                          ({"printer"}, "Office"), ({"sofa", "tv"}, "Living room / Lounge")):
        if cats & needles:
            return name
    return "Misc."


def _fmt(values: Iterable[float]) -> str:
    """Exact round-trip decimal text of floats (Python's shortest repr)."""
    return " ".join(repr(float(v)) for v in values)


def _write_info_txt(scene: SyntheticScene, out: Path) -> None:
    cfg = scene.config
    cw, ch = cfg.color_size
    fx, fy, cx, cy = scene.intrinsics
    fxc, fyc, cxc, cyc = scene.color_intrinsics()
    n = scene.n_frames
    lines = [
        f"axisAlignment = {_fmt(np.asarray(scene.axis_alignment, dtype=float).reshape(16))}",
        f"colorHeight = {ch}",
        f"colorToDepthExtrinsics = {_fmt(np.eye(4).reshape(16))}",
        f"colorWidth = {cw}",
        f"depthHeight = {cfg.height}",
        f"depthWidth = {cfg.width}",
        f"fx_color = {_fmt([fxc])}", f"fx_depth = {_fmt([fx])}",
        f"fy_color = {_fmt([fyc])}", f"fy_depth = {_fmt([fy])}",
        f"mx_color = {_fmt([cxc])}", f"mx_depth = {_fmt([cx])}",
        f"my_color = {_fmt([cyc])}", f"my_depth = {_fmt([cy])}",
        f"numColorFrames = {n}",
        f"numDepthFrames = {n}",
        "numIMUmeasurements = 0",
        f"sceneType = {_scene_type(scene)}",
    ]
    (out / f"{scene.scene_id}.txt").write_bytes(("\n".join(lines) + "\n").encode("utf-8"))


def _intrinsic_matrix(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[fx, 0, cx, 0], [0, fy, cy, 0], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=float)


def sens_header(scene: SyntheticScene) -> SensHeader:
    """The .sens header of a scene: JPEG colour at the colour size, zlib depth in mm."""
    cfg = scene.config
    cw, ch = cfg.color_size
    return SensHeader(
        version=4, sensor_name="StructureSensor",
        color_intrinsics=_intrinsic_matrix(*scene.color_intrinsics()), color_extrinsics=np.eye(4),
        depth_intrinsics=_intrinsic_matrix(*scene.intrinsics), depth_extrinsics=np.eye(4),
        color_compression=2, depth_compression=1, color_width=cw, color_height=ch,
        depth_width=cfg.width, depth_height=cfg.height, depth_shift=1000.0, num_frames=scene.n_frames,
    )


def raw_poses(scene: SyntheticScene) -> np.ndarray:
    """(N, 4, 4) camera-to-world in the raw scan frame (inv(A) @ aligned); invalid frames all -inf."""
    poses = np.linalg.inv(scene.axis_alignment)[None] @ scene.camera_to_world
    poses[scene.invalid_pose_frames] = -np.inf
    return poses


def rendered_frames(scene: SyntheticScene, native_color: bool = False) -> Iterator[tuple[RenderedFrame, np.ndarray]]:
    """Lazily yield (depth-size render, colour image at the colour size) for every frame.

    With ``native_color`` the colour image is ray cast at the colour size and intrinsics; otherwise
    (default, ~2.5x faster for real-size scans) the depth-size render is resized bilinearly, which
    keeps pixel centres consistent with the scaled intrinsics.
    """
    from PIL import Image

    renderer = SceneRenderer(scene)
    cfg = scene.config
    cw, ch = cfg.color_size
    same = (cw, ch) == (cfg.width, cfg.height)
    for pose in scene.camera_to_world:
        frame = renderer.render(pose, cfg.width, cfg.height, *scene.intrinsics, with_rgb=same or not native_color)
        if same:
            color = frame.rgb
        elif native_color:
            color = renderer.render(pose, cw, ch, *scene.color_intrinsics()).rgb
        else:
            color = np.asarray(Image.fromarray(frame.rgb).resize((cw, ch), Image.BILINEAR))
        yield frame, color


def instance_png(scene: SyntheticScene, object_id: np.ndarray) -> bytes:
    """8-bit PNG of a frame's instance mask: objectId + 1 on benchmark furniture, 0 elsewhere."""
    from PIL import Image

    n = len(scene.objects)
    if n > 254:
        raise ValueError(f"{scene.scene_id}: {n} objects do not fit an 8-bit instance mask")
    mask = np.where((object_id >= 0) & (object_id < n), object_id + 1, 0).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(mask).save(buf, format="PNG")
    return buf.getvalue()


def _zip_entry(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_STORED
    info.create_system = 3
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def _write_stream(scene: SyntheticScene, out: Path, native_color: bool) -> None:
    """The .sens file and the instance zip, frame by frame (nothing held beyond one frame)."""
    sid = scene.scene_id
    poses = raw_poses(scene)
    fps = scene.config.fps
    every = scene.config.mask_every
    with zipfile.ZipFile(out / f"{sid}_2d-instance-filt.zip", "w") as zf:

        def frames() -> Iterator[SensFrame]:
            for i, (frame, color) in enumerate(rendered_frames(scene, native_color)):
                if i % every == 0:
                    _zip_entry(zf, f"instance-filt/{i}.png", instance_png(scene, frame.object_id))
                ts = int(round(i / fps * 1e6))
                jpeg = encode_jpeg(color, quality=JPEG_QUALITY)
                yield SensFrame(poses[i], jpeg, encode_depth_zlib(frame.depth_mm), ts, ts)

        write_sens(out / f"{sid}.sens", sens_header(scene), frames())


@contextmanager
def atomic_scene_dir(final: Path) -> Iterator[Path]:
    """A temporary directory beside ``final`` that replaces it when the block completes."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o755)
        if final.exists():
            trash = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent))
            os.replace(final, trash / "old")
            os.replace(tmp, final)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_scannet_scene(scene: SyntheticScene, root: Path, *, native_color: bool = False) -> Path:
    """Write ``scene`` under ``root/scans/<scene_id>/`` in the ScanNet raw layout and merge its raw
    labels into ``root/scannetv2-labels.combined.tsv``. Returns the scene directory.

    The directory is built under a temporary name in ``root/scans`` and renamed into place when
    complete (an existing directory of the same name is replaced). See :func:`rendered_frames` for
    ``native_color``.
    """
    root = Path(root)
    final = root / "scans" / scene.scene_id
    with atomic_scene_dir(final) as tmp:
        _write_plys(scene, tmp)
        _write_segs_and_aggregation(scene, tmp)
        _write_info_txt(scene, tmp)
        _write_stream(scene, tmp, native_color)
        labels = [scene.group_label(g) for g in range(int(scene.vertex_object.max()) + 1)]
        write_labels_tsv(root, labels)
    return final
