"""The ARKitScenes adapter on synthetic videos captured in every device orientation, its upright
rotation, trajectory handling, bad-input errors and a whole build."""

import shutil

import numpy as np
import pytest

from vlm3r.pipelines.build import BuildConfig, build, load_scene_graph
from vlm3r.scenes.arkitscenes import SKY_DIRECTIONS, ARKitScenesAdapter, nearest, read_traj, upright
from vlm3r.scenes.demo.arkitscenes_layout import write_arkitscenes_scene
from vlm3r.scenes.base import AdapterConfig, SceneError
from vlm3r.scenes.registry import make_adapter
from vlm3r.scenes.demo.render import SceneRenderer
from vlm3r.scenes.categories import source_category
from vlm3r.scenes.demo.synthetic import SyntheticConfig, make_scene

CFG = AdapterConfig(num_frames=6)
TINY = SyntheticConfig(n_frames=24, width=160, height=120, mesh_resolution=0.06, n_objects=(6, 9))


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """(ground truth, root) with the same scene as four videos, one per sky direction."""
    root = tmp_path_factory.mktemp("arkitscenes")
    gt = make_scene("ark", seed=7, config=TINY)
    for k, sky in enumerate(SKY_DIRECTIONS):
        write_arkitscenes_scene(gt, root, video_id=f"4100000{k}", sky_direction=sky,
                                split="Validation" if sky == "Down" else "Training")
    return gt, root


def copy_video(root, vid, tmp_path):
    split = next(s for s in ("Training", "Validation") if (root / s / vid).is_dir())
    shutil.copytree(root / split / vid, tmp_path / split / vid)
    shutil.copy(root / "metadata.csv", tmp_path)
    return tmp_path, tmp_path / split / vid


@pytest.mark.parametrize("k", range(4))
def test_upright_frames_equal_the_upright_render(written, k):
    gt, root = written
    vid = f"4100000{k}"
    a = ARKitScenesAdapter(root).load(vid, CFG)
    r = SceneRenderer(gt)
    w, h = gt.config.width, gt.config.height
    kk = a.frames.intrinsics
    assert (kk.width, kk.height) == (w, h)
    np.testing.assert_allclose([kk.fx, kk.fy, kk.cx, kk.cy], gt.intrinsics, atol=1e-9)
    for f in a.frames.frames:
        np.testing.assert_allclose(f.pose(), gt.camera_to_world[f.frame_id], atol=1e-6)
        want = r.render(gt.camera_to_world[f.frame_id], w, h, *gt.intrinsics).rgb
        assert np.abs(a.images[f.frame_id].astype(int) - want).mean() < 0.5, SKY_DIRECTIONS[k]
    assert a.scene.split == ("Validation" if SKY_DIRECTIONS[k] == "Down" else "Training")


def test_upright_rotation_moves_pixels_like_rot90():
    """A 3D point projects, in the rotated camera, to where np.rot90 moves its raw pixel."""
    rng = np.random.default_rng(1)
    w, h = 8, 6
    k = np.array([[5.0, 0, 3.2], [0, 4.0, 2.7], [0, 0, 1]])
    raw_pose = np.eye(4)
    raw_pose[:3, 3] = [0.3, -0.2, 0.1]
    for sky in SKY_DIRECTIONS:
        up = upright(sky, w, h, k)
        for _ in range(5):
            u, v = int(rng.integers(0, w)), int(rng.integers(0, h))
            p_cam = np.linalg.solve(k, [u, v, 1.0]) * rng.uniform(1, 3)
            p_world = raw_pose[:3, :3] @ p_cam + raw_pose[:3, 3]
            pose = up.pose(raw_pose)
            q = np.linalg.solve(pose[:3, :3], p_world - pose[:3, 3])
            uu, vv = (up.intrinsics @ (q / q[2]))[:2]
            img = np.zeros((h, w), int)
            img[v, u] = 1
            rot = up.image(img)
            assert rot.shape == (up.size[1], up.size[0])
            assert np.argwhere(rot == 1).tolist() == [[round(vv), round(uu)]], sky


