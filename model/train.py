"""Training VLM-3R on the shards of one or more builds, on transformers' ``Trainer``.

Everything a training run needs at scale comes from transformers / accelerate: bf16 autocast,
gradient accumulation, the cosine schedule with linear warmup, checkpoints (``checkpoint-<step>/``
under the output folder) and exact resume (model trainables, optimizer, scheduler, RNG, data
position), multi-GPU through ``torchrun`` / ``accelerate launch`` (DDP) and DeepSpeed ZeRO-2
(``deepspeed="zero2"``, the config file shipped in ``vlm3r/model/configs/zero2.json``; DeepSpeed
itself is an optional install).

What is VLM-3R specific lives here: building the model (:func:`vlm3r.model.vlm.build_vlm3r`, LoRA +
fusion + projector trainable), the data (:mod:`vlm3r.model.data`), saving in the format of
:func:`vlm3r.model.saved.save_trained` (every checkpoint and the final folder hold only the trainable
weights, plus the tokenizer) and loading those weights back on resume.

Presets (``TRAIN_PRESETS``): ``paper`` - the paper's recipe (lr 2e-5, cosine, warmup 0.03, 1 epoch,
batch 1 per device x 8 accumulation, LoRA r=128 / alpha=256, bf16 where the GPU has it, activation
checkpointing); ``tiny`` - the tiny model on a CPU in seconds (lr 5e-3, batch 2, 4 frames).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

from .config import ModelConfig, get_config

log = logging.getLogger("vlm3r.train")

ZERO2_CONFIG = Path(__file__).resolve().parent / "configs" / "zero2.json"
SUMMARY_FILE = "train_summary.json"


@dataclass(frozen=True)
class TrainPreset:
    """Optimisation defaults of a preset (each overridable on the command line)."""

    learning_rate: float
    epochs: float
    batch_size: int  # per device
    grad_accum: int
    warmup_ratio: float
    gradient_checkpointing: bool
    logging_steps: int
    save_steps: int
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0


TRAIN_PRESETS: dict[str, TrainPreset] = {
    "paper": TrainPreset(
        learning_rate=2e-5, epochs=1.0, batch_size=1, grad_accum=8, warmup_ratio=0.03,
        gradient_checkpointing=True, logging_steps=10, save_steps=500,
    ),
    "tiny": TrainPreset(
        learning_rate=5e-3, epochs=1.0, batch_size=2, grad_accum=1, warmup_ratio=0.03,
        gradient_checkpointing=False, logging_steps=1, save_steps=500,
    ),
}  # fmt: skip


@dataclass
class TrainConfig:
    """One training run. ``None`` fields take the preset's value (see ``TRAIN_PRESETS``).

    data: build output folders (each with ``train/<task>/<source>-<k>.jsonl``).
    source_weights: sampling weight per source (adapter name), see :func:`vlm3r.model.data.mix_samples`.
    base_model_dir / spatial_checkpoint: local LLaVA-OneVision folder and CUT3R checkpoint; ``None``
        = seeded random weights (tests, benchmarks).
    feature_cache: CUT3R token cache folder (default ``<first data folder>/features`` when it exists);
        ``require_cache`` trains without a CUT3R encoder in memory and skips uncached samples.
    resume: ``True`` = the last ``checkpoint-*`` in ``output_dir``, or a checkpoint folder; only a
        run of the same configuration resumes, and a new run refuses a non-empty ``output_dir``
        unless ``overwrite`` (see :mod:`vlm3r.model.preflight`).
    deepspeed: ``"zero2"`` (the shipped ZeRO-2 config) or a DeepSpeed JSON file.
    bf16: ``None`` = on when a CUDA GPU supports it.
    """

    data: Sequence[Path]
    output_dir: Path
    preset: str = "tiny"
    tasks: Sequence[str] | None = None
    source_weights: dict[str, float] = field(default_factory=dict)
    base_model_dir: Path | None = None
    spatial_checkpoint: Path | None = None
    tokenizer_dir: Path | None = None
    feature_cache: Path | None = None
    require_cache: bool = False
    num_frames: int | None = None
    max_length: int | None = None
    max_steps: int = -1
    epochs: float | None = None
    learning_rate: float | None = None
    batch_size: int | None = None
    grad_accum: int | None = None
    warmup_ratio: float | None = None
    weight_decay: float | None = None
    gradient_checkpointing: bool | None = None
    bf16: bool | None = None
    logging_steps: int | None = None
    save_steps: int | None = None
    save_total_limit: int | None = None
    seed: int = 0
    resume: bool | Path = False
    overwrite: bool = False  # replace an existing run in output_dir (see model.preflight)
    deepspeed: str | None = None
    workers: int = 0
    progress: bool = True

    def settings(self) -> TrainPreset:
        """The preset with this run's overrides applied."""
        if self.preset not in TRAIN_PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose from {', '.join(TRAIN_PRESETS)}")
        base = TRAIN_PRESETS[self.preset]
        overrides = {
            k: getattr(self, k)
            for k in ("learning_rate", "epochs", "batch_size", "grad_accum", "warmup_ratio", "weight_decay",
                      "gradient_checkpointing", "logging_steps", "save_steps")
            if getattr(self, k) is not None
        }  # fmt: skip
        return replace(base, **overrides)


