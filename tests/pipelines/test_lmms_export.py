"""Benchmark files as the official task code reads them: one row schema that ``datasets`` loads
for whole folders, VSI-Bench and VSTI-Bench row formats scored by the official functions (lmms-eval
0.7.3's ``vsibench`` task; VLM-3R's ``vstibench`` task when VLM3R_REPO points at a checkout), and the
``export-lmms-eval`` folder loaded by lmms-eval's own task registry."""

from __future__ import annotations

import importlib.util
import json
import os
import random
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vlm3r.cli import data_app, eval_app
from vlm3r.pipelines.eval.lmms_tasks import vstibench_aggregate_results, vstibench_doc_to_text, vstibench_process_results
from vlm3r.pipelines.eval.scoring import PredictionSet, evaluate, load_benchmark, parse_number_lmms_eval
from vlm3r.pipelines.lmms_export import export_lmms_eval
from vlm3r.schemas.conversation import HUMAN_PREFIX, conversation
from vlm3r.schemas.io import read_qa_records
from vlm3r.schemas.rows import BENCHMARK_QUESTION_TYPES, ROW_FORMATS

DEFAULT_KWARGS = {"pre_prompt": "", "mca_post_prompt": "Answer with the option's letter from the given choices directly.",
                  "na_post_prompt": "Please answer the question using a single word or phrase."}


@pytest.fixture(scope="module")
def bench_build(scannet_root, tmp_path_factory):
    """Three scans (the seeded split puts scenes on both sides), both benchmarks, videos written."""
    from vlm3r.pipelines.build import BuildConfig, build
    from vlm3r.scenes.base import AdapterConfig
    from vlm3r.scenes.scannet import ScanNetAdapter

    root, _ = scannet_root
    out = tmp_path_factory.mktemp("bench_build")
    cfg = BuildConfig(out=out, adapter=AdapterConfig(num_frames=16), val_fraction=0.5, benchmarks=("vsibench", "vsti"), answerable=False)
    build(ScanNetAdapter(root), cfg)
    return out


def rows(path: Path) -> list[dict]:
    return [json.loads(x) for f in sorted(path.glob("*.jsonl")) for x in f.read_text().splitlines()]


def perfect(row: dict) -> str:
    """A perfect answer: the letter for multiple choice, the number for numeric questions."""
    return row.get("mc_answer") or row["ground_truth"]


def noisy_predictions(rows_: list[dict], seed: int = 0) -> dict[str, str]:
    """Answers right, wrong, malformed and wordy, as a model writes them."""
    rng = random.Random(seed)
    out = {}
    for r in rows_:
        gt = r.get("mc_answer") or r["ground_truth"]
        if r["options"]:
            pick = rng.choice(["A", "B", "C", "D", gt, f"{gt}.", f"{gt}. yes", f"({gt})", "", "the answer is B"])
        else:
            v = float(gt) * rng.choice([0.5, 0.8, 0.95, 1.0, 1.3, 2.0])
            pick = rng.choice([f"{v:g}", f"{v:.1f}m", f"about {v:.2f} meters", "three", "twenty-one chairs", "none", ""])
        out[str(r["id"])] = pick
    return out


# ------------------------------------------------------------------ one schema, loadable everywhere


def test_every_file_has_its_format_columns_and_types(bench_build):
    import pyarrow.parquet as pq

    for folder, fmt in [(bench_build / "benchmark/vsibench", "vsibench"), (bench_build / "benchmark/vsti", "vstibench")] + [
        (d, "qa") for d in sorted((bench_build / "qa").iterdir()) if d.is_dir()
    ]:
        for line in rows(folder):
            assert list(line) == list(ROW_FORMATS[fmt]), folder
            assert isinstance(line["ground_truth"], str)
        for f in folder.glob("*.parquet"):
            assert pq.read_schema(f).names == list(ROW_FORMATS[fmt])
    for d in (bench_build / "qa").iterdir():  # a task without questions writes no data files
        if d.is_dir() and json.loads((d / "scannet.done.json").read_text())["records"] == 0:
            assert not list(d.glob("*.jsonl")) and not list(d.glob("*.parquet"))


