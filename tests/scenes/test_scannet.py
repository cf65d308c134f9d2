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


def assert_mask_visibility_is_rendered(gt, a):
    """Every sampled frame's visible instances and pixel counts equal the renderer's."""
    truth = rendered_visibility(gt, [f.frame_id for f in a.frames.frames], AdapterConfig().min_visible_pixels)
    assert a.frames.visibility_source == "instance_masks"
    for f in a.frames.frames:
        assert {v.instance_id: v.pixel_count for v in f.visible} == truth[f.frame_id]
    assert sum(len(f.visible) for f in a.frames.frames) > 0


def test_mask_visibility_equals_rendered_instances(adapted):
    assert_mask_visibility_is_rendered(*adapted)


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


# --------------------------------------------------------------------------------------------------
# Real-data fidelity: ScanNet's vocabulary on its real label table, relabelled and duplicated groups
# --------------------------------------------------------------------------------------------------


def test_vocabulary_on_the_real_label_table(shared_file):
    """Every raw_category of ScanNet's real TSV: kept exactly when the vocabulary lists it by name."""
    import csv

    from vlm3r.scenes.categories import source_category, vocabulary

    with open(shared_file("scannetv2-labels.combined.tsv"), newline="", encoding="utf-8") as f:
        raw = [r["raw_category"] for r in csv.DictReader(f, delimiter="\t")]
    vocab = vocabulary("scannet")
    assert vocab.keep <= set(raw)  # every kept label is a real ScanNet label
    got = {r: source_category("scannet", r) for r in raw}
    assert {c for c in got.values() if c} == vocab.categories
    expected = {"mattress": "mattress", "loft bed": None, "sofa bed": None, "potted plant": None, "desk": "table",
                "trash can": "trash bin", "recycling bin": "trash bin", "mouse": "computer mouse", "couch": None,
                "office chair": None, "bed": "bed", "nightstand": "nightstand", "wall": None}
    assert {k: got[k] for k in expected} == expected


def _copy_scene(root, sid, dest):
    shutil.copytree(root / "scans" / sid, dest / "scans" / sid)
    shutil.copy(root / "scannetv2-labels.combined.tsv", dest)
    return dest / "scans" / sid


def _editable_aggregation(scannet_root, tmp_path, sid="scene0001_00"):
    """(ground truth, scene dir, aggregation path, parsed aggregation) of a copy of one scan."""
    import json

    root, scenes = scannet_root
    d = _copy_scene(root, sid, tmp_path)
    agg_path = d / f"{sid}.aggregation.json"
    return scenes[sid], d, agg_path, json.loads(agg_path.read_text())


def test_exact_raw_labels_decide(scannet_root, tmp_path):
    """Relabelled groups in a real layout: 'sofa bed' and 'potted plant' drop out, 'mattress' stays a
    mattress, 'desk' counts as a table."""
    import json

    sid = "scene0001_00"
    gt, _, agg_path, agg = _editable_aggregation(scannet_root, tmp_path, sid)
    ids = [o.instance_id for o in gt.objects][:4]
    new = dict(zip(ids, ["sofa bed", "potted plant", "mattress", "desk"]))
    for g in agg["segGroups"]:
        if g["objectId"] in new:
            g["label"] = new[g["objectId"]]
    agg_path.write_text(json.dumps(agg))
    a = ScanNetAdapter(tmp_path).load(sid, AdapterConfig(num_frames=4))
    want = Counter(o.category for o in gt.objects if o.instance_id not in new)
    want.update(["mattress", "table"])
    assert a.scene.object_counts == dict(sorted(want.items()))
    by_id = {o.instance_id: o for o in a.scene.objects}
    assert ids[0] not in by_id and ids[1] not in by_id
    assert by_id[ids[2]].category == "mattress" and by_id[ids[3]].category == "table"


def test_duplicated_seg_groups_keep_one_copy(scannet_root, tmp_path, caplog):
    """scene0217_00-style aggregation (every segGroup repeated with objectId + N) and instance masks
    drawn with the duplicates' ids: counts stay single, visibility equals the rendered truth."""
    import io
    import json
    import logging
    import zipfile

    from PIL import Image

    sid = "scene0001_00"
    gt, d, agg_path, agg = _editable_aggregation(scannet_root, tmp_path, sid)
    n = len(agg["segGroups"])
    agg["segGroups"] += [dict(g, id=g["id"] + n, objectId=g["objectId"] + n) for g in agg["segGroups"]]
    agg_path.write_text(json.dumps(agg))
    zpath = d / f"{sid}_2d-instance-filt.zip"
    with zipfile.ZipFile(zpath) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    with zipfile.ZipFile(zpath, "w") as zf:
        for k, (name, data) in enumerate(sorted(members.items())):
            if name.endswith(".png") and k % 2:
                with Image.open(io.BytesIO(data)) as im:
                    arr = np.asarray(im)
                shifted = np.where(arr > 0, arr.astype(np.int64) + n, 0).astype(arr.dtype)
                buf = io.BytesIO()
                Image.fromarray(shifted).save(buf, format="PNG")
                data = buf.getvalue()
            zf.writestr(name, data)
    with caplog.at_level(logging.WARNING):
        a = ScanNetAdapter(tmp_path).load(sid, AdapterConfig(num_frames=16))
    assert a.scene.object_counts == dict(Counter(o.category for o in gt.objects))
    assert {o.instance_id for o in a.scene.objects} == {o.instance_id for o in gt.objects}
    assert any(f"{sid}.aggregation.json" in r.getMessage() and "duplicated" in r.getMessage() for r in caplog.records)
    assert_mask_visibility_is_rendered(gt, a)


def test_partly_overlapping_group_is_kept_without_the_shared_segments(scannet_root, tmp_path):
    """An annotation overlap (one segment in two groups) is no duplicate: both objects stay."""
    import json

    root, _ = scannet_root
    sid = "scene0001_00"
    gt, _, agg_path, agg = _editable_aggregation(scannet_root, tmp_path, sid)
    first, second = (next(g for g in agg["segGroups"] if g["objectId"] == o.instance_id) for o in gt.objects[:2])
    second["segments"] = second["segments"] + first["segments"][:1]
    agg_path.write_text(json.dumps(agg))
    a = ScanNetAdapter(tmp_path).load(sid, AdapterConfig(num_frames=4))
    assert a.scene.object_counts == dict(Counter(o.category for o in gt.objects))
    by_id = {o.instance_id: o for o in a.scene.objects}
    assert by_id[gt.objects[1].instance_id].num_points == next(
        o for o in ScanNetAdapter(root).load(sid, AdapterConfig(num_frames=4)).scene.objects
        if o.instance_id == gt.objects[1].instance_id).num_points