def test_traj_is_world_to_camera(tmp_path):
    p = tmp_path / "x.traj"
    p.write_text("12.5 0 0 0 1 2 3\n10.0 0 0 1.5707963267948966 0 0 0\n")
    ts, poses = read_traj(p)
    assert ts.tolist() == [10.0, 12.5]  # sorted by time
    np.testing.assert_allclose(poses[1][:3, 3], [-1, -2, -3])  # camera centre = -R^T t
    np.testing.assert_allclose(poses[0][:3, :3], [[0, 1, 0], [-1, 0, 0], [0, 0, 1]], atol=1e-12)


def test_nearest_timestamp_with_tolerance():
    ts = np.array([1.0, 1.1, 1.3])
    assert nearest(ts, np.array([0.99, 1.06, 1.2, 1.31, 2.0]), 0.05).tolist() == [0, 1, -1, 2, -1]


def test_frames_without_a_pose_are_invalid(written):
    gt, root = written
    fm = ARKitScenesAdapter(root).load("41000000", AdapterConfig(num_frames=100)).frames
    assert fm.num_stream_frames == gt.n_frames
    assert {f.frame_id for f in fm.frames} == set(range(gt.n_frames)) - set(gt.invalid_pose_frames.tolist())
    assert fm.frames[1].timestamp_s == pytest.approx(fm.frames[1].frame_id / gt.config.fps, abs=1e-3)


def test_categories_use_arkit_rules(written):
    gt, root = written
    from vlm3r.scenes.demo.ground_truth import expected_objects

    a = ARKitScenesAdapter(root).load("41000000", CFG)
    want = expected_objects(gt, "arkitscenes")
    assert [(o.instance_id, o.category) for o in a.scene.objects] == [(e.instance_id, e.category) for e in want]
    assert all(o.num_points > 0 for o in a.scene.objects)


def test_arkit_vocabulary_keeps_what_vsibench_keeps():
    """ARKitScenes' own classes: toilet, stove, fireplace, dishwasher, bathtub, stool and washer are
    categories; sink, shelf, oven and cabinet are dropped; tv_monitor is a tv."""
    kept = {c: source_category("arkitscenes", c) for c in
            ("toilet", "stove", "fireplace", "dishwasher", "bathtub", "stool", "washer", "tv_monitor")}
    assert kept == {"toilet": "toilet", "stove": "stove", "fireplace": "fireplace", "dishwasher": "dishwasher",
                    "bathtub": "bathtub", "stool": "stool", "washer": "washer", "tv_monitor": "tv"}
    assert [source_category("arkitscenes", c) for c in ("sink", "shelf", "oven", "cabinet")] == [None] * 4


def test_list_scenes_covers_both_splits(written):
    _, root = written
    assert ARKitScenesAdapter(root).list_scenes() == [f"4100000{k}" for k in range(4)]


def test_video_without_annotation_is_named(written, tmp_path):
    root, d = copy_video(written[1], "41000001", tmp_path)
    (d / "41000001_3dod_annotation.json").unlink()
    with pytest.raises(SceneError, match=r"41000001_3dod_annotation\.json: missing annotation"):
        ARKitScenesAdapter(root).load("41000001", CFG)


def test_malformed_traj_line_is_named(written, tmp_path):
    root, d = copy_video(written[1], "41000001", tmp_path)
    traj = d / "41000001_frames" / "lowres_wide.traj"
    lines = traj.read_text().splitlines()
    lines[2] = " ".join(lines[2].split()[:6])
    traj.write_text("\n".join(lines) + "\n")
    with pytest.raises(SceneError, match=r"lowres_wide\.traj: line 3: expected 7 finite numbers"):
        ARKitScenesAdapter(root).load("41000001", CFG)


