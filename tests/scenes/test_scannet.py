"""The ScanNet adapter against the ground truth the synthetic generator knows."""

import shutil
from collections import Counter

import numpy as np
import pytest

from vlm3r.scenes.base import AdapterConfig, SceneError, sample_frame_ids
from vlm3r.scenes.demo.render import SceneRenderer
from vlm3r.scenes.scannet import ScanNetAdapter


@pytest.fixture(scope="module")
def adapted(scannet_root):
    root, scenes = scannet_root
    sid = "scene0001_00"
    return scenes[sid], ScanNetAdapter(root).load(sid, AdapterConfig(num_frames=16))


def rendered_visibility(gt, frame_ids, min_pixels):
    r = SceneRenderer(gt)
    fx, fy, cx, cy = gt.intrinsics
    bench_ids = {o.instance_id for o in gt.objects}
    out = {}
    for fid in frame_ids:
        ids = r.render(gt.camera_to_world[fid], gt.config.width, gt.config.height, fx, fy, cx, cy).object_id
        vals, counts = np.unique(ids[ids >= 0], return_counts=True)
        out[fid] = {int(v): int(c) for v, c in zip(vals, counts) if v in bench_ids and c >= min_pixels}
    return out


def test_object_counts_exact(adapted):
    gt, a = adapted
    assert a.scene.object_counts == dict(Counter(o.category for o in gt.objects))
    assert {o.instance_id for o in a.scene.objects} == {o.instance_id for o in gt.objects}


def test_boxes_within_2cm(adapted):
    gt, a = adapted
    by_id = {o.instance_id: o for o in a.scene.objects}
    for o in gt.objects:
        box = by_id[o.instance_id].box
        assert by_id[o.instance_id].category == o.category
        assert np.abs(np.asarray(box.centroid) - o.centroid).max() < 0.02
        assert np.abs(np.sort(box.axes_lengths) - np.sort(o.axes_lengths)).max() < 0.02


def test_room_size_and_center(adapted):
    gt, a = adapted
    assert a.scene.room_size == pytest.approx(gt.room_area, rel=0.05)
    lo, hi = gt.room_polygon.min(0), gt.room_polygon.max(0)
    assert np.all(np.asarray(a.scene.room_center[:2]) > lo) and np.all(np.asarray(a.scene.room_center[:2]) < hi)
    assert a.scene.room_center[2] == pytest.approx(gt.wall_height / 2, abs=0.05)


def test_frames_sampled_over_valid_poses_and_poses_aligned(adapted):
    gt, a = adapted
    fm = a.frames
    invalid = set(gt.invalid_pose_frames.tolist())
    assert invalid, "the generator should write some invalid poses"
    valid = np.array([i for i in range(gt.n_frames) if i not in invalid])
    assert fm.num_stream_frames == gt.n_frames and fm.num_valid_frames == len(valid)
    ids = [f.frame_id for f in fm.frames]
    assert ids == sample_frame_ids(valid, 16).tolist() and not invalid & set(ids)
    for f in fm.frames:
        np.testing.assert_allclose(f.pose(), gt.camera_to_world[f.frame_id], atol=2e-4)
    assert fm.intrinsics.width == gt.config.width
    assert fm.intrinsics.fx == pytest.approx(gt.intrinsics[0], rel=1e-5)
    assert fm.frames[1].timestamp_s == pytest.approx(ids[1] / gt.config.fps, abs=1e-5)
    assert set(a.images) == set(ids) and a.images[ids[0]].shape == (gt.config.height, gt.config.width, 3)


def test_mask_visibility_equals_rendered_instances(adapted):
    gt, a = adapted
    cfg = AdapterConfig()
    truth = rendered_visibility(gt, [f.frame_id for f in a.frames.frames], cfg.min_visible_pixels)
    assert a.frames.visibility_source == "instance_masks"
    for f in a.frames.frames:
        assert {v.instance_id: v.pixel_count for v in f.visible} == truth[f.frame_id]
    assert sum(len(f.visible) for f in a.frames.frames) > 0


def test_projection_visibility_agrees_with_rendering(scannet_root, tmp_path):
    root, scenes = scannet_root
    sid = "scene0002_00"
    shutil.copytree(root / "scans" / sid, tmp_path / "scans" / sid)
    shutil.copy(root / "scannetv2-labels.combined.tsv", tmp_path)
    (tmp_path / "scans" / sid / f"{sid}_2d-instance-filt.zip").unlink()
    cfg = AdapterConfig(num_frames=16)
    a = ScanNetAdapter(tmp_path).load(sid, cfg)
    assert a.frames.visibility_source == "depth_projection"
    truth = rendered_visibility(scenes[sid], [f.frame_id for f in a.frames.frames], cfg.min_visible_pixels)
    got = {(f.frame_id, v.instance_id) for f in a.frames.frames for v in f.visible}
    want = {(fid, i) for fid, d in truth.items() for i in d}
    assert len(got & want) / len(got | want) >= 0.95, (sorted(got - want), sorted(want - got))


def test_missing_file_is_named(scannet_root, tmp_path):
    root, _ = scannet_root
    sid = "scene0003_00"
    shutil.copytree(root / "scans" / sid, tmp_path / "scans" / sid)
    shutil.copy(root / "scannetv2-labels.combined.tsv", tmp_path)
    (tmp_path / "scans" / sid / f"{sid}.aggregation.json").unlink()
    with pytest.raises(SceneError, match=rf"{sid}\.aggregation\.json: missing"):
        ScanNetAdapter(tmp_path).load(sid, AdapterConfig())
