"""Checks a training run passes before anything heavy is loaded, and the rules of its run folder.

``preflight`` (cheap: no model, no data read beyond listing shards) names every missing thing at
once: data folders without training shards, missing model / checkpoint / tokenizer paths, and for
the ``paper`` preset a CUDA GPU with enough memory and the real weights (random 7B weights are never
what anyone wants to train).

``prepare_run_folder`` keeps runs apart: a new run refuses a non-empty ``output_dir`` unless told
to ``overwrite`` it (and then only a folder that is a vlm3r run); ``resume`` continues only a run
made with the same configuration, checked by the fingerprint stored in ``run_config.json``.
Only the main process (``RANK`` 0) deletes or writes; the others only look up the checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

TrainConfig = Any  # a model.train.TrainConfig (not imported: train imports this module)

RUN_CONFIG_FILE = "run_config.json"
RUN_MARKERS = (RUN_CONFIG_FILE, "train_summary.json", "vlm3r_config.json")
PAPER_MIN_GPU_GB = 40.0
"""GPU memory the paper preset needs at least (bf16 7B weights ~16 GB, fp32 LoRA/fusion/projector
masters with AdamW state ~6 GB, activations of a 32-frame sample with checkpointing a few GB)."""


class RunFolderError(ValueError):
    """The output folder does not fit the request (new run into an old one, resume of another run)."""


def _main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def run_identity(config: TrainConfig) -> dict[str, Any]:
    """What makes two runs the same run (resume only within one): data, model, recipe and seed;
    not where it is saved, how often it logs or checkpoints, or how data is loaded."""
    settings = asdict(config.settings())
    for operational in ("logging_steps", "save_steps"):
        settings.pop(operational)

    def path(p: Path | None) -> str | None:
        return None if p is None else os.path.abspath(p)

    return {
        "preset": config.preset, "settings": settings, "max_steps": config.max_steps, "seed": config.seed,
        "data": [path(d) for d in config.data], "tasks": None if config.tasks is None else list(config.tasks),
        "source_weights": dict(sorted(config.source_weights.items())), "base_model_dir": path(config.base_model_dir),
        "spatial_checkpoint": path(config.spatial_checkpoint), "tokenizer_dir": path(config.tokenizer_dir),
        "feature_cache": path(config.feature_cache), "require_cache": config.require_cache,
        "num_frames": config.num_frames, "max_length": config.max_length, "bf16": config.bf16,
        "deepspeed": config.deepspeed,
    }  # fmt: skip


def fingerprint(identity: dict[str, Any]) -> str:
    return hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def last_checkpoint(folder: Path) -> Path | None:
    """The ``checkpoint-<step>`` folder of ``folder`` with the highest step."""
    steps = [(int(m.group(1)), p) for p in folder.glob("checkpoint-*") if p.is_dir() and (m := re.fullmatch(r"checkpoint-(\d+)", p.name))]
    return max(steps)[1] if steps else None


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    keys = sorted(set(old) | set(new))
    out = []
    for k in keys:
        if isinstance(old.get(k), dict) and isinstance(new.get(k), dict):
            out += [f"{k}.{s}" for s in _differences(old[k], new[k])]
        elif old.get(k) != new.get(k):
            out.append(k)
    return out


def prepare_run_folder(config: TrainConfig, overwrite: bool = False) -> Path | None:
    """Apply the run-folder rules (module docstring) and record this run's identity; returns the
    checkpoint to resume from (None for a new run). Raises ``RunFolderError`` with one line."""
    out = Path(config.output_dir)
    identity = run_identity(config)
    record = out / RUN_CONFIG_FILE
    if config.resume:
        checkpoint = last_checkpoint(out) if config.resume is True else Path(config.resume)
        if checkpoint is None:
            raise FileNotFoundError(f"{out}: no checkpoint-* folder to resume from")
        if not checkpoint.is_dir():
            raise FileNotFoundError(f"{checkpoint}: no such checkpoint folder")
        owner = record if config.resume is True else checkpoint.parent / RUN_CONFIG_FILE
        try:
            old = json.loads(owner.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            raise RunFolderError(f"{owner}: missing or unreadable, so the checkpoint's configuration is unknown; "
                                 "start a new run (a new --output-dir)") from None
        if old.get("fingerprint") != fingerprint(identity):
            what = ", ".join(_differences(old.get("identity", {}), identity)) or "unknown fields"
            raise RunFolderError(f"{checkpoint}: made with another configuration (differs in {what}); resume with "
                                 "the same options, or start a new run in a new --output-dir")
        return checkpoint
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"{out}: exists and is not a folder")
    if _main_process() and out.is_dir() and any(out.iterdir()):
        is_run = any((out / m).exists() for m in RUN_MARKERS) or last_checkpoint(out) is not None
        if not overwrite:
            hint = "pass --resume to continue it or --overwrite to replace it" if is_run else "choose an empty --output-dir"
            raise RunFolderError(f"{out}: not empty ({'a previous run' if is_run else 'not a vlm3r run'}); {hint}")
        if not is_run:
            raise RunFolderError(f"{out}: not empty and not a vlm3r run folder; --overwrite only replaces runs")
        shutil.rmtree(out)
    if _main_process():
        out.mkdir(parents=True, exist_ok=True)
        record.write_text(json.dumps({"fingerprint": fingerprint(identity), "identity": identity}, indent=1) + "\n")
    return None


def preflight(config: TrainConfig) -> None:
    """Everything a run needs that can be checked without loading it; raises one ``ValueError``
    (or ``FileNotFoundError``) naming every problem found."""
    from vlm3r.schemas.io import train_shard_files

    config.settings()  # an unknown preset
    problems: list[str] = []
    if not config.data:
        problems.append("no --data folder given")
    for d in config.data:
        try:
            train_shard_files(Path(d), config.tasks)
        except (FileNotFoundError, ValueError) as exc:
            raise type(exc)(str(exc)) from None  # data first: the rest depends on it
    for flag, p in (("--base-model", config.base_model_dir), ("--spatial-checkpoint", config.spatial_checkpoint),
                    ("--tokenizer", config.tokenizer_dir)):  # fmt: skip
        if p is not None and not Path(p).exists():
            problems.append(f"{flag} {p}: does not exist")
    if config.require_cache and config.feature_cache is not None and not Path(config.feature_cache).is_dir():
        problems.append(f"--feature-cache {config.feature_cache}: no such folder (run `vlm3r-data features` first)")
    if config.preset == "paper":
        problems += paper_requirements(config)
    if problems:
        raise ValueError("; ".join(problems))


def paper_requirements(config: TrainConfig) -> list[str]:
    """What the paper preset lacks here: real weights, a CUDA GPU, ``PAPER_MIN_GPU_GB`` of its memory."""
    missing = []
    if config.base_model_dir is None:
        missing.append("--preset paper needs --base-model (a local LLaVA-Video-7B-Qwen2 folder); random 7B weights are not trained")
    if config.spatial_checkpoint is None and not config.require_cache:
        missing.append("--preset paper needs --spatial-checkpoint (cut3r_512_dpt_4_64.pth) or --require-cache")
    import torch

    if not torch.cuda.is_available():
        missing.append("--preset paper needs a CUDA GPU (none found; the tiny preset runs on a CPU)")
    else:
        total = torch.cuda.get_device_properties(0).total_memory / 2**30
        if total < PAPER_MIN_GPU_GB:
            missing.append(f"--preset paper needs a GPU with at least {PAPER_MIN_GPU_GB:.0f} GiB (this one has {total:.0f} GiB)")
    return missing
