"""Synthetic scenes: scene spec, ray-cast renderer and the ScanNet raw-layout writer.

Geometry is checked with methods independent of the generator's own (3D separating-axis test,
winding-number point-in-polygon, explicit box-surface distances).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest

from vlm3r.scenes.sens import SensReader
from vlm3r.scenes.demo.synthetic import (
    CATALOGUE,
    SyntheticConfig,
    SyntheticObject,
    SyntheticScene,
    benchmark_categories,
    look_rotation,
    make_scene,
)

pytest.importorskip("open3d")

from vlm3r.scenes.demo.render import SceneRenderer  # noqa: E402
from vlm3r.scenes.categories import source_category  # noqa: E402
from vlm3r.scenes.demo.scannet_layout import LABELS_TSV, write_labels_tsv, write_scannet_scene  # noqa: E402

SMALL = SyntheticConfig(n_frames=60, width=64, height=48, mesh_resolution=0.25, n_invalid_poses=3)
SEEDS = range(6)


# ----------------------------------------------------------------------------------------------
# independent geometry helpers
# ----------------------------------------------------------------------------------------------


def winding_inside(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Winding-number point-in-polygon (non-zero rule)."""
    wn = np.zeros(len(points), dtype=int)
    for a, b in zip(polygon, np.roll(polygon, -1, axis=0)):
        cross = (b[0] - a[0]) * (points[:, 1] - a[1]) - (points[:, 0] - a[0]) * (b[1] - a[1])
        up = (a[1] <= points[:, 1]) & (b[1] > points[:, 1]) & (cross > 0)
        down = (a[1] > points[:, 1]) & (b[1] <= points[:, 1]) & (cross < 0)
        wn += up.astype(int) - down.astype(int)
    return wn != 0


def boxes_separated(a: SyntheticObject, b: SyntheticObject) -> bool:
    """3D separating-axis test of two solid oriented boxes (15 candidate axes)."""
    ra, rb = a.rotation, b.rotation
    axes = [ra[:, i] for i in range(3)] + [rb[:, i] for i in range(3)]
    axes += [np.cross(ra[:, i], rb[:, j]) for i in range(3) for j in range(3)]
    d = b.centroid - a.centroid
    for ax in axes:
        n = np.linalg.norm(ax)
        if n < 1e-9:
            continue
        ax = ax / n
        pa = np.sum(np.abs(ra.T @ ax) * a.axes_lengths / 2)
        pb = np.sum(np.abs(rb.T @ ax) * b.axes_lengths / 2)
        if abs(d @ ax) > pa + pb:
            return True
    return False


def local(obj: SyntheticObject, points: np.ndarray) -> np.ndarray:
    return (points - obj.centroid) @ obj.rotation


def distance_to_box_surface(obj: SyntheticObject, points: np.ndarray) -> np.ndarray:
    q = np.abs(local(obj, points)) - obj.axes_lengths / 2
    outside = np.linalg.norm(np.maximum(q, 0.0), axis=1)
    inside = np.minimum(q.max(axis=1), 0.0)
    return outside + np.abs(inside)


def inside_box(obj: SyntheticObject, points: np.ndarray) -> np.ndarray:
    return (np.abs(local(obj, points)) < obj.axes_lengths / 2).all(axis=1)


def sha256_tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def scenes() -> list[SyntheticScene]:
    return [make_scene(f"scene{s:04d}_00", s, SMALL) for s in SEEDS]


# ----------------------------------------------------------------------------------------------
# scene spec
# ----------------------------------------------------------------------------------------------


def test_make_scene_is_deterministic_and_seed_dependent() -> None:
    a = make_scene("scene0000_00", 7, SMALL)
    b = make_scene("scene0000_00", 7, SMALL)
    c = make_scene("scene0000_00", 8, SMALL)
    for name in ("room_polygon", "vertices", "faces", "vertex_colors", "vertex_object", "vertex_segment",
                 "camera_to_world", "invalid_pose_frames", "axis_alignment"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert [(o.category, o.raw_label) for o in a.objects] == [(o.category, o.raw_label) for o in b.objects]
    for oa, ob in zip(a.objects, b.objects):
        np.testing.assert_array_equal(oa.centroid, ob.centroid)
    assert a.structure_labels == b.structure_labels and a.intrinsics == b.intrinsics
    assert a.camera_to_world.shape != c.camera_to_world.shape or not np.allclose(a.camera_to_world, c.camera_to_world)
    assert a.vertices.shape != c.vertices.shape or not np.allclose(a.vertices, c.vertices)


def test_room_shape(scenes: list[SyntheticScene]) -> None:
    for s in scenes:
        poly = s.room_polygon
        assert len(poly) in (4, 6)
        x, y = poly[:, 0], poly[:, 1]
        area = 0.5 * (np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))
        assert area > 0, "polygon must be counter-clockwise"
        assert math.isclose(area, s.room_area, rel_tol=1e-9)
        assert 12.0 - 1e-9 <= s.room_area <= 60.0 + 1e-9
        side = poly.max(axis=0) - poly.min(axis=0)
        assert (side >= 3.0).all() and (side <= 9.0).all()
        assert 2.5 <= s.wall_height <= 3.0
        assert set(s.structure_labels.values()) == {"wall", "floor", "ceiling"}
        assert min(s.structure_labels) == len(s.objects)