@dataclass
class TrainResult:
    """What a run did. Losses are the logged training losses (token-mean cross-entropy) by step."""

    output_dir: str
    steps: int
    samples: int
    skipped: dict[str, int]
    losses: list[tuple[int, float]]
    train_loss: float
    runtime_s: float
    samples_per_second: float
    trainable_parameters: int
    resumed_from: str | None = None

    def lines(self) -> list[str]:
        first = self.losses[0][1] if self.losses else float("nan")
        last = self.losses[-1][1] if self.losses else float("nan")
        skipped = sum(self.skipped.values())
        return [
            f"steps {self.steps} over {self.samples} samples ({skipped} skipped"
            + (f": {', '.join(f'{k} {v}' for k, v in sorted(self.skipped.items()))})" if skipped else ")"),
            f"loss {first:.4f} (first logged) -> {last:.4f} (last logged), mean {self.train_loss:.4f}",
            f"{self.samples_per_second:.2f} samples/s, {self.runtime_s:.1f} s, "
            f"{self.trainable_parameters:,} trainable parameters",
            f"saved to {self.output_dir}" + (f" (resumed from {self.resumed_from})" if self.resumed_from else ""),
        ]


# --------------------------------------------------------------------------------------------------
# Tokenizer, model, weights
# --------------------------------------------------------------------------------------------------


def load_tokenizer(*dirs: Path | None) -> Any:
    """The tokenizer of the first of ``dirs`` holding one (``tokenizer_config.json``), else the Qwen2
    tokenizer converted offline (:func:`vlm3r.model.tokenizer.load_qwen2_tokenizer`).

    Its chat template is always ours (:data:`vlm3r.model.tokenizer.CHAT_TEMPLATE`, LLaVA-Video's
    ``qwen_1_5`` conversation that VLM-3R trains with): a base model folder saved by transformers
    carries its processor's template (``chat_template.jinja``), which reads message contents as typed
    lists and renders our text turns empty."""
    from .tokenizer import CHAT_TEMPLATE, load_qwen2_tokenizer

    for d in dirs:
        if d is not None and (Path(d) / "tokenizer_config.json").is_file():
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(str(d), local_files_only=True)
            tok.chat_template = CHAT_TEMPLATE
            return tok
    return load_qwen2_tokenizer()


