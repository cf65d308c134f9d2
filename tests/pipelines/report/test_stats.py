"""Build statistics: counts, letter balance, answer distributions, scene inventory, CLI."""

import json

import pytest
from typer import Typer
from typer.testing import CliRunner

from vlm3r.cli import stats_command
from vlm3r.pipelines.report.stats import build_stats, compute_stats, task_group, task_stats
from vlm3r.schemas.qa import QARecord


def rec(i, qtype, gt, letter=None, options=None, scene="s1", dataset="demo"):
    return QARecord(
        id=f"{qtype}-{i}", dataset=dataset, scene_name=scene, question_type=qtype, question="q", options=options,
        ground_truth=gt, mc_answer=letter, task_version=1,
    )


def test_task_stats_by_hand():
    opts = lambda correct, k: [f"{l}. {t}" for l, t in zip("ABCD", (["left", "right", "back", "front"][:k]))]  # noqa: E731
    recs = [
        rec(0, "object_rel_direction_medium", "left", "A", opts("left", 3)),
        rec(1, "object_rel_direction_medium", "right", "B", opts("right", 3), scene="s2"),
        rec(2, "object_rel_direction_medium", "left", "A", opts("left", 3), scene="s2"),
        rec(3, "object_rel_direction_medium", "back", "C", opts("back", 3), dataset="other"),
    ]
    st = task_stats("object_rel_direction_medium", recs)
    assert (st.n, st.n_scenes, st.numeric, st.group) == (4, 3, False, "Configuration")
    assert st.letters == {"A": 2, "B": 1, "C": 1, "D": 0}
    assert st.letters_balanced  # balance is only judged over 4-option questions
    assert st.answers == {"left": 2, "back": 1, "right": 1}
    assert st.datasets == {"demo": 3, "other": 1}
    assert st.options_per_question == {"3": 4}


def test_letter_balance_is_judged_per_option_count():
    two, four = ["A. x", "B. y"], ["A. 1", "B. 2", "C. 3", "D. 4"]
    # overall A/B/C/D = 3/3/3/3 looks balanced, but every 4-option question is answered D
    recs = [rec(k, "camera_movement_direction", "x", "AB"[k % 2], two) for k in range(6)]
    recs += [rec(6 + k, "camera_movement_direction", "y", "C", ["A. 1", "B. 2", "C. 3"]) for k in range(3)]
    recs += [rec(9 + k, "camera_movement_direction", "4", "D", four) for k in range(3)]
    st = task_stats("camera_movement_direction", recs)
    assert st.letters == {"A": 3, "B": 3, "C": 3, "D": 3}
    assert st.letters_by_options == {"2": {"A": 3, "B": 3}, "3": {"A": 0, "B": 0, "C": 3}, "4": {"A": 0, "B": 0, "C": 0, "D": 3}}
    assert not st.letters_balanced
    fixed = recs[:6] + [rec(20 + k, "camera_movement_direction", "1", "ABCD"[k], four) for k in range(4)]
    assert task_stats("camera_movement_direction", fixed).letters_balanced


def test_letter_imbalance_is_flagged_for_four_options():
    four = ["A. 1", "B. 2", "C. 3", "D. 4"]
    recs = [rec(i, "object_counting", 2, "A", four) for i in range(3)] + [rec(9, "object_counting", 3, "B", four)]
    st = task_stats("object_counting", recs)
    assert not st.letters_balanced  # A=3, B=1, C=0, D=0
    assert st.answers == {"min": 2.0, "p25": 2.0, "median": 2.0, "mean": 2.25, "p75": 2.25, "max": 3.0}
    balanced = [rec(i, "object_counting", 2, "ABCD"[i % 4], four) for i in range(9)]
    assert task_stats("object_counting", balanced).letters_balanced


def test_groups_cover_every_generated_variant():
    assert task_group("camera_obj_rel_dist_v2") == "Camera-object"
    assert task_group("obj_obj_relative_pos_ud") == "Object-object"
    assert task_group("object_rel_distance_3") == "Configuration"
    assert task_group("object_rel_direction_easy") == "Configuration"
    assert task_group("room_size_estimation") == "Measurement"
    assert task_group("camera_displacement") == "Camera motion"
    assert task_group("something_new") == "Other"


def test_compute_stats_per_scene_and_order():
    recs = [rec(0, "room_size_estimation", 20.5), rec(1, "object_counting", 3, scene="s2"), rec(2, "object_counting", 2)]
    st = compute_stats(recs)
    assert list(st.tasks) == ["object_counting", "room_size_estimation"]  # both Configuration < Measurement
    assert st.per_scene == {"demo/s1": {"room_size_estimation": 1, "object_counting": 1}, "demo/s2": {"object_counting": 1}}
    assert st.datasets["demo"].questions == 3 and st.datasets["demo"].scenes == 2
    assert st.total_questions == 3


@pytest.fixture(scope="module")
def small_build(scannet_root, tmp_path_factory):
    from vlm3r.pipelines.build import BuildConfig, build
    from vlm3r.scenes.base import AdapterConfig
    from vlm3r.scenes.scannet import ScanNetAdapter

    root, scenes = scannet_root
    out = tmp_path_factory.mktemp("stats_build")
    ids = ["scene0001_00", "scene0002_00"]
    summary = build(ScanNetAdapter(root), BuildConfig(out=out, adapter=AdapterConfig(num_frames=8), write_video=False, answerable=False), ids)
    return out, {k: scenes[k] for k in ids}, summary


def test_build_stats_match_the_build(small_build, tmp_path):
    out, scenes, summary = small_build
    st = build_stats(out)
    assert {t: s.n for t, s in st.tasks.items()} == {t: n for t, n in summary.qa_per_task.items() if n}
    ds = st.datasets["scannet"]
    assert ds.scenes == len(scenes) and ds.frames == 8 * len(scenes)
    assert ds.objects == sum(len(s.objects) for s in scenes.values())
    assert ds.questions == st.total_questions == sum(summary.qa_per_task.values())
    counting = st.tasks["object_counting"]
    truth = sorted(
        n for s in scenes.values() for n in __import__("collections").Counter(o.category for o in s.objects).values() if n >= 2
    )
    assert counting.n == len(truth) and counting.answers["max"] == max(truth) and counting.answers["min"] == min(truth)

    app = Typer()
    app.command()(stats_command)
    app.command("noop")(lambda: None)
    res = CliRunner().invoke(app, ["stats-command", str(out), "--json", str(tmp_path / "s.json")])
    assert res.exit_code == 0, res.output
    assert "object_counting" in res.output
    assert json.loads((tmp_path / "s.json").read_text())["total_questions"] == st.total_questions
    res = CliRunner().invoke(app, ["stats-command", str(tmp_path / "nothing")])
    assert res.exit_code == 2 and "no such build folder" in res.output