def test_datasets_loads_whole_folders_jsonl_and_parquet(bench_build, tmp_path):
    datasets = pytest.importorskip("datasets")
    from vlm3r.pipelines.dataset_card import hf_features

    datasets.disable_progress_bars()
    cache = str(tmp_path / "hf")
    n_qa = sum(len(rows(d)) for d in (bench_build / "qa").iterdir() if d.is_dir())
    n_vsi, n_vsti = len(rows(bench_build / "benchmark/vsibench")), len(rows(bench_build / "benchmark/vsti"))
    n_train = sum(len(rows(d)) for d in (bench_build / "train").iterdir())
    # through the build's dataset card: JSONL with the card's fixed features
    for config, split, n in [("qa", "records", n_qa), ("benchmark_vsibench", "test", n_vsi), ("benchmark_vsti", "test", n_vsti),
                             ("train", "train", n_train), ("object_counting", "records", len(rows(bench_build / "qa/object_counting")))]:
        ds = datasets.load_dataset(str(bench_build), config, split=split, cache_dir=cache)
        assert len(ds) == n > 0, config
    qa = datasets.load_dataset(str(bench_build), "qa", split="records", cache_dir=cache)
    assert qa.features == hf_features("qa")
    # Parquet needs no card; JSONL by pattern takes the same features
    for pattern, n, fmt in [("qa/*/*.parquet", n_qa, "qa"), ("benchmark/vsibench/*.parquet", n_vsi, "vsibench"),
                            ("benchmark/vsti/*.parquet", n_vsti, "vstibench")]:
        ds = datasets.load_dataset("parquet", data_files=str(bench_build / pattern), split="train", cache_dir=cache)
        assert len(ds) == n and ds.features == hf_features(fmt), pattern
        js = datasets.load_dataset("json", data_files=str(bench_build / pattern.replace(".parquet", ".jsonl")),
                                   features=hf_features(fmt), split="train", cache_dir=cache)
        assert js.to_list() == ds.to_list(), pattern


def test_qa_rows_read_back_to_the_same_records(bench_build):
    from vlm3r.schemas.rows import qa_row

    records = read_qa_records(bench_build)
    assert all(qa_row(r) == row for r, row in zip(records, (x for d in sorted((bench_build / "qa").iterdir()) if d.is_dir()
                                                             for x in rows(d))))
    counts = [r for r in records if r.question_type == "object_counting"]
    assert counts and all(isinstance(r.ground_truth, int) for r in counts)


# ------------------------------------------------------------------ the benchmarks' own row formats


def test_vsibench_rows_are_vsibench_rows(bench_build):
    bench = rows(bench_build / "benchmark/vsibench")
    assert {r["question_type"] for r in bench} <= set(BENCHMARK_QUESTION_TYPES["vsibench"])
    assert not {r["question_type"] for r in bench} & {"object_rel_distance_2", "object_rel_distance_3"}
    assert len({r["id"] for r in bench}) == len(bench) and all(isinstance(r["id"], int) for r in bench)
    qa = {r.id: r for r in read_qa_records(bench_build)}
    for r in bench:
        rec = qa[r["qa_id"]]
        if rec.is_numeric:
            assert r["options"] is None and float(r["ground_truth"]) == float(rec.ground_truth)
        else:
            assert r["ground_truth"] == rec.mc_answer and r["ground_truth"] in "ABCD"
            assert r["options"]["ABCD".index(r["ground_truth"])].endswith(r["answer_text"])
            assert r["answer_text"] == rec.ground_truth


def test_vsti_rows_are_vstibench_rows(bench_build):
    bench = rows(bench_build / "benchmark/vsti")
    assert bench and {r["question_type"] for r in bench} <= set(BENCHMARK_QUESTION_TYPES["vstibench"])
    for r in bench:
        assert r["video_path"] == f"{r['dataset']}/{r['scene_name']}.mp4"
        if r["options"]:
            assert r["mc_answer"] in "ABCD" and r["options"]["ABCD".index(r["mc_answer"])].endswith(r["ground_truth"])
        else:
            float(r["ground_truth"])


# ------------------------------------------------------------------ lmms-eval 0.7.3's vsibench task


@pytest.fixture(scope="module")
def official_vsi():
    return pytest.importorskip("lmms_eval.tasks.vsibench.utils")


def official_vsi_scores(mod, bench: list[dict], preds: dict[str, str]) -> dict[str, float]:
    docs = [mod.vsibench_process_results(dict(r), [preds[str(r["id"])]])["vsibench_overall"] for r in bench]
    return mod._compute_all_subscores(docs)