def load_trainables(model: Any, directory: Path) -> None:
    """Load the LoRA adapter and the fusion / projector weights saved by
    :func:`vlm3r.model.saved.save_trained` in ``directory`` into a built ``model`` (in place)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    from .saved import NON_LORA_FILE

    d = Path(directory)
    adapter, extra = d / "adapter_model.safetensors", d / NON_LORA_FILE
    for f in (adapter, extra):
        if not f.is_file():
            raise FileNotFoundError(f"{f}: missing (not a VLM-3R checkpoint folder)")
    result = set_peft_model_state_dict(model.llava, load_file(str(adapter)))
    if getattr(result, "unexpected_keys", None):
        raise ValueError(f"{adapter}: {len(result.unexpected_keys)} unexpected keys, e.g. {result.unexpected_keys[0]}")
    missing = [k for k in getattr(result, "missing_keys", []) if "lora_" in k]
    if missing:
        raise ValueError(f"{adapter}: {len(missing)} LoRA weights missing, e.g. {missing[0]}")
    tensors = load_file(str(extra))
    for prefix, module in (("fusion.", model.fusion), ("projector.", model.projector)):
        sd = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
        try:
            module.load_state_dict(sd, strict=True)
        except RuntimeError as e:
            raise ValueError(f"{extra}: does not fit the model ({str(e).splitlines()[0]})") from None


def _cuda_bf16() -> bool:
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def build_model(cfg: ModelConfig, config: TrainConfig, bf16: bool) -> Any:
    """VLM-3R with LoRA; frozen weights in bf16 when ``bf16`` (trainables stay float32 masters)."""
    import torch
    from transformers import set_seed

    from .vlm import build_vlm3r

    set_seed(config.seed)  # peft initialises LoRA A from the global generator
    model = build_vlm3r(
        cfg,
        base_model_dir=config.base_model_dir,
        cut3r_checkpoint=config.spatial_checkpoint,
        with_cut3r=not config.require_cache,
        dtype=torch.bfloat16 if bf16 else torch.float32,
        seed=config.seed,
    )
    if bf16:
        for p in model.parameters():
            if p.requires_grad:
                p.data = p.data.float()
    return model


def resolve_deepspeed(value: str | None) -> str | None:
    """``"zero2"`` -> the shipped config; a path must exist. DeepSpeed must be importable."""
    if value is None:
        return None
    import importlib.util

    path = ZERO2_CONFIG if value == "zero2" else Path(value)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such DeepSpeed config")
    if importlib.util.find_spec("deepspeed") is None:
        raise ImportError("--deepspeed needs DeepSpeed (a CUDA machine): pip install deepspeed")
    return str(path)


# --------------------------------------------------------------------------------------------------
# Trainer
# --------------------------------------------------------------------------------------------------


def supervised_window(batch: dict[str, Any]) -> dict[str, Any]:
    """Ask the LM for logits only from the position before the batch's first supervised label on.

    The loss needs logits only where the next token is labelled; the prompt (with thousands of
    video tokens) needs none. Passing ``logits_to_keep`` = the window length and the labels of that
    window gives the same loss as full logits (the shift by one stays inside the window) without the
    (B, L, vocab) logits tensor: 152,064 x 6,800 floats per paper-sized sample.
    """
    from .data import IGNORE_INDEX

    labels = batch.get("labels")
    if labels is None or "logits_to_keep" in batch:
        return batch
    supervised = (labels != IGNORE_INDEX).any(dim=0).nonzero()
    if len(supervised) == 0:
        return batch
    start = max(int(supervised[0]) - 1, 0)
    return {**batch, "labels": labels[:, start:], "logits_to_keep": labels.shape[1] - start}


def _trainer_class() -> type:
    import torch
    from transformers import Trainer

    from .data import resolve_spatial
    from .saved import save_trained

    class VLM3RTrainer(Trainer):
        """``Trainer`` that saves / loads VLM-3R's trainables only and encodes uncached CUT3R rows."""

        def __init__(self, *args: Any, save_info: dict[str, Any], tokenizer: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._save_info = save_info
            self._tokenizer = tokenizer

        def compute_loss(
            self, model: Any, inputs: dict, return_outputs: bool = False, num_items_in_batch: Any = None
        ) -> Any:
            inputs = supervised_window(resolve_spatial(self.accelerator.unwrap_model(model), inputs))
            return super().compute_loss(
                model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch
            )

        def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
            if self.is_fsdp_enabled:  # pragma: no cover - FSDP gathers a full state dict first
                return super().save_model(output_dir, _internal_call)
            self._save(output_dir)  # DDP / ZeRO-2: every rank holds the full trainables

        def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
            if not self.args.should_save:
                return
            out = Path(output_dir or self.args.output_dir)
            save_trained(self.accelerator.unwrap_model(self.model), out, **self._save_info)
            self._tokenizer.save_pretrained(str(out))
            torch.save(self.args, out / "training_args.bin")

        def _save_optimizer_and_scheduler(self, output_dir: str) -> None:
            """With DeepSpeed, the engine's checkpoint keeps only the trainable parameters (the
            Trainer does this only for a bare peft model; VLM-3R wraps one), not the ~17 GB of frozen
            weights at every save."""
            engine = self.model_wrapped if self.is_deepspeed_enabled else None
            if engine is None or not hasattr(engine, "save_checkpoint"):
                return super()._save_optimizer_and_scheduler(output_dir)
            original = engine.save_checkpoint
            engine.save_checkpoint = functools.partial(original, exclude_frozen_parameters=True)
            try:
                return super()._save_optimizer_and_scheduler(output_dir)
            finally:
                engine.save_checkpoint = original

        def _load_from_checkpoint(self, resume_from_checkpoint: str, model: Any = None) -> None:
            load_trainables(
                self.accelerator.unwrap_model(model if model is not None else self.model), Path(resume_from_checkpoint)
            )

    return VLM3RTrainer


def training_arguments(config: TrainConfig, settings: TrainPreset, bf16: bool) -> Any:
    """transformers ``TrainingArguments`` of a run."""
    import torch
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(config.output_dir),
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.grad_accum,
        learning_rate=settings.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=settings.warmup_ratio,  # a float < 1 is a ratio of the total steps
        num_train_epochs=settings.epochs,
        max_steps=config.max_steps,
        weight_decay=settings.weight_decay,
        max_grad_norm=settings.max_grad_norm,
        bf16=bf16,
        use_cpu=not torch.cuda.is_available(),
        logging_steps=settings.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=settings.save_steps,
        save_total_limit=config.save_total_limit,
        seed=config.seed,
        dataloader_num_workers=config.workers,
        dataloader_pin_memory=torch.cuda.is_available(),
        remove_unused_columns=False,
        label_names=["labels"],
        report_to="none",
        disable_tqdm=not config.progress,
        ddp_find_unused_parameters=False,
        deepspeed=resolve_deepspeed(config.deepspeed),
    )


