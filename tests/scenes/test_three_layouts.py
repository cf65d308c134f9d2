"""One synthetic scene written in the ScanNet, ScanNet++ and ARKitScenes layouts: each adapter must
give the objects its source's vocabulary keeps (``scenes.demo.ground_truth``), with the generator's
boxes, poses and the renderer's visibility."""

from collections import Counter

import numpy as np
import pytest

from vlm3r.scenes.arkitscenes import ARKitScenesAdapter
from vlm3r.scenes.demo.arkitscenes_layout import write_arkitscenes_scene
from vlm3r.scenes.base import AdapterConfig
from vlm3r.scenes.demo.ground_truth import expected_objects
from vlm3r.scenes.demo.render import SceneRenderer
from vlm3r.scenes.scannet import ScanNetAdapter
from vlm3r.scenes.demo.scannet_layout import write_scannet_scene
from vlm3r.scenes.scannetpp import ScanNetPPAdapter
from vlm3r.scenes.demo.scannetpp_layout import write_scannetpp_scene
from vlm3r.scenes.demo.synthetic import SyntheticConfig, make_scene
from vlm3r.scenes.visibility import visible_from_projection

SMALL = SyntheticConfig(n_frames=64, width=160, height=120, mesh_resolution=0.05, n_objects=(8, 14))
SID = "scene0005_00"
CFG = AdapterConfig(num_frames=24)


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    """(ground truth, {layout: AdaptedScene}) for one scene (seed 5: 12 objects, L-shaped walk)."""
    root = tmp_path_factory.mktemp("three")
    gt = make_scene(SID, seed=5, config=SMALL)
    write_scannet_scene(gt, root / "scannet")
    write_scannetpp_scene(gt, root / "scannetpp")
    write_arkitscenes_scene(gt, root / "arkitscenes", sky_direction="Left")
    adapters = {
        "scannet": ScanNetAdapter(root / "scannet"),
        "scannetpp": ScanNetPPAdapter(root / "scannetpp"),
        "arkitscenes": ARKitScenesAdapter(root / "arkitscenes"),
    }
    return gt, {name: a.load(SID, CFG) for name, a in adapters.items()}


def rendered_visible_pairs(gt, frame_ids, min_pixels, layout):
    """(frame, instance id in ``layout``) for every kept object the renderer shows with enough pixels."""
    r = SceneRenderer(gt)
    layout_id = {e.object.instance_id: e.instance_id for e in expected_objects(gt, layout)}
    pairs = set()
    for fid in frame_ids:
        ids = r.render(gt.camera_to_world[fid], gt.config.width, gt.config.height, *gt.intrinsics, with_rgb=False).object_id
        vals, counts = np.unique(ids[ids >= 0], return_counts=True)
        pairs |= {(fid, layout_id[int(v)]) for v, c in zip(vals, counts) if int(v) in layout_id and c >= min_pixels}
    return pairs


def test_categories_and_counts_are_each_sources_own(three):
    gt, adapted = three
    for name, a in adapted.items():
        want = expected_objects(gt, name)
        assert a.scene.object_counts == dict(sorted(Counter(e.category for e in want).items())), name
        assert [(o.instance_id, o.category) for o in a.scene.objects] == [(e.instance_id, e.category) for e in want], name
    from vlm3r.scenes.categories import vocabulary

    for name, a in adapted.items():  # nothing outside a source's vocabulary
        assert set(a.scene.object_counts) <= vocabulary(name).categories, name
    cats = {name: set(a.scene.object_counts) for name, a in adapted.items()}
    assert cats["scannetpp"] != cats["scannet"] and cats["arkitscenes"] < cats["scannet"] | {"washer"}


def test_boxes_within_2cm(three):
    gt, adapted = three
    for name, a in adapted.items():
        by_id = {o.instance_id: o for o in a.scene.objects}
        for e in expected_objects(gt, name):
            o, got = e.object, by_id[e.instance_id]
            assert got.category == e.category, name
            assert np.abs(np.asarray(got.box.centroid) - o.centroid).max() < 0.02, (name, o.category)
            assert np.abs(np.sort(got.box.axes_lengths) - np.sort(o.axes_lengths)).max() < 0.02, (name, o.category)
            # the same box, not only the same size: every ground-truth corner is near a box corner
            corners = got.box.corners()
            assert np.linalg.norm(o.corners()[:, None] - corners[None], axis=2).min(axis=1).max() < 0.03


