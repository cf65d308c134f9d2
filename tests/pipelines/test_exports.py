"""Benchmark, Parquet and training exports; splits and the evaluation-scene leakage guard."""

import json
from collections import Counter

import pytest

from vlm3r.schemas.rows import record_from_qa_row
from vlm3r.datagen import TASKS
from vlm3r.datagen.records import finalize_records
from vlm3r.pipelines.build import BuildConfig, build
from vlm3r.pipelines.exports import export_task
from vlm3r.schemas.conversation import conversation
from vlm3r.pipelines.splits import assign_splits, read_split_lists, vsibench_eval_scenes
from vlm3r.scenes.base import AdapterConfig
from vlm3r.schemas.seeding import scene_rng
from vlm3r.scenes.registry import make_adapter


def records_for(task_name, scenes, seed=0):
    task = TASKS.get(task_name)
    per_scene = [(s, task.generate(s, None, scene_rng(seed, task.name, s.dataset, s.scene_id))) for s in scenes]
    return task, finalize_records(task, per_scene, seed, {s.scene_id: "train" for s in scenes})


def test_conversation_formats(make_meta_scene):
    scene = make_meta_scene([("chair", (0, 0, 0.4), (0.5, 0.5, 0.8), 0)] * 3 + [("bed", (3, 0, 0.3), (2, 1.6, 0.6), 0)])
    _, (count,) = records_for("object_counting", [scene])
    c = conversation(count, numeric=True)
    assert c["conversations"][0]["value"] == (
        "<image>\nThese are frames of a video.\nHow many chair(s) are in this room?\n"
        "Please answer the question using a single word or phrase."
    )
    assert c["conversations"][1] == {"from": "gpt", "value": "3"}
    mc = conversation(count, numeric=False)
    lines = mc["conversations"][0]["value"].split("\n")
    assert lines[3] == "Options:" and lines[4].startswith("A. ") and len(lines) == 9
    assert lines[-1] == "Answer with the option's letter from the given choices directly."
    assert mc["conversations"][1]["value"] == count.mc_answer


def test_parquet_loads_with_datasets(tmp_path, make_meta_scene):
    datasets = pytest.importorskip("datasets")
    scenes = [make_meta_scene([("chair", (i, 0, 0.4), (0.5, 0.5, 0.8), 0) for i in range(k)], scene_id=f"s{k}") for k in (2, 3, 4)]
    task, records = records_for("object_counting", scenes)
    summary = export_task(tmp_path, "test", task.name, task.version, records, True, {"s2", "s3"})
    ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "qa/object_counting/test.parquet"), split="train")
    assert ds.num_rows == 3 and ds[0]["question_type"] == "object_counting"
    assert sorted(ds["ground_truth"]) == ["2", "3", "4"] and len(ds[0]["options"]) == 4
    assert summary["count"] == 3 and summary["train_samples"] == 2
    train = (tmp_path / "train/object_counting/test-00000.jsonl").read_text().splitlines()
    assert sorted(json.loads(x)["scene_name"] for x in train) == ["s2", "s3"]


def test_splits_seeded_stable_and_official(tmp_path):
    ids = [f"scene{i:04d}_00" for i in range(400)]
    a = assign_splits("scannet", ids, seed=0)
    assert a == assign_splits("scannet", list(reversed(ids)), seed=0)
    assert 20 <= Counter(a.values())["val"] <= 60
    assert assign_splits("scannet", ids[:10], seed=0) == {k: a[k] for k in ids[:10]}  # adding scenes moves none
    (tmp_path / "val.txt").write_text("scene0001_00\n# comment\nscene0002_00\n")
    official = read_split_lists({"val": tmp_path / "val.txt"})
    b = assign_splits("scannet", ids[:5], seed=0, official=official)
    assert b["scene0001_00"] == b["scene0002_00"] == "val"
    (tmp_path / "train.txt").write_text("scene0001_00\n")
    with pytest.raises(ValueError, match="also listed"):
        read_split_lists({"val": tmp_path / "val.txt", "train": tmp_path / "train.txt"})


def test_eval_scene_list_shipped():
    ev = vsibench_eval_scenes()
    assert len(ev) == 288 and Counter(ds for ds, _ in ev) == {"scannet": 88, "scannetpp": 50, "arkitscenes": 150}


def test_shipped_eval_list_matches_shared(shared_file):
    rows = shared_file("vsibench_eval_scenes.tsv").read_text().splitlines()[1:]
    assert {tuple(r.split("\t")) for r in rows if r} == vsibench_eval_scenes()


def _digest(out):
    import hashlib

    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and "manifest" not in p.parts and not p.name.startswith("build_summary")
    }


def test_real_scenes_answers_determinism_and_leakage_guard(shared_file, tmp_path):
    meta = shared_file("vsibench_meta_scannet_val.json")
    data = json.loads(meta.read_text())
    outs = []
    for k, workers in enumerate((1, 2, 1)):
        out = tmp_path / f"out{k}"
        summary = build(make_adapter("vsibench-meta", meta), BuildConfig(out=out, adapter=AdapterConfig(seed=0), workers=workers))
        assert summary.scenes_ok == 88 and not summary.skipped
        outs.append(out)
    assert _digest(outs[0]) == _digest(outs[1]) == _digest(outs[2])
    # Every scene is a VSI-Bench evaluation scene: nothing reaches the training export.
    assert summary.excluded_eval_scenes == 88
    for f in (outs[0] / "train").rglob("*.jsonl"):
        assert f.read_text() == ""
    counting = [record_from_qa_row(json.loads(x)) for x in (outs[0] / "qa/object_counting/vsibench-meta-scannet-00000.jsonl").read_text().splitlines()]
    assert counting and all(r.ground_truth == data[r.scene_name]["object_counts"][r.categories[0]] for r in counting)
    sizes = [record_from_qa_row(json.loads(x)) for x in (outs[0] / "qa/object_size_estimation/vsibench-meta-scannet-00000.jsonl").read_text().splitlines()]
    assert sizes
    for r in sizes:
        (box,) = data[r.scene_name]["object_bbox"][r.categories[0]]
        assert r.ground_truth == round(100 * max(box["axesLengths"]))
    letters = Counter(r.mc_answer for r in counting)
    assert max(letters.values()) - min(letters.values()) <= 1
