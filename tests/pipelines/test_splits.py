"""Scene splits: VSI-Bench evaluation scenes are marked as such in every record, never "train"."""

import json

import pyarrow.parquet as pq

from vlm3r.pipelines.build import BuildConfig, build
from vlm3r.pipelines.splits import EVAL_SPLIT, assign_splits, mark_eval_scenes, vsibench_eval_scenes
from vlm3r.scenes.registry import make_adapter


def test_mark_eval_scenes_overrides_any_split():
    splits = {"a": "train", "b": "val", "c": "train"}
    assert mark_eval_scenes(splits, ["a", "b", "zz"]) == {"a": EVAL_SPLIT, "b": EVAL_SPLIT, "c": "train"}
    assert splits["a"] == "train"  # the input is not changed


def test_eval_scene_records_say_vsibench_eval_in_jsonl_and_parquet(shared_file, tmp_path):
    meta = shared_file("vsibench_meta_scannet_val.json")
    adapter = make_adapter("vsibench-meta", meta)
    ids = adapter.list_scenes()[:5]
    assert all(("scannet", sid) in vsibench_eval_scenes() for sid in ids)
    out = tmp_path / "out"
    build(adapter, BuildConfig(out=out, tasks=("object_counting", "room_size_estimation")), ids)
    folder = out / "qa" / "room_size_estimation"
    rows = [json.loads(x) for x in (folder / f"{adapter.dataset}-00000.jsonl").read_text().splitlines()]
    assert len(rows) == 5 and {r["split"] for r in rows} == {EVAL_SPLIT}
    assert set(pq.read_table(folder / f"{adapter.dataset}.parquet").column("split").to_pylist()) == {EVAL_SPLIT}
    assert not [r for r in rows if r["split"] == "train"]
    # kept in training on request: then they take their ordinary split
    out2 = tmp_path / "out2"
    build(adapter, BuildConfig(out=out2, tasks=("room_size_estimation",), exclude_eval_scenes=False, val_fraction=0.0), ids)
    rows2 = [json.loads(x) for x in (out2 / f"qa/room_size_estimation/{adapter.dataset}-00000.jsonl").read_text().splitlines()]
    assert {r["split"] for r in rows2} == {"train"}
    assert assign_splits("scannet", ids, 0, None, 0.0) == {sid: "train" for sid in ids}
