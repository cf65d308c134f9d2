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
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
from vlm3r.schemas.io import atomic_write_bytes as _atomic_write_bytes

from .render import RenderedFrame, SceneRenderer
from vlm3r.scenes.sens import SensFrame, SensHeader, encode_depth_zlib, encode_jpeg, write_sens
from .synthetic import SyntheticScene

LABELS_TSV = "scannetv2-labels.combined.tsv"
TSV_COLUMNS = (
    "id", "raw_category", "category", "count", "nyu40id", "eigen13id", "nyuClass", "nyu40class",
    "eigen13class", "ModelNetId", "ModelNet40", "ModelNet40Class", "wnsynsetid", "wnsynsetkey",
    "mpcat40index", "mpcat40",
)
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
JPEG_QUALITY = 90


@dataclass(frozen=True)
class LabelRow:
    """One row of the labels tsv written for a raw label (NYU40 / eigen13 / mpcat40 classes)."""

    id: int
    raw_category: str
    category: str
    nyu40id: int
    nyu40class: str
    eigen13id: int
    eigen13class: str
    mpcat40index: int
    mpcat40: str

    def cells(self) -> list[str]:
        """The 16 tsv cells in TSV_COLUMNS order (count fixed to 1; ModelNet/WordNet left empty)."""
        return [str(self.id), self.raw_category, self.category, "1", str(self.nyu40id), str(self.eigen13id),
                self.nyu40class, self.nyu40class, self.eigen13class, "", "", "", "", "",
                str(self.mpcat40index), self.mpcat40]


def _rows(*rows: tuple[str, str, int, str, int, str, int, str]) -> MappingProxyType[str, LabelRow]:
    return MappingProxyType({r[0]: LabelRow(i + 1, *r) for i, r in enumerate(rows)})


