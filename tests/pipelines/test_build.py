"""End-to-end builds on synthetic ScanNet-layout scans: outputs, bad scenes, resume, determinism."""

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import numpy.lib.recfunctions  # noqa: F401
import pytest
from plyfile import PlyData, PlyElement
from typer.testing import CliRunner

from vlm3r.schemas.rows import record_from_qa_row
from vlm3r.cli import data_app
from vlm3r.pipelines.build import BuildConfig, build, load_scene_graph
from vlm3r.scenes.base import AdapterConfig
from vlm3r.scenes.scannet import ScanNetAdapter

GOOD = ["scene0001_00", "scene0002_00"]


def copy_root(src: Path, dst: Path, ids) -> Path:
    for sid in ids:
        shutil.copytree(src / "scans" / sid, dst / "scans" / sid)
    shutil.copy(src / "scannetv2-labels.combined.tsv", dst)
    return dst


def tree_digest(out: Path) -> dict[str, str]:
    return {
        str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(out.rglob("*"))
        if p.is_file() and "manifest" not in p.parts and not p.name.startswith("build_summary")
    }


def config(out: Path, workers: int = 1) -> BuildConfig:
    return BuildConfig(out=out, adapter=AdapterConfig(num_frames=8), workers=workers, video_fps=2.0)


@pytest.fixture(scope="module")
def built(scannet_root, tmp_path_factory):
    src, _ = scannet_root
    root = copy_root(src, tmp_path_factory.mktemp("raw"), GOOD)
    out = tmp_path_factory.mktemp("out")
    summary = build(ScanNetAdapter(root), config(out))
    return root, out, summary


def test_outputs_validate_and_counting_matches_scene_graph(built):
    _, out, summary = built
    assert summary.scenes_ok == 2 and not summary.skipped
    for sid in GOOD:
        scene, frames = load_scene_graph(out, "scannet", sid)
        assert len(frames.frames) == 8
        d = out / "scenes" / "scannet" / sid
        assert all((out / f.color_path).is_file() for f in frames.frames)
        assert scene.video_path == f"scenes/scannet/{sid}/video.mp4" and (d / "video.mp4").stat().st_size > 0
        manifest = json.loads((out / "manifest" / "scannet" / f"{sid}.json").read_text())
        assert manifest["status"] == "ok"
    records = [record_from_qa_row(json.loads(line)) for line in (out / "qa/object_counting/scannet-00000.jsonl").read_text().splitlines()]
    assert len(records) == summary.qa_per_task["object_counting"] > 0
    for r in records:
        scene, _ = load_scene_graph(out, "scannet", r.scene_name)
        assert r.ground_truth == scene.object_counts[r.categories[0]] >= 2
    assert json.loads((out / "qa/object_counting/scannet.done.json").read_text())["records"] == len(records)