def test_objects_valid(scenes: list[SyntheticScene]) -> None:
    bench = set(benchmark_categories())
    sizes = {spec.category: np.array(spec.size) for spec in CATALOGUE}
    for s in scenes:
        lo, hi = s.config.n_objects
        assert lo <= len(s.objects) <= hi
        assert [o.instance_id for o in s.objects] == list(range(len(s.objects)))
        cats = [o.category for o in s.objects]
        counts = {c: cats.count(c) for c in cats}
        assert any(n >= 2 for n in counts.values()) and any(n == 1 for n in counts.values())
        for o in s.objects:
            assert o.category in bench
            assert o.raw_label in next(sp.raw_labels for sp in CATALOGUE if sp.category == o.category)
            np.testing.assert_allclose(o.rotation.T @ o.rotation, np.eye(3), atol=1e-12)
            assert np.linalg.det(o.rotation) == pytest.approx(1.0)
            ratio = o.axes_lengths / sizes[o.category]
            assert (ratio >= 0.85 - 1e-9).all() and (ratio <= 1.15 + 1e-9).all()
            corners = o.corners()
            assert winding_inside(corners[:, :2], s.room_polygon).all(), o
            foot = corners[[0, 2, 6, 4], :2]  # bottom rectangle in order; sample its edges densely
            t = np.linspace(0.0, 1.0, 25)[:, None, None]
            edge_pts = (foot[None] * (1 - t) + np.roll(foot, -1, axis=0)[None] * t).reshape(-1, 2)
            assert winding_inside(edge_pts, s.room_polygon).all(), o
            assert corners[:, 2].min() >= 0.0 and corners[:, 2].max() <= s.wall_height
        for i, a in enumerate(s.objects):
            for b in s.objects[i + 1:]:
                assert boxes_separated(a, b), (s.scene_id, a.category, b.category)


def test_object_mesh_is_its_box(scenes: list[SyntheticScene]) -> None:
    s = scenes[0]
    for o in s.objects:
        v = s.vertices[s.vertex_object == o.instance_id]
        q = local(o, v)
        np.testing.assert_allclose(q.min(axis=0), -o.axes_lengths / 2, atol=1e-9)
        np.testing.assert_allclose(q.max(axis=0), o.axes_lengths / 2, atol=1e-9)
        assert distance_to_box_surface(o, v).max() < 1e-9
        assert len(np.unique(s.vertex_segment[s.vertex_object == o.instance_id])) == 6
    # every vertex group is furniture or structure; the mesh is consistent
    groups = set(np.unique(s.vertex_object).tolist())
    assert groups == set(range(len(s.objects))) | set(s.structure_labels)
    assert s.faces.min() >= 0 and s.faces.max() < len(s.vertices)
    assert (s.vertex_object[s.faces[:, 0]] == s.vertex_object[s.faces[:, 1]]).all()
    assert s.vertex_colors.dtype == np.uint8 and s.vertices.dtype == np.float64 and s.faces.dtype == np.int64


def test_open3d_minimal_box_matches() -> None:
    import open3d as o3d

    s = make_scene("scene0001_00", 1, SyntheticConfig(n_frames=4, mesh_resolution=0.3))
    o = s.objects[0]
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(s.vertices[s.vertex_object == o.instance_id]))
    box = pcd.get_minimal_oriented_bounding_box()
    np.testing.assert_allclose(box.center, o.centroid, atol=1e-6)
    assert np.prod(box.extent) == pytest.approx(np.prod(o.axes_lengths), rel=1e-6)


