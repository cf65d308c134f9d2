"""Command line of evaluation and reports (thin: the work is in scoring / baselines / stats /
visualize).

``eval_app`` is the ``vlm3r-eval`` Typer app (commands ``score`` and ``baseline``);
``stats_command`` and ``visualize_command`` are mounted on ``vlm3r-data`` as ``stats`` and
``visualize``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Optional, TypeVar

import typer
from rich.console import Console
from rich.table import Table

eval_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Score predictions and baselines on a QA benchmark.")
_err = Console(stderr=True)
T = TypeVar("T")

_BAD_INPUT = (FileNotFoundError, ValueError, KeyError, ImportError)


def guard(fn: Callable[[], T]) -> T:
    """Run ``fn``; bad input becomes a one-line red error and exit status 2."""
    try:
        return fn()
    except _BAD_INPUT as exc:
        _err.print(f"[red]error:[/] {exc.args[0] if exc.args else exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from exc


_MERGE_HELP = "vsibench (merge the 3 relative-direction variants), family (merge every variant family), none"


def _check_merge(merge: str) -> None:
    from vlm3r.pipelines.scoring import MERGE_MODES

    if merge not in MERGE_MODES:
        raise typer.BadParameter(f"choose one of {', '.join(MERGE_MODES)}", param_hint="--merge")


def results_table(reports: Mapping[str, object], title: str) -> Table:
    """One row per reported task, one score column per report (``scoring.EvalReport``), then
    overall; scores are x 100."""
    table = Table(title=title)
    table.add_column("task")
    table.add_column("metric")
    table.add_column("n", justify="right")
    for name in reports:
        table.add_column(name, justify="right")
    tasks: dict[str, tuple[str, int]] = {}
    for rep in reports.values():
        for t in rep.tasks.values():  # type: ignore[attr-defined]
            tasks.setdefault(t.task, (t.metric, t.n))
    for task, (metric, n) in tasks.items():
        cells = []
        for rep in reports.values():
            ts = rep.tasks.get(task)  # type: ignore[attr-defined]
            cells.append("-" if ts is None else f"{ts.score:.1f}")
        table.add_row(task, metric, str(n), *cells)
    first = next(iter(reports.values()))
    table.add_row("[bold]overall[/]", "mean", str(first.n_items), *(f"[bold]{r.overall:.1f}[/]" for r in reports.values()))  # type: ignore[attr-defined]
    return table


def _counts_line(report: object) -> str:
    r = report
    return (
        f"{r.n_items} questions: {r.n_missing} without a prediction (scored 0), {r.n_unparsed} unparsable numbers "  # type: ignore[attr-defined]
        f"(scored 0); {r.n_unknown} prediction ids not in the benchmark, {r.n_duplicates} duplicate prediction ids"  # type: ignore[attr-defined]
        f" (first kept); parser {r.parser}"  # type: ignore[attr-defined]
    )


@eval_app.command()
def score(
    benchmark: Annotated[Path, typer.Option(help="QA benchmark: .parquet, QA .jsonl, or a build folder")],
    predictions: Annotated[Path, typer.Option(help='JSON lines {"id": ..., "prediction": ...}')],
    out: Annotated[Optional[Path], typer.Option(help="folder for results.json, results.csv, scores.jsonl")] = None,
    parser: Annotated[str, typer.Option(help="vsibench (official first-token parsing) or robust")] = "vsibench",
    merge: Annotated[str, typer.Option(help=_MERGE_HELP)] = "vsibench",
) -> None:
    """Score predictions the VSI-Bench way: MRA for numeric tasks, letter accuracy for the rest."""
    from vlm3r.pipelines.scoring import PARSERS, evaluate, load_benchmark, load_predictions, write_results

    if parser not in PARSERS:
        raise typer.BadParameter(f"choose one of {', '.join(PARSERS)}", param_hint="--parser")
    _check_merge(merge)
    items = guard(lambda: load_benchmark(benchmark))
    preds = guard(lambda: load_predictions(predictions))
    report, scores = evaluate(items, preds, parser, merge)  # type: ignore[arg-type]
    Console().print(results_table({"score": report}, f"{predictions.name} on {benchmark.name}"))
    print(_counts_line(report))
    if out is not None:
        paths = write_results(report, scores, out, {"benchmark": str(benchmark), "predictions": str(predictions)})
        print(f"results: {paths['json']}  {paths['csv']}  per question: {paths['scores']}")


@eval_app.command()
def baseline(
    benchmark: Annotated[Path, typer.Option(help="QA benchmark: .parquet, QA .jsonl, or a build folder")],
    kind: Annotated[Optional[list[str]], typer.Option(help="random, frequency or blind (repeatable; default all three)")] = None,
    train: Annotated[Optional[Path], typer.Option(help="fit on this benchmark instead of a scene split of --benchmark")] = None,
    test_fraction: Annotated[float, typer.Option(min=0.01, max=0.99, help="share of scenes held out for testing")] = 0.5,
    seed: Annotated[int, typer.Option(help="seed of the scene split and of the random baseline")] = 0,
    split: Annotated[bool, typer.Option(help="--no-split: fit and score on the whole benchmark (VSI-Bench's chance level; optimistic for blind)")] = True,
    split_by: Annotated[str, typer.Option(help="scenes: a seeded scene split (--test-fraction, --seed); records: the records' split field (fit on train, score on the rest)")] = "scenes",
    out: Annotated[Optional[Path], typer.Option(help="folder: <kind>/results.json, results.csv, scores.jsonl, predictions.jsonl")] = None,
    merge: Annotated[str, typer.Option(help=_MERGE_HELP)] = "vsibench",
) -> None:
    """Chance and blind baselines, scored with the same scorer as model predictions."""
    from vlm3r.pipelines.baselines import BASELINES, run_baseline, split_by_record, split_by_scene
    from vlm3r.pipelines.scoring import PredictionSet, evaluate, load_benchmark, write_results

    _check_merge(merge)
    kinds = kind or list(BASELINES)
    for k in kinds:
        if k not in BASELINES:
            raise typer.BadParameter(f"{k!r}: choose from {', '.join(BASELINES)}", param_hint="--kind")
    items = guard(lambda: load_benchmark(benchmark))
    if train is not None:
        train_items, test_items = guard(lambda: load_benchmark(train)), items
        where = f"fit on {train.name}, scored on {benchmark.name}"
    elif split and split_by == "records":
        train_items, test_items = guard(lambda: split_by_record(items))
        where = f"records' split field: fit on {len(train_items)} train questions, scored on {len(test_items)} others"
    elif split:
        if split_by != "scenes":
            raise typer.BadParameter("choose scenes or records", param_hint="--split-by")
        train_items, test_items = split_by_scene(items, test_fraction, seed)
        n_train = len({(i.dataset, i.scene_name) for i in train_items})
        n_test = len({(i.dataset, i.scene_name) for i in test_items})
        where = f"scene split seed {seed}: fit on {n_train} scenes ({len(train_items)} q), scored on {n_test} scenes ({len(test_items)} q)"
    else:
        train_items, test_items = items, items
        where = f"fit and scored on all of {benchmark.name} (no split)"
    reports = {}
    notes: dict[str, dict[str, str]] = {}
    for k in kinds:
        run = guard(lambda k=k: run_baseline(k, train_items, test_items, seed))  # type: ignore[misc]
        report, scores = evaluate(test_items, PredictionSet(run.predictions), merge=merge)  # type: ignore[arg-type]
        report.notes = run.notes
        reports[k], notes[k] = report, run.notes
        if out is not None:
            d = Path(out) / k
            write_results(report, scores, d, {"baseline": k, "benchmark": str(benchmark), "setup": where})
            lines = [json.dumps({"id": i, "prediction": p}) for i, p in sorted(run.predictions.items())]
            (d / "predictions.jsonl").write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    Console().print(results_table(reports, f"baselines on {benchmark.name}"))
    print(where)
    for k, per_task in notes.items():
        for task, note in sorted(per_task.items()):
            if not note.startswith("[train"):  # constants, answers, fallbacks; the rest is in results.json
                print(f"  {k:9s} {task}: {note}")
    if out is not None:
        print(f"results: {Path(out)}/<kind>/results.json")


def stats_command(
    out: Annotated[Path, typer.Argument(help="build folder (the --out of vlm3r-data build)")],
    json_path: Annotated[Optional[Path], typer.Option("--json", help="also write the statistics as JSON here")] = None,
) -> None:
    """Per task counts, letter and answer distributions; per dataset scenes, objects and frames."""
    from vlm3r.pipelines.stats import build_stats

    st = guard(lambda: build_stats(out))
    con = Console()
    table = Table(title=f"questions per task in {out}")
    table.add_column("task", no_wrap=True)
    table.add_column("n", justify="right")
    table.add_column("scenes", justify="right")
    table.add_column("A/B/C/D", no_wrap=True)
    table.add_column("answers")
    group = None
    for t in st.tasks.values():
        if t.group != group:
            group = t.group
            table.add_row(f"[bold]{group}[/]", "", "", "", "")
        letters = "/".join(str(v) for v in t.letters.values()) if any(t.letters.values()) else "-"
        if not t.letters_balanced:
            letters = f"[red]{letters}[/]"
        table.add_row(f"  {t.task}", str(t.n), str(t.n_scenes), letters, _answers_summary(t.answers, t.numeric))
    table.add_row("[bold]total[/]", str(st.total_questions), str(len(st.per_scene)), "", "")
    con.print(table)
    for t in st.tasks.values():
        if not t.letters_balanced:
            groups = "; ".join(f"{k} options {'/'.join(str(v) for v in g.values())}" for k, g in t.letters_by_options.items())
            con.print(f"[red]unbalanced letters[/] {t.task}: {groups}", soft_wrap=True, highlight=False)
    ds_table = Table(title="datasets")
    for col in ("dataset", "scenes", "objects", "sampled frames", "questions", "top categories"):
        ds_table.add_column(col)
    for d in st.datasets.values():
        top = ", ".join(f"{c} {n}" for c, n in list(d.categories.items())[:6])
        ds_table.add_row(d.dataset, str(d.scenes), str(d.objects), str(d.frames), str(d.questions), top)
    con.print(ds_table)
    if json_path is not None:
        from vlm3r.pipelines.io import atomic_write_json

        atomic_write_json(json_path, st.to_json())
        print(f"statistics: {json_path}")


def _answers_summary(answers: Mapping[str, float | int], numeric: bool) -> str:
    if not answers:
        return "-"
    if numeric:
        return f"{answers['min']:g}-{answers['max']:g}, median {answers['median']:g}"
    return ", ".join(f"{k} {v}" for k, v in list(answers.items())[:3])


def visualize_command(
    out: Annotated[Path, typer.Argument(help="build folder (the --out of vlm3r-data build)")],
    dest: Annotated[Optional[Path], typer.Option(help="folder for the pictures (default OUT/figures)")] = None,
    scene: Annotated[Optional[list[str]], typer.Option(help="scene id or dataset/scene (repeatable; default: the first scene)")] = None,
    all_scenes: Annotated[bool, typer.Option(help="a top-down picture of every scene")] = False,
    question: Annotated[Optional[list[str]], typer.Option(help="a picture of this question id (repeatable)")] = None,
    variants: Annotated[bool, typer.Option(help="distribution figure: one wedge per question type, not per paper task")] = False,
    report: Annotated[bool, typer.Option(help="also write the self-contained report.html")] = True,
    results: Annotated[Optional[list[Path]], typer.Option(help="results.json files to include in the report (repeatable)")] = None,
) -> None:
    """PNG pictures of scenes (top-down), of the task distribution and of questions; HTML report."""
    from vlm3r.pipelines.stats import build_stats
    from vlm3r.pipelines import visualize as viz

    dest = dest or out / "figures"

    def run() -> list[Path]:
        st = build_stats(out)
        if all_scenes:
            scenes = viz.list_scenes(out)
        elif scene:
            scenes = [viz.find_scene(out, s) for s in scene]
        else:
            scenes = viz.list_scenes(out)[:1]
        records = viz.find_questions(out, question or [])
        figures = viz.render_build_figures(out, st, scenes, records, merge_variants=not variants)
        written = viz.write_figures(figures, dest)
        if report:
            res = {p.parent.name or p.name: json.loads(p.read_text(encoding="utf-8")) for p in results or []}
            written.append(viz.write_html_report(out, dest / "report.html", st, figures, res))
        return written

    for p in guard(run):
        print(p)