def test_wrong_size_depth_is_named(written, tmp_path):
    from PIL import Image

    root, d = copy_video(written[1], "41000001", tmp_path)
    depth = sorted((d / "41000001_frames" / "lowres_depth").iterdir())[0]  # frame 0 is always sampled
    Image.fromarray(np.zeros((10, 12), np.uint16)).save(depth)
    with pytest.raises(SceneError, match=rf"{depth.name}: depth map is 12x10, its frame 160x120"):
        ARKitScenesAdapter(root).load("41000001", CFG)


def test_orientation_comes_from_the_poses_not_the_csv(written, tmp_path, caplog):
    """A missing row, "NA" and a wrong sky_direction all give the same upright frames as the true
    value; the wrong one is logged naming metadata.csv."""
    import logging

    from vlm3r.scenes.arkitscenes import read_traj, sky_from_poses

    root, d = copy_video(written[1], "41000002", tmp_path)  # written with sky_direction Left
    ref = ARKitScenesAdapter(root).load("41000002", CFG)
    assert sky_from_poses(read_traj(d / "41000002_frames" / "lowres_wide.traj")[1]) == SKY_DIRECTIONS[2]
    rows = (root / "metadata.csv").read_text().splitlines()
    for value in (None, "NA", "Down"):
        kept = [r for r in rows if not r.startswith("41000002")]
        if value is not None:
            kept.append(f"41000002,41000002,Training,{value}")
        (root / "metadata.csv").write_text("\n".join(kept) + "\n")
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            a = ARKitScenesAdapter(root).load("41000002", CFG)
        for f, g in zip(a.frames.frames, ref.frames.frames):
            np.testing.assert_allclose(f.pose(), g.pose(), atol=1e-9)
        assert all(np.array_equal(a.images[k], ref.images[k]) for k in ref.images)
        warned = any("metadata.csv" in r.getMessage() and "disagrees" in r.getMessage() for r in caplog.records)
        assert warned == (value == "Down"), value


def test_sky_from_poses_matches_decide_pose_cases():
    """The two worked cases of apple/ARKitScenes rectify_im.py: frame 1 of 41048143 is upside down
    (index 2), frame 1 of 41048169 needs 90 degrees clockwise (index 1, Left)."""
    from scipy.spatial.transform import Rotation

    from vlm3r.scenes.arkitscenes import sky_from_poses

    def c2w(line: str) -> np.ndarray:
        v = [float(x) for x in line.split()]
        w2c = np.eye(4)
        w2c[:3, :3] = Rotation.from_rotvec(v[1:4]).as_matrix()
        w2c[:3, 3] = v[4:7]
        return np.linalg.inv(w2c)[None]

    assert sky_from_poses(c2w("1627.68140546 -1.5545600446434271 1.532901960141653 0.883467254271724 0.0450016 0.0506107 -0.000194237")) == "Down"
    assert sky_from_poses(c2w("803.47236621 1.6851560664954446 -1.7402208764128138 -0.8469396625258023 0.0404551 0.0562208 -0.00155703")) == "Left"


def test_skipped_annotation_is_named(written, tmp_path):
    import json

    root, d = copy_video(written[1], "41000001", tmp_path)
    path = d / "41000001_3dod_annotation.json"
    anno = json.loads(path.read_text())
    assert set(anno) == {"data", "stats", "comment", "confirm", "skipped"}  # the official loader's keys
    anno["skipped"] = True
    path.write_text(json.dumps(anno))
    with pytest.raises(SceneError, match=r"41000001_3dod_annotation\.json: annotation is marked skipped"):
        ARKitScenesAdapter(root).load("41000001", CFG)


def test_build_through_the_registry(written, tmp_path):
    _, root = written
    summary = build(make_adapter("arkitscenes", root), BuildConfig(out=tmp_path, adapter=CFG, write_video=False),
                    scene_ids=["41000002"])
    assert summary.scenes_ok == 1 and not summary.skipped
    scene, frames = load_scene_graph(tmp_path, "arkitscenes", "41000002")
    assert scene.dataset == "arkitscenes" and len(frames.frames) == CFG.num_frames
    assert all((tmp_path / f.color_path).is_file() for f in frames.frames)
