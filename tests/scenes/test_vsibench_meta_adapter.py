"""The vsibench-meta adapter: VSI-Bench meta-info in, frame-less scene graphs out, lossless."""

import json

import pytest

from vlm3r.pipelines.build import BuildConfig, build, load_scene_graph
from vlm3r.scenes.base import AdapterConfig, SceneError
from vlm3r.scenes.registry import dataset_names, make_adapter
from vlm3r.scenes.vsibench_meta import VsiBenchMetaAdapter
from vlm3r.schemas.vsibench_meta import export_meta

BOX = {"centroid": [1.0, 2.0, 0.5], "axesLengths": [0.4, 0.6, 1.0],
       "normalizedAxes": [0.0, 1.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 1.0], "min": [0.7, 1.8, 0.0], "max": [1.3, 2.2, 1.0]}


def entry(**extra):
    e = {"room_size": 20.5, "object_counts": {"chair": 2, "table": 1},
         "object_bbox": {"chair": [BOX, dict(BOX, centroid=[3.0, 1.0, 0.5])], "table": [BOX]},
         "room_center": [2.0, 2.0, 1.4], "video_path": "scannet/scene0001_00.mp4", "dataset": "scannet"}
    e.update(extra)
    return e


@pytest.fixture
def meta_file(tmp_path):
    p = tmp_path / "meta.json"
    p.write_text(json.dumps({"scene0002_00": entry(), "scene0001_00": entry(room_size=11.0)}))
    return p


def test_all_88_scenes_import_and_export_unchanged(shared_file):
    path = shared_file("vsibench_meta_scannet_val.json")
    data = json.loads(path.read_text())
    adapter = make_adapter("vsibench-meta", path)
    assert adapter.list_scenes() == list(data) and len(data) == 88
    loaded = [adapter.load(sid, AdapterConfig()) for sid in adapter.list_scenes()]
    assert all(a.frames is None for a in loaded)
    assert export_meta([a.scene for a in loaded]) == data


def test_scene_ids_instance_ids_and_sources(meta_file):
    a = VsiBenchMetaAdapter(meta_file)
    assert a.list_scenes() == ["scene0002_00", "scene0001_00"]  # file order
    s = a.load("scene0002_00", AdapterConfig()).scene
    assert [(o.instance_id, o.category) for o in s.objects] == [(0, "chair"), (1, "chair"), (2, "table")]
    assert s.objects[1].box.centroid == [3.0, 1.0, 0.5]
    assert s.objects[0].box.rotation == [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]  # rows of the file = axes
    assert s.dataset == "scannet" and s.video_path == "scannet/scene0001_00.mp4"
    assert s.source_files == ["meta.json"] and s.source_root == str(meta_file.parent.resolve())


def test_bad_entries_are_named(tmp_path):
    p = tmp_path / "bad.json"
    bad_box = dict(BOX, axesLengths=[0.4, 0.6])
    p.write_text(json.dumps({"a": entry(object_bbox={"chair": [bad_box]}), "b": {"room_size": 3}, "c": [1]}))
    a = VsiBenchMetaAdapter(p)
    for sid in ("a", "b", "c"):
        with pytest.raises(SceneError, match=rf"bad\.json: {sid}"):
            a.load(sid, AdapterConfig())
    with pytest.raises(SceneError, match=r"bad\.json: no scene 'zz'"):
        a.load("zz", AdapterConfig())
    with pytest.raises(FileNotFoundError, match="missing.json"):
        VsiBenchMetaAdapter(tmp_path / "missing.json")


def test_registry_knows_every_adapter(tmp_path, meta_file):
    assert {"scannet", "scannetpp", "arkitscenes", "vsibench-meta"} <= set(dataset_names())
    for name in ("scannetpp", "arkitscenes"):
        assert make_adapter(name, tmp_path).dataset == name
        assert make_adapter(name, tmp_path, name="demo").dataset == "demo"
    assert make_adapter("vsibench-meta", meta_file).dataset == "vsibench-meta-scannet"
    assert make_adapter("vsibench-meta", meta_file, name="demo").dataset == "demo"
    with pytest.raises(FileNotFoundError, match="not a file"):  # the root is read at once
        make_adapter("vsibench-meta", tmp_path)
    with pytest.raises(KeyError, match="did you mean scannetpp"):
        make_adapter("scannetp", tmp_path)


def test_build_writes_scene_graphs_without_frames(meta_file, tmp_path):
    out = tmp_path / "out"
    summary = build(make_adapter("vsibench-meta", meta_file), BuildConfig(out=out))
    assert summary.scenes_ok == 2 and not summary.skipped
    scene, frames = load_scene_graph(out, "vsibench-meta-scannet", "scene0001_00")
    assert frames is None and scene.room_size == 11.0 and scene.dataset == "scannet"
    assert summary.qa_per_task["object_counting"] > 0
    assert summary.qa_per_task.get("camera_displacement", 0) == 0  # needs frames


def test_three_sources_into_one_folder_keep_their_own_qa(tmp_path):
    """ScanNet, ScanNet++ and ARKitScenes meta-info files built into one --out: each keeps its QA."""
    files = {}
    for ds in ("scannet", "scannetpp", "arkitscenes"):
        files[ds] = tmp_path / f"{ds}.json"
        files[ds].write_text(json.dumps({f"{ds}_a": entry(dataset=ds), f"{ds}_b": entry(dataset=ds, room_size=9.0)}))
    out = tmp_path / "out"
    for ds, path in files.items():
        build(make_adapter("vsibench-meta", path), BuildConfig(out=out, tasks=("room_size_estimation",)))
    rows = {ds: (out / f"qa/room_size_estimation/vsibench-meta-{ds}-00000.jsonl").read_text().splitlines() for ds in files}
    for ds, lines in rows.items():
        assert [json.loads(x)["scene_name"] for x in lines] == [f"{ds}_a", f"{ds}_b"]
        assert {json.loads(x)["dataset"] for x in lines} == {ds}
    assert sorted(p.name for p in (out / "scenes").iterdir()) == [f"vsibench-meta-{ds}" for ds in sorted(files)]
    card = (out / "README.md").read_text()
    assert "vsibench-meta-arkitscenes: VSI-Bench meta-information" in card and "CC BY-NC-SA" in card