def test_camera_centres_within_1mm_and_same_frames(three):
    gt, adapted = three
    frame_ids = {name: [f.frame_id for f in a.frames.frames] for name, a in adapted.items()}
    assert frame_ids["scannet"] == frame_ids["scannetpp"] == frame_ids["arkitscenes"]
    assert not set(frame_ids["scannet"]) & set(gt.invalid_pose_frames.tolist())
    for name, a in adapted.items():
        assert a.frames.num_valid_frames == gt.n_frames - len(gt.invalid_pose_frames), name
        for f in a.frames.frames:
            pose = gt.camera_to_world[f.frame_id]
            assert np.linalg.norm(f.camera_center - pose[:3, 3]) < 1e-3, (name, f.frame_id)
            assert np.abs(f.pose()[:3, :3] - pose[:3, :3]).max() < 1e-3, (name, f.frame_id)
        k = a.frames.intrinsics
        assert (k.width, k.height) == (gt.config.width, gt.config.height), name
        np.testing.assert_allclose([k.fx, k.fy, k.cx, k.cy], gt.intrinsics, atol=1e-3)
        assert a.frames.fps == pytest.approx(gt.config.fps, rel=1e-3), name


def test_visible_sets_agree_with_renderer(three):
    gt, adapted = three
    frame_ids = [f.frame_id for f in adapted["scannet"].frames.frames]
    for name, a in adapted.items():
        want = rendered_visible_pairs(gt, frame_ids, CFG.min_visible_pixels, name)
        assert len(want) > len(frame_ids), name
        got = {(f.frame_id, v.instance_id) for f in a.frames.frames for v in f.visible}
        assert len(got & want) / len(got | want) >= 0.95, (name, sorted(got - want), sorted(want - got))


def test_room_size_and_metadata(three):
    gt, adapted = three
    for name, a in adapted.items():
        s = a.scene
        assert s.room_size == pytest.approx(gt.room_area, rel=0.05), name
        assert s.room_center[2] == pytest.approx(gt.wall_height / 2, abs=0.05), name
        assert s.source_root and s.mesh_file in s.source_files, name
        assert np.asarray(s.raw_to_world).shape == (4, 4), name
        assert set(a.images) == {f.frame_id for f in a.frames.frames}, name
        assert all(img.shape == (gt.config.height, gt.config.width, 3) for img in a.images.values()), name


def test_face_area_counts_a_sparse_surface_seen_up_close():
    """A 2 m square made of two triangles 1 m in front of the camera, one corner off-image: its four
    vertices land on at most 4 pixels, yet it covers most of the image."""
    k = np.array([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]])
    pts = np.array([[-1.0, -1.0, 1.0], [0.3, -0.2, 1.0], [0.3, 0.2, 1.0], [-0.3, 0.2, 1.0]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    inst = np.zeros(4, dtype=np.int64)
    depth = np.full((48, 64), 1.0)
    without = visible_from_projection(pts, inst, np.eye(4), k, depth, min_pixels=1)
    with_faces = visible_from_projection(pts, inst, np.eye(4), k, depth, min_pixels=1, faces=faces)
    assert without[0].pixel_count == 3  # the off-image corner is not counted
    # quad clipped to the image: corners (16.5, 13.5), (46.5, 13.5), (46.5, 33.5), (16.5, 33.5) plus the
    # part of triangle 0 towards the off-image corner, clamped at the image's top-left
    assert with_faces[0].pixel_count > 600
    assert with_faces[0].bbox_2d[:2] == [0, 0] and with_faces[0].bbox_2d[2:] == [47, 34]
    hidden = np.full((48, 64), 0.5)  # everything in front of the surface: nothing survives
    assert visible_from_projection(pts, inst, np.eye(4), k, hidden, 1, faces=faces) == []


VSTI_FAMILIES = (("camera_obj_abs_dist",), ("camera_obj_rel_dist_v1", "camera_obj_rel_dist_v2", "camera_obj_rel_dist_v3"),
                 ("obj_obj_relative_pos_nf", "obj_obj_relative_pos_lr", "obj_obj_relative_pos_ud"),
                 ("camera_displacement",), ("camera_movement_direction",))


def test_vsti_tasks_ask_questions_in_every_layout_with_the_same_camera_answers(three):
    """The five VSTI-Bench families produce questions on every source; the camera-only answers,
    which depend on poses alone, agree across the three layouts."""
    from vlm3r.datagen import TASKS
    from vlm3r.schemas.seeding import scene_rng

    camera_answers = {}
    for name, a in adapted_items(three):
        for family in VSTI_FAMILIES:
            by_task = {t: TASKS.get(t).generate(a.scene, a.frames, scene_rng(0, t, "x", SID)) for t in family}
            assert any(by_task.values()), (name, family)
            if family == ("camera_displacement",):
                camera_answers[name] = sorted((d.frame_ids, d.answer) for d in by_task["camera_displacement"])
    assert camera_answers["scannet"] == camera_answers["scannetpp"] == camera_answers["arkitscenes"]


def adapted_items(three):
    return three[1].items()