def test_video_decodes_to_the_sampled_frames(built):
    import av

    _, out, _ = built
    with av.open(str(out / "scenes/scannet/scene0001_00/video.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) == 8


def test_rerun_skips_finished_scenes_and_redoes_a_lost_one(built):
    root, out, _ = built
    before = tree_digest(out)
    again = build(ScanNetAdapter(root), config(out))
    assert again.scenes_resumed == 2
    (out / "manifest" / "scannet" / "scene0002_00.json").unlink()  # as if killed before the manifest
    third = build(ScanNetAdapter(root), config(out))
    assert third.scenes_resumed == 1 and third.scenes_ok == 2
    assert tree_digest(out) == before


def test_workers_do_not_change_output(built, tmp_path):
    root, out, _ = built
    build(ScanNetAdapter(root), config(tmp_path / "two", workers=2))
    assert tree_digest(tmp_path / "two") == tree_digest(out)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _drop_label_property(path: Path) -> None:
    ply = PlyData.read(str(path), mmap=False)
    v = ply["vertex"].data
    names = [n for n in v.dtype.names if n != "label"]
    stripped = np.lib.recfunctions.repack_fields(v[names])
    PlyData([PlyElement.describe(stripped, "vertex"), ply["face"]]).write(str(path))


def _unknown_segment(path: Path) -> None:
    agg = json.loads(path.read_text())
    agg["segGroups"][0]["segments"].append(987654321)
    path.write_text(json.dumps(agg))


def _all_poses_nan(path: Path) -> None:
    from vlm3r.scenes.sens import SensFrame, SensReader, write_sens

    with SensReader(path) as r:
        frames = [SensFrame(np.full((4, 4), np.nan), r.color_bytes(i), r.depth_bytes(i), 0, 0) for i in range(r.num_frames)]
        header = r.header
    write_sens(path, header, frames)


def _non_utf8_label(path: Path) -> None:
    agg = path.read_bytes().replace(b'"label": "', b'"label": "\xff\xfe', 1)
    path.write_bytes(agg)


def _duplicate_object_id(path: Path) -> None:
    agg = json.loads(path.read_text())
    agg["segGroups"][1]["objectId"] = agg["segGroups"][0]["objectId"]
    path.write_text(json.dumps(agg))


def _empty_mesh(path: Path) -> None:
    ply = PlyData.read(str(path), mmap=False)
    v = ply["vertex"].data[:0]
    PlyData([PlyElement.describe(v, "vertex"), PlyElement.describe(ply["face"].data[:0], "face")]).write(str(path))


def _huge_vertex(path: Path) -> None:
    ply = PlyData.read(str(path), mmap=False)
    agg = json.loads(path.with_name(path.name.replace("_vh_clean_2.ply", ".aggregation.json")).read_text())
    segs = json.loads(path.with_name(path.name.replace(".ply", ".0.010000.segs.json")).read_text())["segIndices"]
    first_seg = agg["segGroups"][0]["segments"][0]
    v = ply["vertex"].data
    v["x"][segs.index(first_seg)] = 1e7  # one vertex of the first object 10,000 km away
    ply.write(str(path))


def _nan_vertex(path: Path) -> None:
    ply = PlyData.read(str(path), mmap=False)
    ply["vertex"].data["z"][5] = np.nan
    ply.write(str(path))


def _zero_size_colour(path: Path) -> None:
    from vlm3r.scenes.sens import SensFrame, SensReader, write_sens

    with SensReader(path) as r:
        frames = [SensFrame(r.poses[i], b"", r.depth_bytes(i), 0, 0) for i in range(r.num_frames)]
        header = r.header
    write_sens(path, header, frames)


def _bad_alignment(path: Path) -> None:
    path.write_text(path.read_text().replace("axisAlignment = ", "axisAlignment = nan ", 1))


BREAKAGES = {
    "non-utf8 label": (".aggregation.json", _non_utf8_label, r"aggregation\.json: invalid JSON"),
    "duplicate object id": (".aggregation.json", _duplicate_object_id, r"aggregation\.json: duplicate or negative objectId"),
    "empty mesh": ("_vh_clean_2.ply", _empty_mesh, r"_vh_clean_2\.ply: mesh has no vertices"),
    "huge extent": ("_vh_clean_2.ply", _huge_vertex, r"_vh_clean_2\.ply: objectId \d+ .*(axes_lengths|coordinates) must lie with?in"),
    "nan vertex": ("_vh_clean_2.ply", _nan_vertex, r"_vh_clean_2\.ply: mesh vertices contain NaN"),
    "zero-size colour": (".sens", _zero_size_colour, r"\.sens: frame \d+: undecodable colour"),
    "bad alignment": (".txt", _bad_alignment, r"\.txt: axisAlignment needs 16 finite numbers"),
    "truncated sens": (".sens", _truncate, r"\.sens: truncated"),
    "labels ply without label": ("_vh_clean_2.labels.ply", _drop_label_property, r"labels\.ply: ply has no 'label'"),
    "unknown segment": (".aggregation.json", _unknown_segment, r"aggregation\.json: objectId \d+ references unknown segment 987654321"),
    "nan poses": (".sens", _all_poses_nan, r"\.sens: no frame with a finite pose"),
}


def test_bad_scenes_are_skipped_with_reasons_and_others_finish(scannet_root, tmp_path):
    src, _ = scannet_root
    root = copy_root(src, tmp_path / "raw", GOOD)
    for k, (suffix, breaker, _) in enumerate(BREAKAGES.values()):
        sid = f"scene09{k:02d}_00"
        shutil.copytree(src / "scans" / "scene0003_00", root / "scans" / sid)
        for p in (root / "scans" / sid).iterdir():  # rename files to the new scene id
            p.rename(p.with_name(p.name.replace("scene0003_00", sid)))
        breaker(root / "scans" / sid / f"{sid}{suffix}")
    (root / "scans" / "scene0999_00").mkdir()  # empty scene
    out = tmp_path / "out"
    summary = build(ScanNetAdapter(root), config(out))
    assert summary.scenes_ok == 2
    for k, (_, _, pattern) in enumerate(BREAKAGES.values()):
        sid = f"scene09{k:02d}_00"
        assert sid in summary.skipped
        reason = summary.skipped[sid]
        assert "\n" not in reason and sid in reason
        assert __import__("re").search(pattern, reason), reason
        assert not (out / "scenes" / "scannet" / sid).exists()
        assert json.loads((out / "manifest" / "scannet" / f"{sid}.json").read_text())["status"] == "skipped"
    assert "scene0999_00" in summary.skipped and "missing" in summary.skipped["scene0999_00"]
    assert not list((out / "scenes" / "scannet").glob(".tmp-*"))


def test_cli_build_on_scannet_layout_and_unsafe_ids(built, tmp_path):
    root, _, _ = built
    out = tmp_path / "out"
    res = CliRunner().invoke(
        data_app,
        ["build", "--dataset", "scannet", "--root", str(root), "--out", str(out), "--frames", "4", "--no-video",
         "--scenes", "scene0001_00", "--scenes", "../../escape"],
    )
    assert res.exit_code == 0, res.output
    assert "1 scenes ok" in res.output and "1 skipped" in res.output
    assert (out / "scenes/scannet/scene0001_00/scene_metadata.json").is_file()
    assert not (tmp_path / "escape").exists() and not any("escape" in str(p) for p in tmp_path.rglob("*"))


def test_cli_unknown_task_is_one_line_error(built, tmp_path):
    root, _, _ = built
    res = CliRunner().invoke(
        data_app, ["build", "--dataset", "scannet", "--root", str(root), "--out", str(tmp_path), "--tasks", "object_countng"]
    )
    assert res.exit_code == 2 and "did you mean object_counting" in res.output


def test_entry_points_list_their_commands():
    import subprocess
    import sys

    p = subprocess.run([sys.executable, "-c", "import sys; sys.argv=['vlm3r-eval','--help']; from vlm3r.cli import eval_main; eval_main()"],
                       capture_output=True, text=True)
    assert p.returncode == 0 and "score" in p.stdout and "baseline" in p.stdout and "predict" in p.stdout
    p = subprocess.run([sys.executable, "-c", "import sys; sys.argv=['vlm3r-train','--help']; from vlm3r.cli import train_main; train_main()"],
                       capture_output=True, text=True)
    assert p.returncode == 0 and "--preset" in p.stdout
