"""Baselines: scene split, random chance, the exact best constant, frequency answers, a blind model
that finds planted leaks and stays at chance without them, and tables on a small real build."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from vlm3r.pipelines.eval.baselines import (
    best_constant,
    split_by_record,
    fit_blind,
    fit_frequency,
    random_predictions,
    run_baseline,
    split_by_scene,
)
from vlm3r.cli import eval_app
from vlm3r.pipelines.eval.scoring import BenchItem, PredictionSet, evaluate, load_benchmark, mean_relative_accuracy

LETTERS = "ABCD"


def mc_item(i, texts, correct, qtype="object_rel_direction_medium", question="where is it?", scene=None):
    """A multiple-choice item whose options are ``texts`` with the correct one at index ``correct``."""
    return BenchItem(
        id=f"{qtype}-{i}", question_type=qtype, answer=LETTERS[correct], question=question,
        options=tuple(f"{LETTERS[k]}. {t}" for k, t in enumerate(texts)), dataset="demo",
        scene_name=scene or f"scene{i % 20:02d}",
    )


def test_split_by_scene_is_disjoint_complete_and_seeded():
    items = [mc_item(i, ["a", "b"], 0) for i in range(100)]
    train, test = split_by_scene(items, 0.3, seed=5)
    tr, te = {i.scene_name for i in train}, {i.scene_name for i in test}
    assert not tr & te and len(tr | te) == 20 and len(te) == 6
    assert len(train) + len(test) == 100
    again = split_by_scene(items, 0.3, seed=5)
    assert [i.id for i in again[1]] == [i.id for i in test]
    assert {i.scene_name for i in split_by_scene(items, 0.3, seed=6)[1]} != te
    with pytest.raises(ValueError):
        split_by_scene(items, 1.0)


def test_split_by_record_uses_the_split_field():
    items = [BenchItem(f"q{i}", "object_counting", 2.0, scene_name=f"s{i}", split=["train", "val", "test", ""][i % 4]) for i in range(8)]
    train, test = split_by_record(items)
    assert [i.id for i in train] == ["q0", "q4"] and [i.id for i in test] == ["q1", "q2", "q5", "q6"]
    with pytest.raises(ValueError, match="splits found: train"):
        split_by_record([i for i in items if i.split == "train"])


def test_random_baseline_is_uniform_and_per_question():
    items = [mc_item(i, ["a", "b", "c", "d"], i % 4) for i in range(4000)]
    preds = random_predictions(items, seed=1)
    counts = np.array([sum(p == c for p in preds.values()) for c in LETTERS])
    assert counts.sum() == 4000 and np.all(np.abs(counts - 1000) < 120)  # ~ 5 sigma
    report, _ = evaluate(items, PredictionSet(preds))
    assert report.overall == pytest.approx(25.0, abs=2.5)
    assert random_predictions(items[:10], seed=1) == {k: preds[k] for k in list(preds)[:10]}
    two = [mc_item(i, ["x", "y"], 0) for i in range(200)]
    assert set(random_predictions(two).values()) == {"A", "B"}


def test_random_numeric_picks_an_option_value():
    it = BenchItem("n", "object_counting", 4.0, options=("A. 2", "B. 4", "C. 6", "D. 7"), scene_name="s")
    assert random_predictions([it])["n"] in {"2", "4", "6", "7"}
    assert random_predictions([BenchItem("m", "object_counting", 4.0, scene_name="s")]) == {}


def brute_best(g):
    """Best mean MRA over a dense grid plus every interval end and midpoint between ends."""
    half = np.abs(g)[:, None] * (1 - np.linspace(0.5, 0.95, 10))[None, :]
    ends = np.sort(np.concatenate([(g[:, None] - half).ravel(), (g[:, None] + half).ravel(), g]))
    cands = np.concatenate([ends, 0.5 * (ends[1:] + ends[:-1]), np.linspace(0, g.max() * 2, 2000)])
    return max(float(np.mean(mean_relative_accuracy(c, g))) for c in cands)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_best_constant_is_optimal(seed):
    rng = np.random.default_rng(seed)
    g = np.round(rng.lognormal(0.5, 0.6, 25), 1)
    c, mra = best_constant(g)
    assert mra == pytest.approx(float(np.mean(mean_relative_accuracy(c, g))))
    assert mra >= brute_best(g) - 1e-12


def test_best_constant_by_hand():
    c, mra = best_constant([10.0])
    assert mra == 1.0 and abs(c - 10.0) / 10 <= 0.05
    c, mra = best_constant([2.0, 2.0, 2.0, 100.0])  # the three equal answers win
    assert mra == pytest.approx(0.75) and abs(c - 2.0) <= 0.1
    assert best_constant([0.0, 0.0, 5.0]) == (0.0, pytest.approx(2 / 3))


def test_frequency_answers_the_most_frequent_text():
    train = [mc_item(i, ["left", "right", "back"], 0) for i in range(6)] + [mc_item(9, ["right", "left", "back"], 0)]
    test = [mc_item(20, ["back", "right", "left"], 2), mc_item(21, ["up", "down"], 1, scene="x")]
    model = fit_frequency(train)
    preds = model.predict(test)
    assert preds[test[0].id] == "C"  # "left" sits at C here
    assert preds[test[1].id] == "A"  # no "left": the most frequent correct letter in train (A)
    num_train = [BenchItem(f"n{i}", "object_counting", v, scene_name="s") for i, v in enumerate([2, 2, 2, 3, 9])]
    model = fit_frequency(num_train)
    c = model.constants["object_counting"]
    assert 1.9 - 1e-9 <= c <= 2.1 + 1e-9  # all three 2s fully right (2.1 also earns the 3 a threshold)
    assert float(np.mean(mean_relative_accuracy(c, np.array([2, 2, 2, 3, 9.0])))) == pytest.approx(brute_best(np.array([2, 2, 2, 3, 9.0])))
    assert "constant" in model.describe()["object_counting"]


def test_frequency_constant_is_written_at_full_precision():
    """The written prediction parses back to exactly the optimal constant (rounding it to 6 digits
    can move it off the optimum's plateau)."""
    answers = [1.234567891, 1.234567891, 7.0, 0.3333333333]
    items = [BenchItem(f"d{i}", "object_abs_distance", v, scene_name="s") for i, v in enumerate(answers)]
    model = fit_frequency(items)
    c = model.constants["object_abs_distance"]
    preds = model.predict(items)
    assert {float(p) for p in preds.values()} == {c}
    assert float(np.mean(mean_relative_accuracy(float(preds["d0"]), np.array(answers)))) == pytest.approx(brute_best(np.array(answers)))


def leaky_benchmark(n=240, seed=0):
    """Three planted situations:
    object_size_estimation: the answer is fixed by the category named in the question (a leak);
    camera_movement_direction: the correct option is always the second smallest of four numbers (a leak);
    object_rel_direction_hard: the correct option is random (no leak)."""
    rng = np.random.default_rng(seed)
    sizes = {"bed": 200.0, "chair": 80.0, "lamp": 40.0, "table": 150.0}
    items = []
    for i in range(n):
        cat, scene = list(sizes)[i % 4], f"sc{(i // 4) % 12}"  # every scene holds every category
        items.append(BenchItem(f"s{i}", "object_size_estimation", sizes[cat] * rng.uniform(0.97, 1.03),
                               question=f"What is the length of the longest dimension of the {cat}?", scene_name=scene, dataset="demo"))
        vals = np.sort(rng.choice(np.arange(1, 60), 5, replace=False)).astype(float)[:4]
        k_med = 1  # always the second smallest of the four
        order = rng.permutation(4)
        texts = [f"{vals[j]:g} m" for j in order]
        items.append(mc_item(i, texts, int(np.where(order == k_med)[0][0]), qtype="camera_movement_direction",
                             question="how far?", scene=scene))
        items.append(mc_item(i, ["front-left", "front-right", "back-left", "back-right"], int(rng.integers(4)),
                             qtype="object_rel_direction_hard", question="which quadrant?", scene=scene))
    return items


def test_blind_finds_planted_leaks_and_nothing_else():
    items = leaky_benchmark()
    train, test = split_by_scene(items, 0.5, seed=0)
    scores = {}
    for kind in ("random", "frequency", "blind"):
        run = run_baseline(kind, train, test, seed=0)
        report, _ = evaluate(test, PredictionSet(run.predictions))
        scores[kind] = {t: ts.score for t, ts in report.tasks.items()}
    assert scores["blind"]["object_size_estimation"] > 90.0  # category -> size
    assert scores["frequency"]["object_size_estimation"] < 50.0
    assert scores["blind"]["camera_movement_direction"] > 80.0  # second-smallest option
    assert scores["random"]["camera_movement_direction"] < 40.0
    assert scores["blind"]["object_rel_direction"] < 40.0  # random answers stay near 25
    model = fit_blind(train)
    assert set(model.numeric) == {"object_size_estimation"} and set(model.mc) == {"camera_movement_direction", "object_rel_direction_hard"}


def test_blind_falls_back_for_tasks_missing_in_train():
    train = [mc_item(i, ["a", "b"], 0, qtype="obj_appearance_order") for i in range(10)]
    test = [mc_item(100 + i, ["p", "q", "r"], 1, qtype="object_rel_distance") for i in range(5)]
    run = run_baseline("blind", train, test)
    assert set(run.predictions) == {it.id for it in test}
    assert "fallback" in run.notes["object_rel_distance"]


# ---------------------------------------------------------------- on a small real build


@pytest.fixture(scope="module")
def small_build(scannet_root, tmp_path_factory):
    from vlm3r.pipelines.build import BuildConfig, build
    from vlm3r.scenes.base import AdapterConfig
    from vlm3r.scenes.scannet import ScanNetAdapter

    root, _ = scannet_root
    out = tmp_path_factory.mktemp("eval_build")
    build(ScanNetAdapter(root), BuildConfig(out=out, adapter=AdapterConfig(num_frames=8), write_video=False, answerable=False))
    return out


def test_baseline_tables_on_a_build(small_build, tmp_path):
    items = load_benchmark(small_build)
    assert items and "object_counting" in {i.question_type for i in items}
    res = CliRunner().invoke(eval_app, ["baseline", "--benchmark", str(small_build), "--out", str(tmp_path), "--test-fraction", "0.34"])
    assert res.exit_code == 0, res.output
    for kind in ("random", "frequency", "blind"):
        data = json.loads((tmp_path / kind / "results.json").read_text())
        assert "object_counting" in data["tasks"] and 0.0 <= data["overall"] <= 100.0
        assert data["n_missing"] == 0  # every test question answered
        assert (tmp_path / kind / "results.csv").read_text().startswith("task,metric,n,missing,score")
        preds = [json.loads(x) for x in (tmp_path / kind / "predictions.jsonl").read_text().splitlines()]
        assert len(preds) == data["n_items"]
    assert "constant" in res.output and "overall" in res.output
    res = CliRunner().invoke(eval_app, ["baseline", "--benchmark", str(small_build), "--kind", "psychic"])
    assert res.exit_code != 0


def test_the_builds_parquet_loads_like_its_jsonl(small_build):
    pytest.importorskip("pyarrow")
    parquet = sorted((small_build / "qa").glob("*/*.parquet"))
    assert parquet, "the build writes qa/<task>/<dataset>.parquet"
    checked = 0
    for p in parquet:
        shards = sorted(p.parent.glob("*.jsonl"))
        if not any(f.stat().st_size for f in shards):
            continue  # a task without questions in this small build
        assert {i.id: i for i in load_benchmark(p)} == {i.id: i for i in load_benchmark(p.parent)}
        checked += 1
    assert checked >= 3