def test_camera_path(scenes: list[SyntheticScene]) -> None:
    for s in scenes:
        poses = s.camera_to_world
        n = s.config.n_frames
        assert poses.shape == (n, 4, 4) and np.isfinite(poses).all()
        rot = poses[:, :3, :3]
        gram = np.einsum("nji,njk->nik", rot, rot)
        np.testing.assert_allclose(gram, np.broadcast_to(np.eye(3), (n, 3, 3)), atol=1e-9)
        np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-9)
        np.testing.assert_array_equal(poses[:, 3], np.broadcast_to([0, 0, 0, 1.0], (n, 4)))
        # no roll: camera x axis horizontal; looking slightly down (camera z has negative world z)
        assert np.abs(rot[:, 2, 0]).max() < 1e-9
        assert (rot[:, 2, 2] < 0).all() and (rot[:, 2, 2] > -0.6).all()
        c = poses[:, :3, 3]
        assert winding_inside(c[:, :2], s.room_polygon).all()
        assert (c[:, 2] > 1.3).all() and (c[:, 2] < 1.7).all()
        for o in s.objects:
            assert not inside_box(o, c).any(), o.category
        step = np.linalg.norm(np.diff(c, axis=0), axis=1)
        assert step.max() < 1.2 * 0.8 / s.config.fps + 0.005
        assert step.sum() > 0.25 * (n - 1) / s.config.fps
        cos_turn = np.einsum("nij,nij->n", rot[1:], rot[:-1])  # trace of relative rotation
        turn = np.degrees(np.arccos(np.clip((cos_turn - 1) / 2, -1, 1)))
        assert turn.max() < 10.0
        inv = s.invalid_pose_frames
        assert len(inv) == 3 and 0 not in inv and len(set(inv.tolist())) == 3 and inv.max() < n


def test_look_rotation_convention() -> None:
    r = look_rotation(np.array([0.0]), np.array([0.0]))[0]
    np.testing.assert_allclose(r[:, 2], [1, 0, 0], atol=1e-12)  # forward
    np.testing.assert_allclose(r[:, 0], [0, -1, 0], atol=1e-12)  # right
    np.testing.assert_allclose(r[:, 1], [0, 0, -1], atol=1e-12)  # down


def test_config() -> None:
    real = SyntheticConfig.real_scan_size()
    assert (real.width, real.height, real.n_frames) == (640, 480, 2000)
    assert real.color_size == (1296, 972)
    with pytest.raises(ValueError):
        SyntheticConfig(n_objects=(5, 4))
    s = make_scene("scene0002_00", 2, SMALL)
    fx, fy, cx, cy = s.intrinsics
    assert math.degrees(2 * math.atan(SMALL.width / 2 / fx)) == pytest.approx(SMALL.fov_x_deg)
    assert (cx, cy) == ((SMALL.width - 1) / 2, (SMALL.height - 1) / 2)
    a = s.axis_alignment
    np.testing.assert_allclose(a[:3, :3] @ a[:3, :3].T, np.eye(3), atol=1e-12)
    yaw = math.degrees(math.atan2(a[1, 0], a[0, 0])) % 90.0
    assert 5.0 < yaw < 85.0 and np.linalg.norm(a[:3, 3]) > 0


# ----------------------------------------------------------------------------------------------
# renderer
# ----------------------------------------------------------------------------------------------


