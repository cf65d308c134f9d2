"""Every everyday mistake gets one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vlm3r.cli import data_app, eval_app, run_names, train_app

META = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "vsibench_meta_scannet_val.json"


def one_line_error(res, status: int = 2) -> str:
    """The error line of a command that failed cleanly (no exception other than the exit)."""
    assert res.exit_code == status, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    errors = [line for line in res.output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, res.output
    return errors[0]


@pytest.fixture
def meta_args(tmp_path):
    if not META.is_file():
        pytest.skip(f"{META} not available")
    return ["build", "--dataset", "vsibench-meta", "--root", str(META), "--tasks", "room_size_estimation"]


def test_build_argument_mistakes(meta_args, tmp_path):
    r = CliRunner()
    out = ["--out", str(tmp_path / "o")]
    assert "did you mean object_counting" in one_line_error(r.invoke(data_app, meta_args + out + ["--cap", "object_countin=3"]))
    assert "--cap room_size_estimation=abc: expected a whole number" in one_line_error(
        r.invoke(data_app, meta_args + out + ["--cap", "room_size_estimation=abc"]))
    missing = tmp_path / "val.txt"
    assert f"{missing}: no such split file" in one_line_error(r.invoke(data_app, meta_args + out + ["--split-file", f"val={missing}"]))
    a_file = tmp_path / "afile"
    a_file.write_text("x")
    assert "exists and is not a folder" in one_line_error(r.invoke(data_app, meta_args + ["--out", str(a_file)]))
    assert "cannot write here" in one_line_error(r.invoke(data_app, meta_args + ["--out", str(a_file / "sub")]))
    assert not (tmp_path / "o").exists()  # nothing was started for any of them


def test_dataset_and_root_mistakes(tmp_path):
    r = CliRunner()
    out = ["--out", str(tmp_path / "o")]
    # the dataset name is checked before --root is asked for
    assert "unknown dataset 'scanet'; did you mean scannet" in one_line_error(r.invoke(data_app, ["build", "--dataset", "scanet", *out]))
    assert "--root is required for --dataset scannet" in one_line_error(r.invoke(data_app, ["build", "--dataset", "scannet", *out]))
    nowhere = tmp_path / "nowhere"
    line = one_line_error(r.invoke(data_app, ["build", "--dataset", "scannetpp", "--root", str(nowhere), *out]))
    assert f"{nowhere}: root does not exist" in line


def test_a_build_that_builds_nothing_exits_non_zero(tmp_path):
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"scene0001_00": {"room_size": "big"}}))  # one malformed scene
    res = CliRunner().invoke(data_app, ["build", "--dataset", "vsibench-meta", "--root", str(meta), "--out", str(tmp_path / "o")])
    assert "no scene was built (1 skipped" in one_line_error(res, status=1)


def test_reading_mistakes(tmp_path):
    r = CliRunner()
    empty = tmp_path / "empty"
    empty.mkdir()
    for cmd in (["stats", str(empty)], ["visualize", str(empty)]):
        assert "not a build folder" in one_line_error(r.invoke(data_app, cmd))
    preds = tmp_path / "p.jsonl"
    preds.write_text("")
    bench = tmp_path / "b.jsonl"
    bench.write_text(json.dumps({"id": "q1", "dataset": "d", "scene_name": "s", "question_type": "object_counting",
                                 "question": "q", "ground_truth": "2", "task_version": 1}) + "\n")
    assert "no predictions in the file" in one_line_error(r.invoke(eval_app, ["score", "--benchmark", str(bench), "--predictions", str(preds)]))
    bad = tmp_path / "results.json"
    bad.write_text('{"tasks": {\n "a": 1,\n}\n')
    from vlm3r.cli import _read_json  # what visualize --results reads each file with

    with pytest.raises(ValueError, match=r"results\.json:3: not valid JSON"):
        _read_json(bad)
    assert "--device 'cude': choose cpu, cuda or cuda:N" in one_line_error(
        r.invoke(eval_app, ["predict", "--benchmark", str(bench), "--model", str(tmp_path), "--out", str(preds), "--device", "cude"]))


def test_report_columns_are_one_per_results_file(tmp_path):
    a, b = tmp_path / "runA" / "score" / "results.json", tmp_path / "runB" / "score" / "results.json"
    c = tmp_path / "other" / "results.json"
    assert list(run_names([a, b, c])) == ["runA/score", "runB/score", f"{tmp_path.name}/other"]
    assert list(run_names([c])) == ["other"]
    assert len(run_names([a, a])) == 2


def test_train_mistakes_are_refused_before_the_heavy_imports(tmp_path):
    code = ("import sys\nfrom vlm3r.cli import main\n"
            "try:\n    main(['train', '--data', sys.argv[1], '--preset', 'papr'])\n"
            "except SystemExit as e:\n    print('EXIT', e.code, 'transformers' in sys.modules, 'torch' in sys.modules)\n")
    res = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert "EXIT 2 False False" in res.stdout, res.stdout + res.stderr
    assert "unknown preset 'papr'; choose from paper, tiny" in res.stderr


def test_help_and_version():
    r = CliRunner()
    for app in (data_app, eval_app):
        res = r.invoke(app, ["--version"])
        assert res.exit_code == 0 and res.output.startswith("vlm3r ")
        assert r.invoke(app, ["-h"]).exit_code == 0
    assert r.invoke(train_app, ["--version"]).output.startswith("vlm3r ")
    # nothing cut on an 80-column terminal: every option name and help text in full
    text = r.invoke(train_app, ["-h"], terminal_width=80).output
    assert "--overwrite" in text and "(default runs/vlm3r-PRESET)" in text and "…" not in text
    text = r.invoke(data_app, ["build", "-h"], terminal_width=80).output
    for name in ("--answerable-min-area", "--exclude-eval-scenes / --no-exclude-eval-scenes", "--preset", "vsibench-meta"):
        assert name in text, name
    assert "…" not in text and "vlm3r-data datasets" not in text


def test_a_full_disk_or_a_read_only_out_is_one_line(meta_args, tmp_path, monkeypatch):
    import errno

    import vlm3r.pipelines.build as build_module
    import vlm3r.pipelines.exports as exports

    def full(folder, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(folder))

    monkeypatch.setattr(exports, "write_shards", full)
    res = CliRunner().invoke(data_app, meta_args + ["--out", str(tmp_path / "o")])
    assert "No space left on device" in one_line_error(res)
    monkeypatch.undo()

    def read_only(self, data):
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(build_module.Path, "write_bytes", read_only)
    res = CliRunner().invoke(data_app, meta_args + ["--out", str(tmp_path / "ro")])
    assert "cannot write here (Permission denied)" in one_line_error(res)


def test_long_steps_report_counted_progress_and_the_summary_is_the_command_wall_time(meta_args, tmp_path):
    import time

    from vlm3r.pipelines.build import BuildConfig, build
    from vlm3r.scenes.registry import make_adapter

    adapter = make_adapter("vsibench-meta", META)
    ids = adapter.list_scenes()[:4]
    adapted, qa = [], []
    started = time.perf_counter() - 100.0  # the command began 100 s ago (e.g. demo synthesis)
    summary = build(adapter, BuildConfig(out=tmp_path / "o", tasks=("room_size_estimation", "object_counting")), ids,
                    on_result=lambda r: adapted.append(r.scene_id), on_qa=lambda d, t: qa.append((d, t)), started=started)
    assert sorted(adapted) == sorted(ids)
    assert qa[-1] == (4 + 2, 4 + 2) and [d for d, _ in qa] == list(range(1, 7))  # 4 scenes, then 2 task exports
    assert summary.seconds >= 100.0  # the whole command, not just the build call


def test_figures_and_demo_synthesis_report_progress(tmp_path):
    from vlm3r.pipelines.report.visualize import render_build_figures
    from vlm3r.scenes.demo.dataset import ensure_demo_dataset
    from vlm3r.scenes.demo.synthetic import SyntheticConfig

    calls = []
    cfg = SyntheticConfig(n_frames=8, width=48, height=36, mesh_resolution=0.2, n_objects=(4, 5))
    root = ensure_demo_dataset(2, cache_dir=tmp_path / "cache", config=cfg, on_progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 2), (2, 2)]
    calls.clear()
    ensure_demo_dataset(2, cache_dir=tmp_path / "cache", config=cfg, on_progress=lambda d, t: calls.append((d, t)))
    assert calls == []  # cached: nothing to do
    from vlm3r.pipelines.build import BuildConfig, build
    from vlm3r.scenes.demo.dataset import demo_adapter

    out = tmp_path / "out"
    build(demo_adapter(root), BuildConfig(out=out, tasks=("room_size_estimation",), write_video=False))
    figs = render_build_figures(out, scenes=[("demo", "demo0000_00")], on_progress=lambda d, t: calls.append((d, t)))
    assert calls == [(1, 2), (2, 2)] and len(figs) == 2


def test_outputs_people_make_are_ignored_by_git():
    ignored = (Path(__file__).resolve().parents[1] / ".gitignore").read_text().split()
    assert "runs/" in ignored and "demo_out/" in ignored
