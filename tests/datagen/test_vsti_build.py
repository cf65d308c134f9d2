import json
"""The VSTI-Bench tasks through a real build (synthetic scans in the ScanNet raw layout): every
record's answer is re-derived from the written scene graph by an independent computation."""

import re

import numpy as np
import pytest

from vlm3r.schemas.rows import record_from_qa_row
from vlm3r.datagen import TASKS
from vlm3r.pipelines.build import BuildConfig, build, load_scene_graph
from vlm3r.scenes.base import AdapterConfig
from vlm3r.scenes.scannet import ScanNetAdapter

FAMILIES = {
    "camera_obj_abs_dist": ("camera_obj_abs_dist",),
    "camera_obj_rel_dist": ("camera_obj_rel_dist_v1", "camera_obj_rel_dist_v2", "camera_obj_rel_dist_v3"),
    "obj_obj_relative_pos": ("obj_obj_relative_pos_nf", "obj_obj_relative_pos_lr", "obj_obj_relative_pos_ud"),
    "camera_displacement": ("camera_displacement",),
    "camera_movement_direction": ("camera_movement_direction",),
}
TASK_NAMES = tuple(n for names in FAMILIES.values() for n in names)


@pytest.fixture(scope="module")
def built(scannet_root, tmp_path_factory):
    root, _ = scannet_root
    out = tmp_path_factory.mktemp("vsti_out")
    config = BuildConfig(out=out, adapter=AdapterConfig(num_frames=32), tasks=TASK_NAMES, write_video=False)
    summary = build(ScanNetAdapter(root), config)
    assert summary.scenes_ok == 3 and not summary.skipped
    records = {
        name: [record_from_qa_row(json.loads(line)) for p in sorted((out / "qa" / name).glob("scannet-*.jsonl"))
               for line in p.read_text().splitlines()]
        for name in TASK_NAMES
    }
    graphs = {sid: load_scene_graph(out, "scannet", sid) for sid in ("scene0001_00", "scene0002_00", "scene0003_00")}
    return records, graphs


def frame_refs(record, frames):
    """The frames a question names ("frame k of N"), checked against the record's frame ids."""
    ordered = sorted(frames.frames, key=lambda f: f.frame_id)
    refs = [(int(k), int(n)) for k, n in re.findall(r"frame (\d+) of (\d+)", record.question)]
    ks = list(dict.fromkeys(k for k, _ in refs))
    assert all(n == len(ordered) for _, n in refs)
    picked = [ordered[k - 1] for k in ks]
    assert [f.frame_id for f in picked] == record.frame_ids
    return picked


def chosen_text(record):
    if record.options is None:
        return None
    option = record.options["ABCD".index(record.mc_answer)]
    assert option.startswith(f"{record.mc_answer}. ")
    return option[3:]


def visible_once(scene, frame, category):
    """The one instance of ``category`` visible in ``frame`` (None unless exactly one)."""
    by_id = {o.instance_id: o for o in scene.objects}
    hits = [by_id[v.instance_id] for v in frame.visible
            if v.instance_id in by_id and by_id[v.instance_id].category == category]
    return hits[0] if len(hits) == 1 else None


def distance(point, box):
    """Closest-point distance to the solid box, written out independently of the package."""
    rot = np.array(box.rotation)
    local = rot.T @ (np.asarray(point) - np.array(box.centroid))
    return float(np.linalg.norm(np.maximum(np.abs(local) - np.array(box.axes_lengths) / 2, 0)))


def camera_coords(frame, box):
    return (np.c_[box.corners(), np.ones(8)] @ np.linalg.inv(frame.pose()).T)[:, :3]


def test_every_family_produces_questions(built):
    records, _ = built
    for name in TASK_NAMES:
        assert records[name], name
        per_scene = {}
        for r in records[name]:
            per_scene[r.scene_name] = per_scene.get(r.scene_name, 0) + 1
            assert r.question_type == name and r.task_version == TASKS.get(name).version
        assert all(n <= 20 for n in per_scene.values())


