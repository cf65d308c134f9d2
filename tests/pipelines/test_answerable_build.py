"""A demo scan whose camera never faces one object: with answerability on (the default), no question
names that object's category; with --no-answerable they come back, and the summary says what was dropped."""

import dataclasses
import json

import numpy as np
import pytest

from vlm3r.pipelines.build import BuildConfig, build, load_scene_graph
from vlm3r.schemas.io import read_qa_records
from vlm3r.scenes.base import AdapterConfig
from vlm3r.scenes.demo.scannet_layout import write_scannet_scene
from vlm3r.scenes.demo.synthetic import SyntheticConfig, look_rotation, make_scene
from vlm3r.scenes.scannet import ScanNetAdapter

SMALL = SyntheticConfig(n_frames=48, width=160, height=120, mesh_resolution=0.05, n_objects=(8, 12))
SCENE_LEVEL = ("object_size_estimation", "object_abs_distance", "object_rel_direction_hard", "object_rel_distance")


def facing_away(scene, hidden):
    """The scene with every camera turned to look straight away from ``hidden`` (level, yaw only):
    the object is behind every camera, so no frame can show it."""
    poses = scene.camera_to_world.copy()
    away = poses[:, :2, 3] - hidden.centroid[None, :2]
    yaw = np.arctan2(away[:, 1], away[:, 0])
    poses[:, :3, :3] = look_rotation(yaw, np.zeros_like(yaw))
    return dataclasses.replace(scene, camera_to_world=poses)


@pytest.fixture(scope="module")
def hidden_build(tmp_path_factory):
    scene = make_scene("scene0101_00", seed=5, config=SMALL)
    counts = {}
    for o in scene.objects:
        counts[o.category] = counts.get(o.category, 0) + 1
    hidden = next(o for o in scene.objects if counts[o.category] == 1)  # a unique category: many questions name it
    root = tmp_path_factory.mktemp("raw")
    write_scannet_scene(facing_away(scene, hidden), root)
    out = tmp_path_factory.mktemp("out")
    cfg = BuildConfig(out=out, adapter=AdapterConfig(num_frames=16), tasks=SCENE_LEVEL, write_video=False)
    kept_all = build(ScanNetAdapter(root), dataclasses.replace(cfg, answerable=False))
    records_all = {t: read_qa_records(out / "qa" / t) for t, n in kept_all.qa_per_task.items() if n}
    filtered = build(ScanNetAdapter(root), cfg)
    return out, hidden, records_all, filtered


def test_the_hidden_object_is_in_no_frame_by_construction(hidden_build):
    out, hidden, _, _ = hidden_build
    scene, frames = load_scene_graph(out, "scannet", "scene0101_00")
    ids = {o.instance_id for o in scene.objects if o.category == hidden.category}
    assert len(ids) == 1
    assert not any(v.instance_id in ids for f in frames.frames for v in f.visible)
    assert any(f.visible for f in frames.frames)  # other objects are seen


def test_questions_about_it_are_dropped_and_counted(hidden_build):
    out, hidden, records_all, filtered = hidden_build
    names_it = {t: [r for r in recs if hidden.category in r.categories] for t, recs in records_all.items()}
    assert names_it["object_size_estimation"]  # without the filter it is asked about
    for task in (t for t, n in filtered.qa_per_task.items() if n):
        kept = read_qa_records(out / "qa" / task)
        assert not [r for r in kept if hidden.category in r.categories]
    dropped = {t: sum(v.values()) for t, v in filtered.unanswerable.items()}
    assert dropped.get("object_size_estimation", 0) >= len(names_it["object_size_estimation"])
    assert set(filtered.unanswerable["object_size_estimation"]) == {"unseen"}
    written = json.loads((out / "build_summary.scannet.json").read_text())
    assert written["unanswerable"] == filtered.unanswerable
    # other objects' questions that every frame-set shows are kept
    assert filtered.qa_per_task["object_size_estimation"] >= 1


def test_scenes_without_frames_are_not_filtered(tmp_path, shared_file):
    from vlm3r.scenes.registry import make_adapter

    meta = shared_file("vsibench_meta_scannet_val.json")
    adapter = make_adapter("vsibench-meta", meta)
    ids = adapter.list_scenes()[:3]
    on = build(adapter, BuildConfig(out=tmp_path / "a", tasks=("object_counting",)), ids)
    off = build(adapter, BuildConfig(out=tmp_path / "b", tasks=("object_counting",), answerable=False), ids)
    assert on.qa_per_task == off.qa_per_task and on.unanswerable == {}
