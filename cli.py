"""Command-line entry points. Commands stay thin: the work is in library code."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

data_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Build spatial QA data from 3D scans.")
console = Console(stderr=True)


@data_app.command()
def build(
    dataset: Annotated[str, typer.Option(help="raw source to adapt: demo, or a name from `vlm3r-data datasets`")],
    out: Annotated[Path, typer.Option(help="output folder")],
    root: Annotated[Optional[Path], typer.Option(help="dataset root (ScanNet: the folder holding scans/)")] = None,
    scenes: Annotated[Optional[list[str]], typer.Option(help="only these scene ids (repeatable)")] = None,
    workers: Annotated[int, typer.Option(min=1, help="parallel processes (Ray: CPUs of the local instance)")] = 1,
    executor: Annotated[str, typer.Option(help="local (process pool) or ray")] = "local",
    ray_address: Annotated[Optional[str], typer.Option(help="--executor ray: address of a running cluster")] = None,
    seed: Annotated[int, typer.Option(help="global seed")] = 0,
    frames: Annotated[int, typer.Option(min=1, help="frames sampled per video")] = 32,
    tasks: Annotated[Optional[list[str]], typer.Option(help="only these tasks (repeatable)")] = None,
    video: Annotated[bool, typer.Option(help="also write an mp4 of the sampled frames")] = True,
    cap: Annotated[Optional[list[str]], typer.Option(help="TASK=N: at most N questions per scene (repeatable)")] = None,
    split_file: Annotated[Optional[list[str]], typer.Option(help="SPLIT=FILE of scene ids, e.g. val=scannetv2_val.txt")] = None,
    val_fraction: Annotated[float, typer.Option(min=0, max=1, help="seeded val share for unlisted scenes")] = 0.1,
    exclude_eval_scenes: Annotated[bool, typer.Option(help="keep VSI-Bench evaluation scenes out of training")] = True,
    benchmark: Annotated[Optional[str], typer.Option(help="also write a preset test set: vsti (VSTI-Bench Table 6 mix)")] = None,
    fps_subsample: Annotated[Optional[float], typer.Option(min=0.001, help="sample the valid frames at this rate (Hz) instead of --frames (training-scale exports)")] = None,
    layout: Annotated[str, typer.Option(help="--dataset demo: raw layout of the synthetic scans: scannet, scannetpp, arkitscenes")] = "scannet",
    demo_scenes: Annotated[int, typer.Option(min=1, help="--dataset demo: number of synthetic scenes")] = 6,
    demo_cache: Annotated[Optional[Path], typer.Option(help="--dataset demo: where the raw demo scans go")] = None,
) -> None:
    """Adapt every scene, then generate QA. Re-running skips finished scenes."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )
    from vlm3r.pipelines.build import BuildConfig
    from vlm3r.pipelines.eval_cli import guard
    from vlm3r.pipelines.build import build as run_build
    from vlm3r.scenes.base import AdapterConfig
    from vlm3r.scenes.registry import make_adapter

    if dataset == "demo":
        from vlm3r.pipelines.demo import DEMO_LAYOUTS, demo_adapter, ensure_demo_dataset

        if layout not in DEMO_LAYOUTS:
            raise typer.BadParameter(f"unknown layout {layout!r}; known: {', '.join(DEMO_LAYOUTS)}", param_hint="--layout")
        with console.status(f"synthesising demo scans in the {layout} layout (cached after the first run)..."):
            root = ensure_demo_dataset(demo_scenes, seed=seed, cache_dir=demo_cache, workers=workers, layout=layout)
        adapter = demo_adapter(root, layout)
    else:
        if root is None:
            raise typer.BadParameter(f"--root is required for --dataset {dataset}", param_hint="--root")
        try:
            adapter = make_adapter(dataset, root)
        except KeyError as exc:
            raise typer.BadParameter(exc.args[0], param_hint="--dataset") from exc
    config = BuildConfig(
        out=out,
        adapter=AdapterConfig(num_frames=frames, seed=seed, fps_subsample=fps_subsample),
        workers=workers,
        executor=executor,
        ray_address=ray_address,
        tasks=tuple(tasks) if tasks else None,
        caps={k: int(v) for k, v in _pairs(cap, "--cap")},
        split_lists={k: Path(v) for k, v in _pairs(split_file, "--split-file")} or None,
        val_fraction=val_fraction,
        exclude_eval_scenes=exclude_eval_scenes,
        benchmark=benchmark,
        write_video=video,
    )
    def run():  # noqa: ANN202
        with Progress(
            TextColumn("[bold]adapt"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("{task.description}"),
            console=console,
        ) as progress:
            bar = progress.add_task("", total=None)

            def on_result(res) -> None:  # noqa: ANN001
                progress.update(bar, advance=1, description=f"{res.scene_id} {res.status}")
                if res.status != "ok":
                    progress.console.print(f"[yellow]skipped[/] {res.scene_id}: {res.reason}")

            return run_build(adapter, config, scenes, on_result=on_result, on_start=lambda n: progress.update(bar, total=n))

    summary = guard(run)
    for sid, reason in summary.skipped.items():
        console.print(f"[yellow]skipped[/] {sid}: {reason}")
    import json

    qa = json.loads((out / "qa" / f"summary.{adapter.dataset}.json").read_text(encoding="utf-8"))
    table = Table(title="QA per task")
    for col in ("task", "records", "train", "letters A/B/C/D", "answers"):
        table.add_column(col, justify="right" if col in ("records", "train") else "left")
    for task_name, n in summary.qa_per_task.items():
        t = qa[task_name]
        letters = "/".join(str(t["letters"].get(k, 0)) for k in "ABCD")
        answers = ", ".join(f"{k}: {v}" for k, v in list(t["answer"].items())[:4])
        table.add_row(task_name, str(n), str(t["train_samples"]), letters, answers)
    console.print(table)
    print(summary.line())
    print(f"scene graphs: {out / 'scenes' / adapter.dataset}")
    print(f"QA shards:    {out / 'qa'}")


def _pairs(values: Optional[list[str]], flag: str) -> list[tuple[str, str]]:
    out = []
    for v in values or []:
        key, sep, val = v.partition("=")
        if not sep or not key or not val:
            raise typer.BadParameter(f"expected KEY=VALUE, got {v!r}", param_hint=flag)
        out.append((key, val))
    return out


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
) -> None:
    """Throughput per stage of a demo build and its peak memory (default); the adapter alone
    (--real-size); or the metadata-only task generators on a meta-info file (--meta)."""
    import os
    import resource

    from vlm3r.pipelines.bench import bench_adapter, bench_build, bench_tasks

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
    for label, row in bench_adapter(scenes, real_size, cache, tuple(layout or ("scannet",))).items():
        table.add_row(label, *(str(v) for v in row))
    Console().print(table)


from vlm3r.model.train_cli import features_command  # noqa: E402  (typer + rich only)
from vlm3r.pipelines.eval_cli import stats_command, visualize_command  # noqa: E402
from vlm3r.pipelines.routeplan import routeplan_command  # noqa: E402

data_app.command("stats")(stats_command)
data_app.command("visualize")(visualize_command)
data_app.command("routeplan")(routeplan_command)
data_app.command("features")(features_command)


def train_main() -> None:
    """``vlm3r-train``: LoRA training of VLM-3R on a build's conversations (model/train_cli.py)."""
    from vlm3r.model.train_cli import train_app

    train_app()


def eval_main() -> None:
    """``vlm3r-eval``: predict with a trained model, score predictions, chance and blind baselines."""
    from vlm3r.model.train_cli import predict_command
    from vlm3r.pipelines.eval_cli import eval_app

    eval_app.command("predict")(predict_command)
    eval_app()


if __name__ == "__main__":  # pragma: no cover
    data_app()
