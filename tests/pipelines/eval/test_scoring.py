"""Scorer: hand-computed MRA and accuracy, the official parser's behaviour, the robust parser,
aggregation with merged relative-direction variants, id bookkeeping, file formats and the CLI."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from vlm3r.cli import eval_app
from vlm3r.pipelines.eval.scoring import (
    MRA_THRESHOLDS,
    BenchItem,
    PredictionSet,
    evaluate,
    item_from_record,
    load_benchmark,
    load_predictions,
    mean_relative_accuracy,
    parse_letter_robust,
    parse_number_robust,
    score_items,
    summarize,
    vsibench_token,
    write_results,
)
from vlm3r.schemas.qa import NUMERIC_TASKS, QARecord


def official_mra(pred: float, target: float) -> float:
    """The official lmms-eval VSI-Bench formula, written out independently."""
    conf = np.linspace(0.5, 0.95, int((0.95 - 0.5) / 0.05 + 2))
    return float((abs(pred - target) / target <= 1 - conf).mean())


def num(id_, gt, qtype="object_abs_distance", scene="s1", ds="demo") -> BenchItem:
    return BenchItem(id=id_, question_type=qtype, answer=float(gt), dataset=ds, scene_name=scene)


def mc(id_, letter, qtype="object_rel_distance", options=("A. chair", "B. table", "C. bed", "D. sofa"), scene="s1", ds="demo"):
    return BenchItem(id=id_, question_type=qtype, answer=letter, options=tuple(options), dataset=ds, scene_name=scene)


# ---------------------------------------------------------------- thresholds and MRA by hand


def test_thresholds_are_the_official_ten():
    assert len(MRA_THRESHOLDS) == 10
    assert np.array_equal(np.array(MRA_THRESHOLDS), np.linspace(0.5, 0.95, 10))
    assert np.allclose(MRA_THRESHOLDS, [0.50 + 0.05 * k for k in range(10)], atol=1e-15)


@pytest.mark.parametrize(
    "pred, gt, expected",
    [
        (9, 10, 0.9),  # error 0.1 <= 1 - theta for theta 0.50 .. 0.90: nine of ten
        (11, 10, 0.9),
        (10, 10, 1.0),
        (5, 10, 0.1),  # error 0.5: only theta = 0.50
        (15, 10, 0.1),
        (4.9, 10, 0.0),
        (8, 10, 0.6),  # error 0.2: official float64 quirk, 1 - 0.8 = 0.19999999999999996 < 0.2
        (7.9, 10, 0.6),  # error 0.21: theta 0.50 .. 0.75
        (2.7, 3.0, 0.9),
        (-10, 10, 0.0),
        (float("nan"), 10, 0.0),
        (float("inf"), 10, 0.0),
    ],
)
def test_mra_hand_computed(pred, gt, expected):
    assert float(mean_relative_accuracy(pred, gt)) == pytest.approx(expected, abs=1e-12)


def test_mra_matches_the_official_formula_on_many_values():
    rng = np.random.default_rng(3)
    gt = np.round(rng.uniform(0.2, 10.0, 400), 1)
    pred = np.concatenate([np.round(gt[:200] * rng.uniform(0.3, 1.8, 200), 1), np.round(gt[200:] * (1 + rng.choice([-0.5, -0.45, -0.1, 0.05, 0.2, 0.35], 200)), 2)])
    ours = mean_relative_accuracy(pred, gt)
    assert ours.shape == (400,)
    assert np.array_equal(ours, [official_mra(p, g) for p, g in zip(pred, gt)])


def test_ground_truth_zero_rule():
    # exact 0 -> 1.0, anything else -> 0.0; no division by zero warning or error
    with np.errstate(all="raise"):
        out = mean_relative_accuracy(np.array([0.0, 0.01, -0.01, 5.0]), np.zeros(4))
    assert out.tolist() == [1.0, 0.0, 0.0, 0.0]
    items = [num("z", 0.0)]
    assert score_items(items, {"z": "0"})[0].score == 1.0
    assert score_items(items, {"z": "0.1"})[0].score == 0.0


# ---------------------------------------------------------------- parsing


def test_vsibench_token_is_the_official_fuzzy_matching():
    assert vsibench_token("A.") == "A"
    assert vsibench_token("3.5 meters") == "3.5"
    assert vsibench_token("12...") == "12"
    assert vsibench_token(" A") == ""  # split on a single space: a leading space leaves an empty token


def test_letters_default_parser():
    items = [mc("q", "A")]
    for text, expected in [("A.", 1.0), ("a", 1.0), ("A", 1.0), ("A. chair", 1.0), ("(A)", 0.0), ("B", 0.0), ("Answer: A", 0.0), ("", 0.0)]:
        assert score_items(items, {"q": text})[0].score == expected, text


def test_robust_parser_reads_free_text_letters():
    items = [mc("q", "B")]
    for text in ["(B)", "B)", "[B]", "b", "Answer: B", "The answer is (B).", "**B**", "option B", "table", "B: table"]:
        assert score_items(items, {"q": text}, parser="robust")[0].score == 1.0, text
    for text in ["(A)", "chair", "I am not sure", "Answer: A"]:
        assert score_items(items, {"q": text}, parser="robust")[0].score == 0.0, text
    assert parse_letter_robust("sofa", ("A. chair", "B. sofa")) == "B"


def test_numbers_default_parser_rejects_units():
    items = [num("d", 3.5)]
    s = score_items(items, {"d": "3.5m"})[0]
    assert (s.score, s.status, s.parsed) == (0.0, "unparsed", None)
    assert score_items(items, {"d": "3.5 m"})[0].score == 1.0  # first token "3.5"
    assert score_items(items, {"d": "3.5."})[0].score == 1.0


@pytest.mark.parametrize(
    "text, qtype, expected",
    [
        ("3.5m", "object_abs_distance", 3.5),
        ("350 cm", "object_abs_distance", 3.5),
        ("about 1.2 meters", "camera_displacement", 1.2),
        ("1.5 m", "object_size_estimation", 150.0),  # size answers are in centimetres
        ("80cm", "object_size_estimation", 80.0),
        ("The room is 20 square meters.", "room_size_estimation", 20.0),
        ("three", "object_counting", 3.0),
        ("twenty-one chairs", "object_counting", 21.0),
        ("There are 4 chairs", "object_counting", 4.0),
        ("Answer: 1,200", "object_size_estimation", 1200.0),
        ("no idea", "object_counting", None),
    ],
)
def test_robust_numbers(text, qtype, expected):
    assert parse_number_robust(text, qtype) == (pytest.approx(expected) if expected is not None else None)


def test_robust_numbers_score_with_mra():
    items = [num("d", 3.5), num("s", 150.0, "object_size_estimation")]
    scores = score_items(items, {"d": "3.5m", "s": "1.5 m"}, parser="robust")
    assert [s.score for s in scores] == [1.0, 1.0]


# ---------------------------------------------------------------- aggregation


def hand_benchmark() -> list[BenchItem]:
    return [
        num("c1", 10, "object_counting"),
        num("c2", 4, "object_counting"),
        num("d1", 2.0, "object_abs_distance"),
        mc("e1", "A", "object_rel_direction_easy"),
        mc("e2", "B", "object_rel_direction_easy"),
        mc("e3", "A", "object_rel_direction_easy"),
        mc("m1", "C", "object_rel_direction_medium"),
        mc("h1", "D", "object_rel_direction_hard"),
        mc("o1", "D", "obj_appearance_order"),
        mc("o2", "A", "obj_appearance_order"),
    ]


def test_aggregation_by_hand():
    preds = {
        "c1": "9",  # 0.9
        "c2": "4",  # 1.0 -> counting 95.0
        "d1": "1.0",  # error 0.5 -> 0.1 -> 10.0
        "e1": "A", "e2": "b", "e3": "A.",  # easy 100
        "m1": "A",  # medium 0
        "h1": "C",  # hard 0 -> rel direction (100 + 0 + 0) / 3, not the pooled 3/5
        "o1": "D",  # o2 missing -> 50
        "zzz": "A",
    }
    report, scores = evaluate(hand_benchmark(), PredictionSet(preds, duplicates=["c1"]))
    t = report.tasks
    assert set(t) == {"object_counting", "object_abs_distance", "object_rel_direction", "obj_appearance_order"}
    assert t["object_counting"].score == pytest.approx(95.0)
    assert t["object_abs_distance"].score == pytest.approx(10.0)
    assert t["object_rel_direction"].score == pytest.approx(100.0 / 3)
    assert t["object_rel_direction"].parts == pytest.approx(
        {"object_rel_direction_easy": 100.0, "object_rel_direction_medium": 0.0, "object_rel_direction_hard": 0.0}
    )
    assert t["object_rel_direction"].n == 5 and t["object_rel_direction"].metric == "accuracy"
    assert t["obj_appearance_order"].score == pytest.approx(50.0) and t["obj_appearance_order"].missing == 1
    assert report.overall == pytest.approx((95.0 + 10.0 + 100.0 / 3 + 50.0) / 4)
    assert (report.n_items, report.n_missing, report.n_unknown, report.n_duplicates) == (10, 1, 1, 1)
    assert {s.id: s.status for s in scores}["o2"] == "missing"


def test_all_missing_scores_zero_and_per_dataset():
    items = [num("a", 2.0, ds="x"), mc("b", "A", ds="y")]
    report, _ = evaluate(items, PredictionSet({"b": "A"}))
    assert report.overall == pytest.approx(50.0)
    assert report.per_dataset == {"x": 0.0, "y": 100.0}


def test_numeric_task_set_is_the_vsibench_and_vsti_numeric_tasks():
    assert NUMERIC_TASKS == {
        "object_counting", "object_size_estimation", "room_size_estimation", "object_abs_distance",
        "camera_obj_abs_dist", "camera_displacement",
    }


# ---------------------------------------------------------------- files


def records() -> list[QARecord]:
    return [
        QARecord(id="n1", dataset="demo", scene_name="s1", question_type="object_counting", question="How many chair(s)?",
                 options=["A. 2", "B. 3", "C. 4", "D. 5"], ground_truth=3, mc_answer="B", task_version=1),
        QARecord(id="m1", dataset="demo", scene_name="s1", question_type="object_rel_distance", question="closest?",
                 options=["A. bed", "B. sofa", "C. tv"], ground_truth="sofa", mc_answer="B", task_version=1),
    ]


def bench_file(tmp_path):
    """``records()`` as a QA JSONL benchmark file."""
    bench = tmp_path / "bench.jsonl"
    bench.write_text("".join(r.model_dump_json() + "\n" for r in records()))
    return bench


def test_load_jsonl_build_folder_and_parquet(tmp_path):
    shard = tmp_path / "qa" / "object_counting" / "demo-00000.jsonl"
    shard.parent.mkdir(parents=True)
    shard.write_text("".join(r.model_dump_json() + "\n" for r in records()))
    (shard.parent / "demo.done.json").write_text('{"shards": 1}')  # the build's completion marker
    from_file = load_benchmark(shard)
    from_dir = load_benchmark(tmp_path)
    assert from_file == from_dir
    assert from_file[0].answer == 3.0 and from_file[1].answer == "B" and from_file[1].options[1] == "B. sofa"

    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    pq = tmp_path / "bench.parquet"
    frame = pd.DataFrame([r.model_dump() for r in records()]).drop(columns=["extra"])
    frame["ground_truth"] = frame["ground_truth"].astype(str)  # a Parquet column has one type
    frame.to_parquet(pq)
    assert load_benchmark(pq) == from_file
    # the original VSI-Bench layout: integer ids, the letter in ground_truth, no mc_answer column
    vsi = tmp_path / "vsi.parquet"
    pd.DataFrame([
        {"id": 7, "dataset": "scannet", "scene_name": "s", "question_type": "object_rel_distance", "question": "q",
         "options": ["A. x", "B. y"], "ground_truth": "B"},
        {"id": 8, "dataset": "scannet", "scene_name": "s", "question_type": "room_size_estimation", "question": "q",
         "options": None, "ground_truth": "21.5"},
    ]).to_parquet(vsi)
    items = load_benchmark(vsi)
    assert [(i.id, i.answer) for i in items] == [("7", "B"), ("8", 21.5)]


def test_bad_inputs_name_the_file(tmp_path):
    bad = tmp_path / "bench.jsonl"
    bad.write_text(json.dumps({"id": "x", "question_type": "object_counting", "ground_truth": "many"}) + "\n")
    with pytest.raises(ValueError, match=r"bench\.jsonl:1: x: numeric task"):
        load_benchmark(bad)
    dup = tmp_path / "dup.jsonl"
    dup.write_text("".join(r.model_dump_json() + "\n" for r in records() + records()))
    with pytest.raises(ValueError, match="duplicate question ids"):
        load_benchmark(dup)
    preds = tmp_path / "p.jsonl"
    preds.write_text('{"id": "a", "prediction": "A"}\n{"id": "b"}\n')
    with pytest.raises(ValueError, match=r"p\.jsonl:2: .*'prediction'"):
        load_predictions(preds)
    preds.write_text('{"id": "a", "prediction": "A"}\nnot json\n')
    with pytest.raises(ValueError, match=r"p\.jsonl:2: not valid JSON"):
        load_predictions(preds)


def test_predictions_duplicates_keep_first(tmp_path):
    p = tmp_path / "p.jsonl"
    p.write_text('{"id": 1, "prediction": 3}\n{"id": "1", "prediction": "9"}\n{"id": "2", "prediction": null}\n')
    ps = load_predictions(p)
    assert ps.predictions == {"1": "3", "2": ""} and ps.duplicates == ["1"]


def test_item_from_record_requires_a_letter_for_mc():
    r = records()[1].model_dump() | {"mc_answer": None, "ground_truth": "sofa"}
    with pytest.raises(ValueError, match="no answer letter"):
        item_from_record(r, "here")


def test_write_results(tmp_path):
    items = [item_from_record(r) for r in records()]
    report, scores = evaluate(items, PredictionSet({"n1": "3", "m1": "C"}))
    paths = write_results(report, scores, tmp_path / "res")
    data = json.loads(paths["json"].read_text())
    assert data["overall"] == pytest.approx(50.0)
    assert data["tasks"]["object_counting"]["score"] == pytest.approx(100.0)
    csv = paths["csv"].read_text().splitlines()
    assert csv[0] == "task,metric,n,missing,score" and csv[-1].startswith("overall,mean,2,0,50.0")
    lines = [json.loads(x) for x in paths["scores"].read_text().splitlines()]
    assert [(x["id"], x["score"]) for x in lines] == [("n1", 1.0), ("m1", 0.0)]
    assert summarize(scores).overall == report.overall


def test_cli_score(tmp_path):
    bench = bench_file(tmp_path)
    preds = tmp_path / "preds.jsonl"
    preds.write_text('{"id": "n1", "prediction": "2.7"}\n{"id": "m1", "prediction": "(B)"}\n{"id": "zz", "prediction": "A"}\n')
    runner = CliRunner()
    res = runner.invoke(eval_app, ["score", "--benchmark", str(bench), "--predictions", str(preds), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert "1 prediction ids not in the benchmark" in res.output
    data = json.loads((tmp_path / "o" / "results.json").read_text())
    assert data["overall"] == pytest.approx((90.0 + 0.0) / 2)  # 2.7 vs 3 -> 0.9; "(B)" fails by default
    res = runner.invoke(eval_app, ["score", "--benchmark", str(bench), "--predictions", str(preds), "--out", str(tmp_path / "r"), "--parser", "robust"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "r" / "results.json").read_text())["overall"] == pytest.approx(95.0)
    res = runner.invoke(eval_app, ["score", "--benchmark", str(tmp_path / "missing.jsonl"), "--predictions", str(preds)])
    assert res.exit_code == 2


def test_merge_modes():
    items = [
        mc("r4", "A", "object_rel_distance"), mc("r3a", "A", "object_rel_distance_3"), mc("r3b", "A", "object_rel_distance_3"),
        mc("e", "A", "object_rel_direction_easy"), mc("h", "A", "object_rel_direction_hard"),
    ]
    preds = PredictionSet({"r4": "A", "r3a": "A", "r3b": "B", "e": "A", "h": "B"})
    vsi, _ = evaluate(items, preds)
    assert set(vsi.tasks) == {"object_rel_distance", "object_rel_distance_3", "object_rel_direction"}
    assert vsi.tasks["object_rel_direction"].score == pytest.approx(50.0)
    fam, _ = evaluate(items, preds, merge="family")
    assert set(fam.tasks) == {"object_rel_distance", "object_rel_direction"}
    assert fam.tasks["object_rel_distance"].score == pytest.approx((100.0 + 50.0) / 2)  # variant means averaged
    assert fam.overall == pytest.approx((75.0 + 50.0) / 2)
    none, _ = evaluate(items, preds, merge="none")
    assert len(none.tasks) == 4 and none.merge == "none"
    with pytest.raises(ValueError, match="merge mode"):
        evaluate(items, preds, merge="bogus")


def test_cli_score_names_missing_unknown_and_duplicate_ids(tmp_path):
    bench = bench_file(tmp_path)
    preds = tmp_path / "preds.jsonl"
    preds.write_text('{"id": "n1", "prediction": "3"}\n{"id": "n1", "prediction": "4"}\n{"id": "zz", "prediction": "A"}\n')
    res = CliRunner().invoke(eval_app, ["score", "--benchmark", str(bench), "--predictions", str(preds), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert "missing ids, first 1: m1" in res.output
    assert "unknown ids, first 1: zz" in res.output and "duplicate ids, first 1: n1" in res.output
    data = json.loads((tmp_path / "o" / "results.json").read_text())
    assert data["id_examples"] == {"missing": ["m1"], "unknown": ["zz"], "duplicate": ["n1"]}


def test_cli_score_fails_when_no_prediction_matches(tmp_path):
    bench = bench_file(tmp_path)
    preds = tmp_path / "preds.jsonl"
    preds.write_text('{"id": "other-1", "prediction": "3"}\n{"id": "other-2", "prediction": "B"}\n')
    res = CliRunner().invoke(eval_app, ["score", "--benchmark", str(bench), "--predictions", str(preds), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    flat = " ".join(res.output.split())
    assert "none of its 2 prediction ids is a question of" in flat and "other-1" in flat
    assert not (tmp_path / "o").exists()