def test_perfect_letters_score_100_under_official_vsibench(bench_build, official_vsi):
    bench = rows(bench_build / "benchmark/vsibench")
    docs = [official_vsi.vsibench_process_results(dict(r), [perfect(r)])["vsibench_overall"] for r in bench]
    assert official_vsi.vsibench_aggregate_overall(docs) == 1.0
    report, _ = evaluate(load_benchmark(bench_build / "benchmark/vsibench"),
                         PredictionSet({str(r["id"]): perfect(r) for r in bench}))
    assert report.overall == 100.0


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lmms_eval_protocol_equals_official_vsibench_scores(bench_build, official_vsi, seed):
    bench = rows(bench_build / "benchmark/vsibench")
    preds = noisy_predictions(bench, seed)
    official = official_vsi_scores(official_vsi, bench, preds)
    report, _ = evaluate(load_benchmark(bench_build / "benchmark/vsibench"), PredictionSet(preds), parser="lmms-eval")
    ours = {name: t.score / 100 for name, t in report.tasks.items()}
    assert set(ours) == {k.rsplit("_accuracy", 1)[0].rsplit("_MRA", 1)[0] for k in official if k != "overall"}
    for key, value in official.items():
        name = "overall" if key == "overall" else key.rsplit("_accuracy", 1)[0].rsplit("_MRA", 1)[0]
        assert (report.overall / 100 if name == "overall" else ours[name]) == pytest.approx(value, abs=1e-12), key
    default, _ = evaluate(load_benchmark(bench_build / "benchmark/vsibench"), PredictionSet(preds))
    assert default.overall != report.overall  # the two protocols differ on wordy numeric answers


def test_lmms_eval_number_parser_equals_extract_number(official_vsi):
    rng = random.Random(0)
    words = ["three", "twenty", "one", "hundred", "and", "thousand", "chairs", "about", "-", "3", "4.5", "-2", "1,200",
             "1e3", "m", "roughly", "Seven", "ninety-nine", ".5", "", "  ", "twelve", "zero", "a", "10cm"]
    for _ in range(3000):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(0, 6)))
        assert parse_number_lmms_eval(text) == official_vsi.extract_number(text), text


def test_official_vsibench_prompt_is_our_training_prompt(bench_build, official_vsi):
    qa = {r.id: r for r in read_qa_records(bench_build)}
    for r in rows(bench_build / "benchmark/vsibench"):
        human = conversation(qa[r["qa_id"]])["conversations"][0]["value"]
        assert HUMAN_PREFIX.startswith("<image>\n") and human.startswith("<image>\n")
        assert official_vsi.vsibench_doc_to_text(r, DEFAULT_KWARGS) == human[len("<image>\n"):]


# ------------------------------------------------------------------ VSTI-Bench: VLM-3R's own task code


def test_vstibench_functions_give_our_prompt_and_scores(bench_build):
    bench = rows(bench_build / "benchmark/vsti")
    qa = {r.id: r for r in read_qa_records(bench_build)}
    for r in bench:
        assert vstibench_doc_to_text(r, DEFAULT_KWARGS) == conversation(qa[r["id"]])["conversations"][0]["value"][len("<image>\n"):]
    perfect_docs = [vstibench_process_results(r, [perfect(r)])["vstibench_score"] for r in bench]
    assert vstibench_aggregate_results(perfect_docs) == 100.0
    preds = noisy_predictions(bench, 3)
    docs = [vstibench_process_results(r, [preds[r["id"]]])["vstibench_score"] for r in bench]
    report, _ = evaluate(load_benchmark(bench_build / "benchmark/vsti"), PredictionSet(preds), merge="none")
    assert vstibench_aggregate_results(docs) == pytest.approx(report.overall, abs=1e-9)


