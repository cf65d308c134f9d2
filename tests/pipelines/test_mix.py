"""Training mixes in the paper's proportions, from one demo build and from several builds of
different sources; the trainer reads a mix folder with each line's frames in its own build."""

import json
import shutil
from collections import Counter, defaultdict

import pytest
from typer.testing import CliRunner

from vlm3r.cli import data_app
from vlm3r.model.data import locate_video, read_samples
from vlm3r.pipelines.build import BuildConfig, build
from vlm3r.pipelines.mix import mix_builds, read_mix_report
from vlm3r.pipelines.presets import PRESETS
from vlm3r.schemas.io import IncompleteExport
from vlm3r.schemas.qa import task_family
from vlm3r.scenes.base import AdapterConfig
from vlm3r.scenes.scannet import ScanNetAdapter


@pytest.fixture(scope="module")
def demo_build(scannet_root, tmp_path_factory):
    root, _ = scannet_root
    out = tmp_path_factory.mktemp("mix_demo")
    cfg = BuildConfig(out=out, adapter=AdapterConfig(num_frames=8), val_fraction=0.0, write_video=False,
                      answerable=False, training_mixes=("vlm3r-train", "vsti-train"))
    return out, build(ScanNetAdapter(root), cfg)


@pytest.fixture
def meta_build(shared_file, tmp_path):
    from vlm3r.scenes.registry import make_adapter

    out = tmp_path / "mix_meta"
    adapter = make_adapter("vsibench-meta", shared_file("vsibench_meta_scannet_val.json"))
    cfg = BuildConfig(out=out, val_fraction=0.0, exclude_eval_scenes=False)  # its scenes are VSI-Bench's own
    build(adapter, cfg, adapter.list_scenes()[:6])
    return out


def train_lines(folder):
    return [json.loads(x) for p in sorted((folder / "train").glob("*/*.jsonl")) for x in p.read_text().splitlines()]


@pytest.mark.parametrize("preset", ["vlm3r-train", "vsti-train"])
def test_preset_reproduces_the_table_within_one_question(demo_build, preset):
    out, summary = demo_build
    available = Counter(task_family(r["question_type"]) for r in train_lines(out))  # counted independently
    table = PRESETS[preset]
    present = [f for f in table if available[f]]
    assert len(present) >= 3
    scale = min(available[f] / table[f] for f in present)
    got = Counter(task_family(r["question_type"]) for r in train_lines(out / "mix" / preset))
    for fam, n in table.items():
        expected = scale * n if fam in present else 0
        assert abs(got[fam] - expected) < 1, fam
    report = summary.training_mixes[preset]
    assert report["achieved"] == {f: got[f] for f in table} and report["available"] == {f: available[f] for f in present}
    assert read_mix_report(out / "mix" / preset).achieved == report["achieved"]


def test_mix_caps_questions_per_scene(demo_build):
    out, summary = demo_build
    report = summary.training_mixes["vlm3r-train"]
    lines = train_lines(out / "mix" / "vlm3r-train")
    per = defaultdict(Counter)
    for r in lines:
        per[r["question_type"]][r["scene_name"]] += 1
    pool = defaultdict(Counter)
    for r in train_lines(out):
        pool[r["question_type"]][r["scene_name"]] += 1
    for qtype, scenes in per.items():
        cap = report["per_scene_cap"][qtype]
        assert max(scenes.values()) <= cap
        # a scene below the cap gave everything it had but one at most (the surplus taken back)
        assert all(scenes[s] >= min(n, cap - 1) for s, n in pool[qtype].items())


def test_mix_of_two_sources_trains_from_each_build(demo_build, meta_build, tmp_path):
    out, _ = demo_build
    to = tmp_path / "mixed"
    report = mix_builds([meta_build, out], "vlm3r-train", to, seed=0)
    lines = train_lines(to)
    assert {r["dataset"] for r in lines} >= {"scannet"} and len({r["build"] for r in lines}) == 2
    assert sum(report.achieved.values()) == len(lines)
    # byte-identical whatever the order of the builds, and the same again
    again = tmp_path / "again"
    mix_builds([out, meta_build], "vlm3r-train", again, seed=0)
    files = sorted(p.relative_to(to) for p in to.rglob("*.jsonl"))
    assert files == sorted(p.relative_to(again) for p in again.rglob("*.jsonl"))
    assert all((to / f).read_bytes() == (again / f).read_bytes() for f in files)
    samples = read_samples([to])
    assert {s.root for s in samples} == {out.resolve(), meta_build.resolve()}
    demo = [s for s in samples if s.root == out.resolve()]
    assert demo and all(locate_video(s.root, s.video, s.source, s.dataset, s.scene_name) for s in demo[:5])
    # moving the mix together with its builds keeps it working: paths are relative
    assert all(not r["build"].startswith("/") for r in lines)


def test_mix_refuses_an_incomplete_build(demo_build, tmp_path):
    out, _ = demo_build
    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    marker = next((broken / "qa").glob("object_counting/*.done.json"))
    marker.unlink()
    with pytest.raises(IncompleteExport):
        mix_builds([broken], "vlm3r-train", tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_mix_command_prints_target_and_achieved(demo_build, tmp_path):
    out, _ = demo_build
    res = CliRunner().invoke(data_app, ["mix", str(out), "--preset", "vsti-train", "--to", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    assert "camera_displacement" in res.output and "achieved" in res.output and "32292" in res.output
    bad = CliRunner().invoke(data_app, ["mix", str(out), "--preset", "vlm3r", "--to", str(tmp_path / "n")])
    assert bad.exit_code == 2 and "unknown training preset 'vlm3r'" in bad.output