LABEL_ROWS: MappingProxyType[str, LabelRow] = _rows(
    # raw_category, category, nyu40id, nyu40class, eigen13id, eigen13class, mpcat40index, mpcat40
    ("wall", "wall", 1, "wall", 12, "Wall", 1, "wall"),
    ("floor", "floor", 2, "floor", 5, "Floor", 2, "floor"),
    ("ceiling", "ceiling", 22, "ceiling", 3, "Ceiling", 17, "ceiling"),
    ("chair", "chair", 5, "chair", 4, "Chair", 3, "chair"),
    ("office chair", "office chair", 5, "chair", 4, "Chair", 3, "chair"),
    ("table", "table", 7, "table", 10, "Table", 5, "table"),
    ("coffee table", "coffee table", 7, "table", 10, "Table", 5, "table"),
    ("dining table", "dining table", 7, "table", 10, "Table", 5, "table"),
    ("bed", "bed", 4, "bed", 1, "Bed", 11, "bed"),
    ("sofa", "sofa", 6, "sofa", 9, "Sofa", 10, "sofa"),
    ("couch", "couch", 6, "sofa", 9, "Sofa", 10, "sofa"),
    ("window", "window", 9, "window", 13, "Window", 9, "window"),
    ("bookshelf", "bookshelf", 10, "bookshelf", 6, "Furniture", 31, "shelving"),
    ("bookcase", "bookcase", 10, "bookshelf", 6, "Furniture", 31, "shelving"),
    ("counter", "counter", 12, "counter", 6, "Furniture", 26, "counter"),
    ("kitchen counter", "kitchen counter", 12, "counter", 6, "Furniture", 26, "counter"),
    ("desk", "desk", 14, "desk", 10, "Table", 5, "table"),
    ("refrigerator", "refrigerator", 24, "refridgerator", 6, "Furniture", 37, "appliances"),
    ("fridge", "fridge", 24, "refridgerator", 6, "Furniture", 37, "appliances"),
    ("door", "door", 8, "door", 12, "Wall", 4, "door"),
    ("lamp", "lamp", 35, "lamp", 7, "Objects", 28, "lighting"),
    ("printer", "printer", 40, "otherprop", 7, "Objects", 37, "appliances"),
    ("towel", "towel", 27, "towel", 7, "Objects", 20, "towel"),
    ("tv", "tv", 25, "television", 11, "TV", 22, "tv_monitor"),
    ("nightstand", "nightstand", 32, "night stand", 6, "Furniture", 13, "chest_of_drawers"),
    ("night stand", "night stand", 32, "night stand", 6, "Furniture", 13, "chest_of_drawers"),
    ("plant", "plant", 40, "otherprop", 7, "Objects", 14, "plant"),
    ("potted plant", "plant", 40, "otherprop", 7, "Objects", 14, "plant"),
    ("backpack", "backpack", 37, "bag", 7, "Objects", 39, "objects"),
    ("trash can", "trash can", 39, "otherfurniture", 6, "Furniture", 39, "objects"),
    ("recycling bin", "recycling bin", 39, "otherfurniture", 6, "Furniture", 39, "objects"),
    ("closet", "closet", 39, "otherfurniture", 6, "Furniture", 7, "cabinet"),
    ("fan", "fan", 40, "otherprop", 7, "Objects", 39, "objects"),
    ("washing machine", "washing machine", 39, "otherfurniture", 6, "Furniture", 37, "appliances"),
    ("mirror", "mirror", 19, "mirror", 7, "Objects", 21, "mirror"),
    ("piano", "piano", 39, "otherfurniture", 6, "Furniture", 39, "objects"),
    ("radiator", "radiator", 39, "otherfurniture", 6, "Furniture", 39, "objects"),
    ("clock", "clock", 40, "otherprop", 7, "Objects", 39, "objects"),
    ("guitar", "guitar", 40, "otherprop", 7, "Objects", 39, "objects"),
    ("bicycle", "bicycle", 40, "otherprop", 7, "Objects", 39, "objects"),
    ("oven", "oven", 39, "otherfurniture", 6, "Furniture", 37, "appliances"),
    ("mattress", "mattress", 39, "otherfurniture", 6, "Furniture", 11, "bed"),
)
"""Labels tsv rows for every raw label the synthetic scenes use. ``category`` is the cleaned
ScanNet200-style name; for office chair / coffee table / dining table / kitchen counter it is not a
benchmark name and the benchmark category follows from ``nyu40class`` (chair, table, counter).
Rule the rows satisfy (the ScanNet adapter's): a NYU40 class that is a ScanNet20 benchmark name
decides the category, otherwise ``category`` (after synonyms) does -- hence mattress is NYU40
otherfurniture here, so that it is not read as a bed."""

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
    """Rows of an existing labels tsv keyed by raw_category (cells padded to 16)."""
    rows: dict[str, list[str]] = {}
    if not path.is_file():
        return rows
    lines = path.read_text(encoding="utf-8").splitlines()
    for line in lines[1:]:
        if not line.strip():
            continue
        cells = line.split("\t")
        cells += [""] * (len(TSV_COLUMNS) - len(cells))
        rows.setdefault(cells[1], cells[: len(TSV_COLUMNS)])
    return rows


def write_labels_tsv(root: Path, raw_labels: Iterable[str]) -> Path:
    """Write (or extend) ``root/scannetv2-labels.combined.tsv`` with one row per raw label.

    Existing rows are kept unchanged; raw labels already present are not rewritten. Known raw labels
    get the fixed row of LABEL_ROWS; an unknown one gets category = raw label and NYU40 otherprop.
    Rows are sorted by id so the file does not depend on the order scenes were written in.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    path = root / LABELS_TSV
    with _locked(root):
        rows = _read_tsv_rows(path)
        next_id = max([r.id for r in LABEL_ROWS.values()] + [_int(c[0]) for c in rows.values()]) + 1
        for raw in sorted(set(raw_labels)):
            if raw in rows:
                continue
            known = LABEL_ROWS.get(raw)
            if known is None:
                known = LabelRow(next_id, raw, raw, 40, "otherprop", 7, "Objects", 39, "objects")
                next_id += 1
            rows[raw] = known.cells()
        ordered = sorted(rows.values(), key=lambda c: (_int(c[0]), c[1]))
        text = "\t".join(TSV_COLUMNS) + "\n" + "".join("\t".join(c) + "\n" for c in ordered)
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
    for gid in range(n_groups):
        row = LABEL_ROWS.get(scene.group_label(gid))
        lut[gid] = row.nyu40id if row is not None else 0
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
                          ({"desk", "printer"}, "Office"), ({"sofa", "tv"}, "Living room / Lounge")):
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