def official_vsti_module():
    """VLM-3R's ``vstibench/utils.py`` from a checkout named by VLM3R_REPO (skips without one)."""
    repo = os.environ.get("VLM3R_REPO")
    path = Path(repo or "/nonexistent") / "thinking-in-space/lmms_eval/tasks/vstibench/utils.py"
    if not path.is_file():
        pytest.skip("set VLM3R_REPO to a VITA-Group/VLM-3R checkout to compare with its vstibench task")
    spec = importlib.util.spec_from_file_location("vlm3r_official_vstibench", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("seed", [0, 1])
def test_official_vstibench_scores_our_rows(bench_build, seed):
    mod = official_vsti_module()
    bench = rows(bench_build / "benchmark/vsti")
    for r in bench:
        assert mod.vsibench_doc_to_text(r, DEFAULT_KWARGS) == vstibench_doc_to_text(r, DEFAULT_KWARGS)
    docs = [mod.vsibench_process_results(dict(r), [perfect(r)])["vsibench_score"] for r in bench]
    assert mod.vsibench_aggregate_results(docs) == 100.0
    preds = noisy_predictions(bench, seed)
    docs = [mod.vsibench_process_results(dict(r), [preds[r["id"]]])["vsibench_score"] for r in bench]
    report, _ = evaluate(load_benchmark(bench_build / "benchmark/vsti"), PredictionSet(preds), merge="none")
    assert mod.vsibench_aggregate_results(docs) == pytest.approx(report.overall, abs=1e-9)


# ------------------------------------------------------------------ export-lmms-eval


def test_export_folder_runs_in_lmms_eval_task_registry(bench_build, tmp_path, monkeypatch):
    pytest.importorskip("lmms_eval.tasks.vsibench.utils")
    from lmms_eval.tasks import TaskManager, get_task_dict

    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    to = tmp_path / "lmms"
    res = CliRunner().invoke(data_app, ["export-lmms-eval", str(bench_build), "--to", str(to)])
    assert res.exit_code == 0, res.output
    assert "--include_path" in (to / "README.md").read_text()
    tasks = get_task_dict(["vlm3r_vsibench", "vlm3r_vstibench"], TaskManager(include_path=str(to / "tasks")))
    expected = {"vlm3r_vsibench": rows(bench_build / "benchmark/vsibench"), "vlm3r_vstibench": rows(bench_build / "benchmark/vsti")}
    for name, task in tasks.items():
        docs = list(task.test_docs())
        assert len(docs) == len(expected[name]) > 0
        for d in docs:
            (video,) = task.doc_to_visual(d)
            assert Path(video).is_file() and Path(video).resolve().name == "video.mp4"
            assert Path(video).relative_to(to).as_posix() in (f"vsibench/{d['dataset']}/{d['scene_name']}.mp4",
                                                              f"vstibench/{d['video_path']}")
        results = [task.process_results(d, [perfect(d)]) for d in docs]
        for metric, aggregate in task.aggregation().items():
            value = aggregate([r[metric] for r in results])
            present = {d["question_type"].rsplit("_", 1)[0] if "direction" in d["question_type"] else d["question_type"]
                       for d in docs}
            if metric.rsplit("_", 1)[0] not in present | {"vsibench", "vstibench"}:
                assert value == 0.0  # the official aggregation reports 0 for a type with no questions
                continue
            assert value in (1.0, 100.0), (name, metric, value)


def test_export_refuses_what_it_cannot_use(bench_build, tmp_path, make_meta_scene):
    with pytest.raises(FileNotFoundError, match="no benchmark/ folder"):
        export_lmms_eval(tmp_path / "nothing", tmp_path / "x")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        export_lmms_eval(bench_build, foreign)
    assert (foreign / "keep.txt").read_text() == "mine"
    report = export_lmms_eval(bench_build, tmp_path / "again")
    assert export_lmms_eval(bench_build, tmp_path / "again").rows == report.rows  # an earlier export is replaced


def test_score_cli_protocol_option(bench_build, tmp_path):
    bench = rows(bench_build / "benchmark/vsibench")
    preds = tmp_path / "p.jsonl"
    preds.write_text("".join(json.dumps({"id": r["id"], "prediction": f"about {r['ground_truth']}" if not r["options"]
                                         else perfect(r)}) + "\n" for r in bench))
    outs = {}
    for protocol in ("vsibench", "lmms-eval"):
        res = CliRunner().invoke(eval_app, ["score", "--benchmark", str(bench_build / "benchmark/vsibench"),
                                            "--predictions", str(preds), "--protocol", protocol, "--out", str(tmp_path / protocol)])
        assert res.exit_code == 0, res.output
        outs[protocol] = json.loads((tmp_path / protocol / "results.json").read_text())["overall"]
    assert outs["lmms-eval"] == 100.0 > outs["vsibench"]