def test_camera_obj_abs_dist_rederived(built):
    records, graphs = built
    for r in records["camera_obj_abs_dist"]:
        scene, frames = graphs[r.scene_name]
        (fr,) = frame_refs(r, frames)
        obj = visible_once(scene, fr, r.categories[0])
        d = distance(fr.camera_center, obj.box)
        assert 0.2 <= d <= 10 and r.ground_truth == round(d, 1)
        assert float(chosen_text(r)) == r.ground_truth


def test_camera_obj_rel_dist_rederived(built):
    records, graphs = built
    for n, name in zip((4, 3, 2), FAMILIES["camera_obj_rel_dist"]):
        for r in records[name]:
            scene, frames = graphs[r.scene_name]
            (fr,) = frame_refs(r, frames)
            dists = {c: distance(fr.camera_center, visible_once(scene, fr, c).box) for c in r.categories}
            assert len(dists) == n and min(dists.values()) >= 0.5
            assert (np.diff(sorted(dists.values())) >= 0.15).all()
            assert r.ground_truth == min(dists, key=dists.get) == chosen_text(r)
            assert {o[3:] for o in r.options} == set(dists)


def test_obj_obj_relative_pos_rederived(built):
    records, graphs = built
    for name, axis, labels in zip(FAMILIES["obj_obj_relative_pos"], (2, 0, 1),
                                  (("Near", "Far"), ("Left", "Right"), ("Up", "Down"))):
        for r in records[name]:
            scene, frames = graphs[r.scene_name]
            (fr,) = frame_refs(r, frames)
            a, b = (camera_coords(fr, visible_once(scene, fr, c).box)[:, axis] for c in r.categories)
            if a.max() + 0.15 < b.min():
                want = labels[0]
            elif a.min() > b.max() + 0.15:
                want = labels[1]
            else:
                raise AssertionError(f"{r.id}: pair inside the margin was asked")
            assert r.ground_truth == want == chosen_text(r) and len(r.options) == 2


def test_camera_displacement_rederived(built):
    records, graphs = built
    for r in records["camera_displacement"]:
        _, frames = graphs[r.scene_name]
        f0, f1 = frame_refs(r, frames)
        k0, k1 = (int(k) for k in re.findall(r"frame (\d+) of", r.question))
        assert 5 <= k1 - k0 <= 30
        d = float(np.linalg.norm(np.array(f1.camera_to_world)[:3, 3] - np.array(f0.camera_to_world)[:3, 3]))
        assert 0.2 <= d <= 10 and r.ground_truth == round(d, 1) and float(chosen_text(r)) == r.ground_truth


def test_camera_movement_direction_rederived(built):
    records, graphs = built
    for r in records["camera_movement_direction"]:
        _, frames = graphs[r.scene_name]
        f0, f1 = frame_refs(r, frames)
        p0, p1 = np.array(f0.camera_to_world), np.array(f1.camera_to_world)
        x, _, z = p0[:3, :3].T @ (p1[:3, 3] - p0[:3, 3])
        want = ("Right" if x > 0 else "Left") if abs(x) > abs(z) else ("Forward" if z > 0 else "Backward")
        n = len(r.options)
        assert max(abs(x), abs(z)) > (1.0 if n == 4 else 0.5)
        assert r.ground_truth == want == chosen_text(r)


@pytest.mark.parametrize("name", TASK_NAMES)
def test_degenerate_inputs_give_no_questions(name, built):
    _, graphs = built
    scene, frames = graphs["scene0001_00"]
    task = TASKS.get(name)
    assert task.needs_frames and task.version >= 1
    assert getattr(task, "numeric", False) == (name in ("camera_obj_abs_dist", "camera_displacement"))
    rng = np.random.default_rng(0)
    assert task.generate(scene, None, rng) == []
    assert task.generate(scene, frames.model_copy(update={"frames": []}), rng) == []
    if name in ("camera_displacement", "camera_movement_direction"):
        one = frames.model_copy(update={"frames": frames.frames[:5]})
        assert task.generate(scene, one, rng) == []  # no two frames 5 ranks apart
    else:
        empty = scene.model_copy(update={"objects": [], "object_counts": {}})
        assert task.generate(empty, frames, rng) == []