def default_feature_cache(config: TrainConfig) -> Path | None:
    """``config.feature_cache``, else ``<first data folder>/features`` when it exists."""
    if config.feature_cache is not None:
        return Path(config.feature_cache)
    default = Path(config.data[0]) / "features"
    return default if default.is_dir() else None


def train(config: TrainConfig, tokenizer: Any = None, callbacks: Sequence[Any] = ()) -> TrainResult:
    """Run (or resume) one training; saves the trainables, tokenizer and ``train_summary.json`` in
    ``config.output_dir``. ``tokenizer`` overrides the one :func:`load_tokenizer` would pick;
    ``callbacks`` are transformers ``TrainerCallback`` objects."""
    from .preflight import preflight, prepare_run_folder

    preflight(config)  # before anything heavy is imported or loaded
    settings = config.settings()
    checkpoint = prepare_run_folder(config, config.overwrite)
    resume = str(checkpoint) if checkpoint is not None else None
    out = Path(config.output_dir)

    from .data import (
        ShardDataset,
        VideoCollator,
        mix_samples,
        read_samples,
        spatial_cache_tag,
    )
    from .feature_cache import SpatialFeatureCache

    cfg = get_config(config.preset)
    bf16 = _cuda_bf16() if config.bf16 is None else config.bf16

    tok = tokenizer if tokenizer is not None else load_tokenizer(config.tokenizer_dir, config.base_model_dir)
    samples = mix_samples(
        read_samples([Path(d) for d in config.data], config.tasks), config.source_weights, config.seed
    )
    cache_dir = default_feature_cache(config)
    cache = (
        SpatialFeatureCache(cache_dir, spatial_cache_tag(cfg, config.spatial_checkpoint, config.seed))
        if cache_dir
        else None
    )
    if config.require_cache and cache is None:
        raise ValueError(
            "require_cache needs a feature cache (run `vlm3r-data features` first or pass --feature-cache)"
        )
    dataset = ShardDataset(samples, tok, cfg, config.num_frames, cache, config.require_cache, config.max_length)
    model = build_model(cfg, config, bf16)
    if settings.gradient_checkpointing:
        model.base.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        model.base.enable_input_require_grads()

    args = training_arguments(config, settings, bf16)
    trainer = _trainer_class()(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=VideoCollator(pad_token_id=int(tok.pad_token_id)),
        callbacks=list(callbacks),
        save_info={
            "base_model_dir": config.base_model_dir,
            "cut3r_checkpoint": config.spatial_checkpoint,
            "seed": config.seed,
            "feature_cache": cache_dir,
            "training": {
                "preset": config.preset, "data": [str(d) for d in config.data], "tasks": config.tasks or "all",
                "source weights": config.source_weights or "none", "samples": len(dataset),
                "recipe": asdict(settings), "max steps": config.max_steps, "bf16": bf16,
                "feature cache": str(cache_dir) if cache_dir else "none",
            },
        },
        tokenizer=tok,
    )
    t0 = time.perf_counter()
    output = trainer.train(resume_from_checkpoint=resume)
    trainer.save_model(str(out))
    metrics = output.metrics
    losses = [(int(h["step"]), float(h["loss"])) for h in trainer.state.log_history if "loss" in h and "step" in h]
    result = TrainResult(
        output_dir=str(out),
        steps=int(trainer.state.global_step),
        samples=len(dataset),
        skipped=dataset.skipped,
        losses=losses,
        train_loss=float(metrics.get("train_loss", math.nan)),
        runtime_s=float(metrics.get("train_runtime", time.perf_counter() - t0)),
        samples_per_second=float(metrics.get("train_samples_per_second", math.nan)),
        trainable_parameters=sum(p.numel() for p in model.parameters() if p.requires_grad),
        resumed_from=resume,
    )
    if trainer.is_world_process_zero():
        summary = asdict(result) | {"preset": config.preset, "settings": asdict(settings), "bf16": bf16}
        (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=1, default=str) + "\n")
    return result
