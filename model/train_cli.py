"""Command line of training, prediction and feature precomputation (thin: the work is in
:mod:`.train`, :mod:`.predict`, :mod:`.features`).

* ``train_app`` - the ``vlm3r-train`` Typer app (one command); also ``python -m vlm3r.model.train_cli``,
  which is what ``torchrun -m`` / ``accelerate launch -m`` start on every GPU;
* ``predict_command`` - mounted on ``vlm3r-eval`` as ``predict``;
* ``features_command`` - mounted on ``vlm3r-data`` as ``features``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from vlm3r.pipelines.eval_cli import guard

_err = Console(stderr=True)

train_app = typer.Typer(
    add_completion=False, help="Train VLM-3R (LoRA + fusion + projector) on the shards of `vlm3r-data build` outputs."
)


def _weights(values: Optional[list[str]]) -> dict[str, float]:
    out: dict[str, float] = {}
    for v in values or []:
        name, sep, w = v.partition("=")
        try:
            if not sep or not name:
                raise ValueError
            out[name] = float(w)
        except ValueError:
            raise typer.BadParameter(f"expected SOURCE=WEIGHT, got {v!r}", param_hint="--weight") from None
    return out


@train_app.command()
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
    resume: Annotated[bool, typer.Option(help="resume from the last checkpoint in --output-dir")] = False,
    resume_from: Annotated[Optional[Path], typer.Option(help="resume from this checkpoint folder")] = None,
    deepspeed: Annotated[
        Optional[str], typer.Option(help="zero2 (the shipped ZeRO-2 config) or a DeepSpeed JSON file")
    ] = None,
    workers: Annotated[int, typer.Option(min=0, help="data loader worker processes")] = 0,
    progress: Annotated[bool, typer.Option(help="progress bar (else one log line per logging step)")] = True,
) -> None:
    """Train on the training shards of one or more builds; saves LoRA + fusion + projector weights."""
    from .train import TrainConfig
    from .train import train as run_train

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
        deepspeed=deepspeed,
        workers=workers,
        progress=progress,
    )
    result = guard(lambda: run_train(config))
    import os

    if int(os.environ.get("RANK", "0")) == 0:
        for line in result.lines():
            typer.echo(line)


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
    from .predict import predict

    summary = guard(
        lambda: predict(
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
        )  # fmt: skip
    )
    typer.echo(summary.line())


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
    dtype: Annotated[str, typer.Option(help="CUT3R compute dtype: float32, bfloat16 or float16")] = "float32",
) -> None:
    """Precompute the CUT3R token cache for every video of a build (resumable: cached videos are skipped)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from .features import precompute_features

    with Progress(
        TextColumn("[bold]CUT3R"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=_err
    ) as bar:
        task = bar.add_task("", total=None)
        summary = guard(
            lambda: precompute_features(
                data,
                spatial_checkpoint,
                cache_dir=cache,
                preset=preset,
                num_frames=frames,
                device=device,
                dtype=dtype,
                on_video=lambda done, total: bar.update(task, completed=done, total=total),
            )  # fmt: skip
        )
    typer.echo(summary.line())


if __name__ == "__main__":  # pragma: no cover - `torchrun -m vlm3r.model.train_cli ...`
    train_app()