def test_render_backprojects_onto_hit_object(scenes: list[SyntheticScene]) -> None:
    rng = np.random.default_rng(0)
    w, h = 96, 72
    checked = 0
    for s in scenes[:3]:
        fx = w / 2 / math.tan(math.radians(s.config.fov_x_deg) / 2)
        cx, cy = (w - 1) / 2, (h - 1) / 2
        renderer = SceneRenderer(s)
        for i in (0, s.n_frames // 2, s.n_frames - 1):
            pose = s.camera_to_world[i]
            f = renderer.render(pose, w, h, fx, fx, cx, cy)
            assert f.rgb.shape == (h, w, 3) and f.rgb.dtype == np.uint8
            assert f.depth_mm.dtype == np.uint16 and f.object_id.dtype == np.int64
            assert ((f.depth_mm == 0) == (f.object_id == -1)).all()
            assert (f.object_id >= 0).mean() > 0.99  # closed room: almost every ray hits
            v, u = np.nonzero(f.object_id < len(s.objects))
            if len(u) == 0:
                continue
            pick = rng.choice(len(u), size=min(50, len(u)), replace=False)
            u, v = u[pick], v[pick]
            z = f.depth_mm[v, u] / 1000.0
            cam = np.stack([(u - cx) / fx * z, (v - cy) / fx * z, z], axis=1)
            world = cam @ pose[:3, :3].T + pose[:3, 3]
            for p, oid in zip(world, f.object_id[v, u]):
                d = distance_to_box_surface(s.objects[int(oid)], p[None])[0]
                assert d < 0.01, (s.scene_id, i, oid, d)
                checked += 1
    assert checked > 50


def _single_box_scene() -> SyntheticScene:
    import trimesh

    box = trimesh.creation.box(extents=(1.0, 1.0, 1.0))
    verts = np.asarray(box.vertices, dtype=float) + [3.0, 0.0, 0.0]
    faces = np.asarray(box.faces, dtype=np.int64)
    obj = SyntheticObject(0, "table", "table", np.array([3.0, 0.0, 0.0]), np.ones(3), np.eye(3))
    pose = np.eye(4)
    pose[:3, :3] = look_rotation(np.array([0.0]), np.array([0.0]))[0]
    return SyntheticScene(
        scene_id="scene9999_00", seed=0, config=SyntheticConfig(n_frames=2), room_polygon=np.zeros((0, 2)),
        room_area=0.0, wall_height=3.0, objects=[obj], vertices=verts, faces=faces,
        vertex_colors=np.full((len(verts), 3), 200, np.uint8), vertex_object=np.zeros(len(verts), np.int64),
        vertex_segment=np.zeros(len(verts), np.int64), structure_labels={}, camera_to_world=np.stack([pose, pose]),
        invalid_pose_frames=np.zeros(0, np.int64), intrinsics=(100.0, 100.0, 50.0, 40.0), axis_alignment=np.eye(4),
    )


def test_render_known_depth() -> None:
    s = _single_box_scene()
    f = SceneRenderer(s).render(s.camera_to_world[0], 101, 81, 100.0, 100.0, 50.0, 40.0)
    # front face x = 2.5 m is perpendicular to the optical axis: z-depth 2500 mm on the whole face
    assert f.depth_mm[40, 50] == 2500 and f.object_id[40, 50] == 0
    u_in = 50 + 15  # x/z = 0.15 < 0.2 (face half-width 0.5 m at 2.5 m)
    assert f.depth_mm[40, u_in] == 2500, "depth must be z-depth, not the ray length"
    assert f.depth_mm[40 + 15, 50] == 2500
    # the pixel ray through (u, v) hits y_world = -(u - cx)/fx * z: the face edge at u = cx + 20
    assert f.object_id[40, 50 + 19] == 0 and f.object_id[40, 50 + 21] == -1 and f.depth_mm[40, 50 + 21] == 0
    assert (f.rgb[40, 50] > 0).all() and (f.rgb[0, 0] == 0).all()
    # deterministic
    g = SceneRenderer(s).render(s.camera_to_world[0], 101, 81, 100.0, 100.0, 50.0, 40.0)
    np.testing.assert_array_equal(f.rgb, g.rgb)


# ----------------------------------------------------------------------------------------------
# ScanNet layout writer
# ----------------------------------------------------------------------------------------------

LAYOUT_CFG = SyntheticConfig(n_objects=(8, 12), n_frames=12, width=80, height=60, color_scale=1.5,
                             mesh_resolution=0.3, n_invalid_poses=2, mask_every=2)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[SyntheticScene, Path, Path]:
    scene = make_scene("scene0042_00", 42, LAYOUT_CFG)
    root_a = tmp_path_factory.mktemp("a")
    root_b = tmp_path_factory.mktemp("b")
    write_scannet_scene(scene, root_a)
    write_scannet_scene(scene, root_b)
    return scene, root_a, root_b


def test_layout_files_and_determinism(written: tuple[SyntheticScene, Path, Path]) -> None:
    scene, root_a, root_b = written
    sid = scene.scene_id
    d = root_a / "scans" / sid
    expected = {f"{sid}_vh_clean_2.ply", f"{sid}_vh_clean_2.labels.ply", f"{sid}_vh_clean_2.0.010000.segs.json",
                f"{sid}.aggregation.json", f"{sid}.txt", f"{sid}.sens", f"{sid}_2d-instance-filt.zip"}
    assert {p.name for p in d.iterdir()} == expected
    assert not [p for p in (root_a / "scans").iterdir() if p.name != sid], "temporary files left behind"
    hashes = sha256_tree(root_a)
    assert hashes == sha256_tree(root_b)
    write_scannet_scene(scene, root_a)  # rewriting in place replaces the directory, same bytes
    assert sha256_tree(root_a) == hashes


def test_layout_sens(written: tuple[SyntheticScene, Path, Path]) -> None:
    scene, root, _ = written
    sid = scene.scene_id
    a = scene.axis_alignment
    with SensReader(root / "scans" / sid / f"{sid}.sens") as r:
        h = r.header
        assert r.num_frames == scene.n_frames
        assert (h.color_width, h.color_height) == LAYOUT_CFG.color_size == (120, 90)
        assert (h.depth_width, h.depth_height, h.depth_shift) == (80, 60, 1000.0)
        assert (h.color_compression, h.depth_compression, h.sensor_name) == (2, 1, "StructureSensor")
        fx, fy, cx, cy = scene.intrinsics
        k = [[fx, 0, cx, 0], [0, fy, cy, 0], [0, 0, 1, 0], [0, 0, 0, 1]]
        np.testing.assert_allclose(h.depth_intrinsics, k, rtol=1e-6)
        np.testing.assert_allclose(h.color_intrinsics[0, 0], 1.5 * fx, rtol=1e-6)
        np.testing.assert_allclose(h.color_intrinsics[0, 2], 1.5 * (cx + 0.5) - 0.5, rtol=1e-6)
        valid = r.valid_mask()
        assert (~valid).nonzero()[0].tolist() == scene.invalid_pose_frames.tolist()
        assert np.isneginf(r.poses[~valid]).all()
        expect = np.linalg.inv(a)[None] @ scene.camera_to_world
        np.testing.assert_allclose(r.poses[valid], expect[valid].astype(np.float32), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(a[None] @ r.poses[valid], scene.camera_to_world[valid], atol=2e-5)
        fps = LAYOUT_CFG.fps
        assert r.color_timestamps.tolist() == [round(i / fps * 1e6) for i in range(scene.n_frames)]
        assert r.depth_timestamps.tolist() == r.color_timestamps.tolist()
        renderer = SceneRenderer(scene)
        for i in (0, 5):
            f = renderer.render(scene.camera_to_world[i], 80, 60, *scene.intrinsics)
            np.testing.assert_array_equal(r.read_depth(i), f.depth_mm)
            assert r.read_color(i).shape == (90, 120, 3)


def test_layout_instance_zip(written: tuple[SyntheticScene, Path, Path]) -> None:
    from PIL import Image

    scene, root, _ = written
    sid = scene.scene_id
    renderer = SceneRenderer(scene)
    with zipfile.ZipFile(root / "scans" / sid / f"{sid}_2d-instance-filt.zip") as zf:
        names = zf.namelist()
        assert names == [f"instance-filt/{i}.png" for i in range(0, scene.n_frames, 2)]
        for i in (0, 4, 10):
            png = np.asarray(Image.open(io.BytesIO(zf.read(f"instance-filt/{i}.png"))))
            assert png.dtype == np.uint8 and png.shape == (60, 80)
            oid = renderer.render(scene.camera_to_world[i], 80, 60, *scene.intrinsics).object_id
            expect = np.where((oid >= 0) & (oid < len(scene.objects)), oid + 1, 0)
            np.testing.assert_array_equal(png, expect)


def test_layout_mesh_and_annotations(written: tuple[SyntheticScene, Path, Path]) -> None:
    from plyfile import PlyData

    scene, root, _ = written
    sid = scene.scene_id
    d = root / "scans" / sid
    ply = PlyData.read(str(d / f"{sid}_vh_clean_2.ply"))
    assert not ply.text and ply.byte_order == "<"
    v = ply["vertex"].data
    assert [p.name for p in ply["vertex"].properties] == ["x", "y", "z", "red", "green", "blue", "alpha"]
    xyz = np.stack([v["x"], v["y"], v["z"]], axis=1).astype(float)
    aligned = xyz @ scene.axis_alignment[:3, :3].T + scene.axis_alignment[:3, 3]
    np.testing.assert_allclose(aligned, scene.vertices, atol=2e-5)
    assert not np.allclose(xyz, scene.vertices, atol=0.01), "ply must be in the raw (unaligned) frame"
    faces = np.stack(ply["face"].data["vertex_indices"])
    np.testing.assert_array_equal(faces, scene.faces)
    labels_ply = PlyData.read(str(d / f"{sid}_vh_clean_2.labels.ply"))
    assert "label" in [p.name for p in labels_ply["vertex"].properties]
    lab = labels_ply["vertex"].data["label"]
    assert lab.dtype == np.uint16 and len(lab) == len(v)
    floor_id = next(k for k, n in scene.structure_labels.items() if n == "floor")
    assert (lab[scene.vertex_object == floor_id] == 2).all()

    segs = json.loads((d / f"{sid}_vh_clean_2.0.010000.segs.json").read_text())
    assert segs["sceneId"] == sid and len(segs["segIndices"]) == len(v)
    seg_ids = set(segs["segIndices"])
    agg = json.loads((d / f"{sid}.aggregation.json").read_text())
    assert list(agg) == ["sceneId", "appId", "segGroups", "segmentsFile"]
    assert agg["sceneId"] == f"scannet.{sid}" and agg["segmentsFile"] == f"scannet.{sid}_vh_clean_2.0.010000.segs.json"
    seen: set[int] = set()
    for g in agg["segGroups"]:
        assert list(g) == ["id", "objectId", "segments", "label"]
        assert set(g["segments"]) <= seg_ids and not (set(g["segments"]) & seen)
        seen |= set(g["segments"])
        oid = g["objectId"]
        verts = np.isin(np.asarray(segs["segIndices"]), g["segments"])
        np.testing.assert_array_equal(verts, scene.vertex_object == oid)
        assert g["label"] == scene.group_label(oid)
    assert seen == seg_ids

    txt = dict(line.split(" = ", 1) for line in (d / f"{sid}.txt").read_text().splitlines())
    a = np.array([float(x) for x in txt["axisAlignment"].split()]).reshape(4, 4)
    np.testing.assert_array_equal(a, scene.axis_alignment)
    assert (txt["colorWidth"], txt["colorHeight"], txt["depthWidth"], txt["depthHeight"]) == ("120", "90", "80", "60")
    assert float(txt["fx_depth"]) == scene.intrinsics[0] and txt["numColorFrames"] == str(scene.n_frames)


REAL_TSV_COLUMNS = ["id", "raw_category", "category", "count", "nyu40id", "eigen13id", "nyuClass", "nyu40class",
                    "eigen13class", "ModelNet40", "ModelNet10", "ShapeNetCore55", "synsetoffset", "wnsynsetid",
                    "wnsynsetkey", "mpcat40", "mpcat40index"]


def test_labels_tsv_has_real_columns_and_maps_raw_labels(written: tuple[SyntheticScene, Path, Path], tmp_path: Path) -> None:
    scene, root, _ = written
    lines = (root / LABELS_TSV).read_text().splitlines()
    header = lines[0].split("\t")
    assert header == REAL_TSV_COLUMNS
    rows = {r[1]: dict(zip(header, r)) for r in (line.split("\t") for line in lines[1:])}
    for o in scene.objects:  # ScanNet's vocabulary takes every drawn raw label to its category
        assert source_category("scannet", o.raw_label) == o.category, (o.raw_label, rows[o.raw_label])
    for spec in CATALOGUE:
        for raw in spec.raw_labels:
            assert source_category("scannet", raw) == spec.category, raw
    for name in ("wall", "floor", "ceiling"):
        assert rows[name]["category"] == name and source_category("scannet", name) is None
    # ScanNet's own ids: chair is row 2, wall row 1, mattress row 1191
    assert rows["wall"]["id"] == "1" and rows["chair"]["id"] == "2"

    # merging: union of rows, existing rows kept, order independent of writing order
    write_labels_tsv(tmp_path, ["chair", "window"])
    write_labels_tsv(tmp_path, ["office chair", "chair", "mattress"])
    merged = [line.split("\t")[1] for line in (tmp_path / LABELS_TSV).read_text().splitlines()[1:]]
    assert set(merged) == {"chair", "window", "office chair", "mattress"}
    other = tmp_path / "other"
    write_labels_tsv(other, ["office chair", "mattress", "chair", "window"])
    assert (other / LABELS_TSV).read_bytes() == (tmp_path / LABELS_TSV).read_bytes()
    with pytest.raises(ValueError, match="my odd label"):
        write_labels_tsv(tmp_path, ["my odd label"])


def test_shipped_label_rows_are_scannets_own(shared_file) -> None:
    """Every row the demo writer can write is, cell for cell, a row of ScanNet's real label table."""
    from vlm3r.scenes.demo.scannet_layout import real_label_rows

    real = shared_file("scannetv2-labels.combined.tsv").read_text(encoding="utf-8").splitlines()
    header, rows = real_label_rows()
    assert header == real[0]
    real_rows = {line.split("\t")[1]: line.split("\t") for line in real[1:]}
    for raw, cells in rows.items():
        assert cells == real_rows[raw], raw
