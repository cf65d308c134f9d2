"""Builds that other processes and file systems cannot corrupt: case-colliding scene ids, readers
that refuse incomplete exports, unchanged re-runs that touch nothing, one build per output folder,
data printed as text (never rich markup), portable scene ids."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vlm3r.cli import data_app, eval_app
from vlm3r.schemas.io import train_shard_files as shard_files
from vlm3r.pipelines.build import BuildConfig, OutputLocked, build, output_lock
from vlm3r.pipelines.eval.scoring import load_benchmark
from vlm3r.scenes.base import AdapterConfig, case_collisions, check_scene_id
from vlm3r.scenes.scannet import ScanNetAdapter
from vlm3r.schemas.io import IncompleteExport, read_qa_records


def copy_scene(src_root: Path, dst_root: Path, src_id: str, dst_id: str) -> None:
    shutil.copytree(src_root / "scans" / src_id, dst_root / "scans" / dst_id)
    for p in (dst_root / "scans" / dst_id).iterdir():
        p.rename(p.with_name(p.name.replace(src_id, dst_id)))


def raw_root(scannet_root, dst: Path, ids=("scene0001_00", "scene0002_00")) -> Path:
    src, _ = scannet_root
    for sid in ids:
        copy_scene(src, dst, sid, sid)
    shutil.copy(src / "scannetv2-labels.combined.tsv", dst)
    return dst


def config(out: Path) -> BuildConfig:
    return BuildConfig(out=out, adapter=AdapterConfig(num_frames=8), write_video=False, answerable=False)


@pytest.fixture(scope="module")
def built(scannet_root, tmp_path_factory):
    root = raw_root(scannet_root, tmp_path_factory.mktemp("raw"))
    out = tmp_path_factory.mktemp("out")
    build(ScanNetAdapter(root), config(out))
    return root, out


# ------------------------------------------------------------------ 1. case-insensitive file systems


def test_case_colliding_scene_ids_keep_one_and_name_both(scannet_root, tmp_path):
    root = raw_root(scannet_root, tmp_path / "raw")
    copy_scene(scannet_root[0], root, "scene0001_00", "Scene0001_00")
    summary = build(ScanNetAdapter(root), config(tmp_path / "out"))
    assert case_collisions(["scene0001_00", "Scene0001_00", "scene0002_00"]) == {"scene0001_00": "Scene0001_00"}
    reason = summary.skipped["scene0001_00"]
    assert "'Scene0001_00'" in reason and "'scene0001_00'" in reason and "case" in reason
    built_ids = sorted(p.name for p in (tmp_path / "out/scenes/scannet").iterdir())
    assert built_ids == ["Scene0001_00", "scene0002_00"]
    scenes_in_qa = {r.scene_name for r in read_qa_records(tmp_path / "out")}
    assert scenes_in_qa == {"Scene0001_00", "scene0002_00"}


# ------------------------------------------------------------------ 2. incomplete exports are refused


def test_readers_refuse_a_task_whose_export_did_not_finish(built, tmp_path):
    _, src = built
    out = tmp_path / "out"
    shutil.copytree(src, out)
    assert load_benchmark(out) and shard_files(out)
    (out / "qa/object_counting/scannet.done.json").unlink()  # as a kill between shards and marker leaves it
    for read in (load_benchmark, read_qa_records, shard_files):
        with pytest.raises(IncompleteExport, match=r"object_counting: the scannet export is incomplete"):
            read(out)
    with pytest.raises(IncompleteExport, match="incomplete"):
        load_benchmark(out / "qa/object_counting/scannet.parquet")
    res = CliRunner().invoke(data_app, ["stats", str(out)])
    assert res.exit_code == 2 and "incomplete" in res.output and "Traceback" not in res.output
    # a marker that counts other shards than are there is incomplete too
    marker = out / "qa/room_size_estimation/scannet.done.json"
    marker.write_text(json.dumps(json.loads(marker.read_text()) | {"shards": 7}))
    (out / "qa/object_counting/scannet.done.json").write_text((src / "qa/object_counting/scannet.done.json").read_text())
    with pytest.raises(IncompleteExport, match="room_size_estimation.*7"):
        load_benchmark(out)


def test_unchanged_rerun_rewrites_no_task(built, tmp_path):
    root, src = built
    out = tmp_path / "out"
    shutil.copytree(src, out)
    stamp = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (out / "qa").rglob("*") if p.is_file() and p.parent != out / "qa"}
    stamp |= {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (out / "train").rglob("*.jsonl")}
    build(ScanNetAdapter(root), config(out))
    assert stamp and all((p.stat().st_ino, p.stat().st_mtime_ns) == s for p, s in stamp.items())
    # a changed configuration rewrites what changed
    before = len((out / "qa/object_abs_distance/scannet-00000.jsonl").read_text().splitlines())
    build(ScanNetAdapter(root), BuildConfig(out=out, adapter=AdapterConfig(num_frames=8), write_video=False, answerable=False,
                                            caps={"object_abs_distance": 1}))
    p = out / "qa/object_abs_distance/scannet-00000.jsonl"
    assert len(p.read_text().splitlines()) == 2 < before
    assert (p.stat().st_ino, p.stat().st_mtime_ns) != stamp[p]
    q = out / "qa/room_size_estimation/scannet-00000.jsonl"
    assert (q.stat().st_ino, q.stat().st_mtime_ns) == stamp[q]


# ------------------------------------------------------------------ 3. one build per output folder


def test_a_second_build_into_the_same_folder_is_refused(built, tmp_path):
    root, _ = built
    out = tmp_path / "out"
    out.mkdir()
    with output_lock(out):
        holder = json.loads((out / ".vlm3r-build.holder.json").read_text())
        assert holder["pid"] == os.getpid()
        with pytest.raises(OutputLocked, match=rf"another build is writing into this folder \(pid {os.getpid()} on "):
            build(ScanNetAdapter(root), config(out))
        res = CliRunner().invoke(data_app, ["build", "--dataset", "scannet", "--root", str(root), "--out", str(out)])
        assert res.exit_code == 2 and "another build is writing" in res.output and "Traceback" not in res.output
    assert not (out / "scenes").exists()  # the refused build wrote nothing
    assert build(ScanNetAdapter(root), config(out)).scenes_ok == 2  # free again once released


# ------------------------------------------------------------------ 4. data is text, never markup


def test_brackets_in_paths_and_reasons_are_printed_as_text(scannet_root, tmp_path):
    root = raw_root(scannet_root, tmp_path / "raw[/red]")
    (root / "scans/scene0002_00/scene0002_00_vh_clean_2.ply").write_bytes(b"not a ply")
    out = tmp_path / "out"
    res = CliRunner().invoke(data_app, ["build", "--dataset", "scannet", "--root", str(root), "--out", str(out), "--no-video"])
    assert res.exit_code == 0, res.output
    assert "skipped" in res.output and "[/red]" in res.output  # the reason names the file under raw[/red]
    missing = tmp_path / "preds[/red][bold].jsonl"
    res = CliRunner().invoke(eval_app, ["score", "--benchmark", str(out), "--predictions", str(missing)])
    assert res.exit_code == 2 and "preds[/red][bold].jsonl" in res.output and "Traceback" not in res.output


# ------------------------------------------------------------------ 9. portable scene ids


@pytest.mark.parametrize("bad", ["scene0001_00\n", "CON", "nul.txt", "com1", "LPT9.tar", "scene.", "a..b", "../x", ""])
def test_unportable_scene_ids_are_refused(bad):
    with pytest.raises(ValueError, match="unsafe scene id"):
        check_scene_id(bad)


@pytest.mark.parametrize("good", ["scene0001_00", "47334096", "0a5c013435", "console", "CONx", "com10"])
def test_portable_scene_ids_pass(good):
    assert check_scene_id(good) == good


# ------------------------------------------------------------------ 5. one scene's questions never stop a build


def test_a_task_failing_on_one_scene_skips_only_that(built, tmp_path, monkeypatch):
    from vlm3r.datagen import TASKS

    root, _ = built
    cls = type(TASKS.select(["object_counting"])[0])
    original = cls.generate

    def explode_on_one(self, scene, frames, rng):
        if scene.scene_id == "scene0002_00":
            raise MemoryError("all-pairs table too large")
        return original(self, scene, frames, rng)

    monkeypatch.setattr(cls, "generate", explode_on_one)
    summary = build(ScanNetAdapter(root), config(tmp_path / "out"))
    reason = summary.generation_failures["object_counting"]["scene0002_00"]
    assert "MemoryError" in reason and "scene0002_00/scene_metadata.json" in reason and "\n" not in reason
    counted = {r.scene_name for r in read_qa_records(tmp_path / "out") if r.question_type == "object_counting"}
    assert counted == {"scene0001_00"}
    sized = {r.scene_name for r in read_qa_records(tmp_path / "out") if r.question_type == "object_size_estimation"}
    assert sized == {"scene0001_00", "scene0002_00"}


@pytest.mark.parametrize("change", [
    {"room_size": 1e300}, {"room_size": 1e7}, {"centroid": [1e7, 0, 0]}, {"n_objects": 1001},
])
def test_the_schema_bounds_what_generation_must_handle(make_meta_scene, change):
    from pydantic import ValidationError

    from vlm3r.schemas.scene import SceneMetadata

    scene = make_meta_scene([("chair", (0, 0, 0.4), (0.5, 0.5, 0.8), 0), ("bed", (3, 0, 0.3), (2, 1.6, 0.6), 0)])
    data = scene.model_dump()
    if "room_size" in change:
        data["room_size"] = change["room_size"]
    if "centroid" in change:
        data["objects"][0]["box"]["centroid"] = change["centroid"]
    if "n_objects" in change:
        data["objects"] = [dict(data["objects"][0], instance_id=i) for i in range(change["n_objects"])]
    with pytest.raises(ValidationError):
        SceneMetadata.model_validate(data)


# ------------------------------------------------------------------ 9. duplicate keys in a meta-info file


def test_meta_info_with_a_repeated_scene_key_is_refused(tmp_path):
    from vlm3r.scenes.vsibench_meta import VsiBenchMetaAdapter

    entry = '{"room_size": 20, "room_center": [0, 0, 1], "object_counts": {}, "object_bboxes": {}}'
    meta = tmp_path / "meta.json"
    meta.write_text('{"scene0001_00": ' + entry + ', "scene0001_00": ' + entry + "}")
    with pytest.raises(FileNotFoundError, match=r"meta.json: not readable JSON \(duplicate key 'scene0001_00'\)"):
        VsiBenchMetaAdapter(meta).list_scenes()


# ------------------------------------------------------------------ 8. messages name the file and the problem


def test_unreadable_prediction_files_name_file_and_line(built, tmp_path):
    _, out = built
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"id": "a", "prediction": "B"}\n{"id": "b", "prediction": "caf\xe9"}\n')
    deep = tmp_path / "deep.jsonl"
    deep.write_text('{"id": "a", "prediction": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    for path, problem in ((latin, "latin.jsonl:2: not UTF-8 text"), (deep, "deep.jsonl:1: JSON nested too deeply")):
        res = CliRunner().invoke(eval_app, ["score", "--benchmark", str(out), "--predictions", str(path)])
        assert res.exit_code == 2 and problem in res.output and "Traceback" not in res.output, res.output


BOX = {"centroid": [1.0, 2.0, 0.5], "axesLengths": [0.4, 0.6, 1.0],
       "normalizedAxes": [0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0], "min": [0.7, 1.8, 0.0], "max": [1.3, 2.2, 1.0]}


@pytest.mark.parametrize("axes, what", [
    ([0.0] * 9, "all zero"),
    ([1.0, 0.0, 0.0, 0.7, 0.7, 0.0, 0.0, 0.0, 1.0], "sheared"),
    ([2.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 2.0], "scaled"),
])
def test_boxes_whose_axes_are_not_a_rotation_are_refused(tmp_path, axes, what):
    from vlm3r.scenes.registry import make_adapter

    entry = {"room_size": 20.0, "room_center": [0, 0, 1], "object_counts": {"chair": 1, "table": 1}, "dataset": "scannet",
             "video_path": "x.mp4", "object_bbox": {"chair": [BOX], "table": [dict(BOX, normalizedAxes=axes)]}}
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"scene0001_00": entry, "scene0002_00": dict(entry, object_bbox={"chair": [BOX]}, object_counts={"chair": 1})}))
    summary = build(make_adapter("vsibench-meta", meta), BuildConfig(out=tmp_path / "out"))
    assert summary.scenes_ok == 1, what  # the good scene is built
    assert "rotation is not a rotation" in summary.skipped["scene0001_00"]


def test_poses_that_are_not_rigid_are_refused():
    from pydantic import ValidationError

    from vlm3r.schemas.scene import Frame

    good = np.eye(4)
    Frame(frame_id=0, timestamp_s=0.0, camera_to_world=good.tolist())
    for bad in (np.diag([1.0, 1.0, 2.0, 1.0]), np.zeros((4, 4)), np.diag([1.0, 1.0, -1.0, 1.0])):
        with pytest.raises(ValidationError, match="not a rigid pose"):
            Frame(frame_id=0, timestamp_s=0.0, camera_to_world=bad.tolist())


def test_an_all_zero_axis_alignment_is_refused(scannet_root, tmp_path):
    root = raw_root(scannet_root, tmp_path / "raw")
    txt = root / "scans" / "scene0001_00" / "scene0001_00.txt"
    lines = [("axisAlignment = " + " ".join(["0"] * 16)) if ln.startswith("axisAlignment") else ln for ln in txt.read_text().splitlines()]
    txt.write_text("\n".join(lines) + "\n")
    summary = build(ScanNetAdapter(root), config(tmp_path / "out"))
    assert summary.scenes_ok == 1
    reason = summary.skipped["scene0001_00"]
    assert "scene0001_00.txt" in reason and "axisAlignment is not a rigid transform" in reason


@pytest.mark.parametrize("name, body, problem", [
    ("scene0001_00_vh_clean_2.0.010000.segs.json", "[1, 2, 3]", "segIndices has no entries"),
    ("scene0001_00.aggregation.json", '"a string"', "no segGroups list"),
])
def test_json_of_the_wrong_type_is_named_with_its_file(scannet_root, tmp_path, name, body, problem):
    root = raw_root(scannet_root, tmp_path / "raw")
    (root / "scans" / "scene0001_00" / name).write_text(body)
    summary = build(ScanNetAdapter(root), config(tmp_path / "out"))
    reason = summary.skipped["scene0001_00"]
    assert name in reason and problem in reason and "AttributeError" not in reason
