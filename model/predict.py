"""Benchmark predictions of a trained VLM-3R: ``{"id": ..., "prediction": ...}`` JSON lines for
``vlm3r-eval score``.

Each question is posed exactly as in training (DESIGN.md section 5, through
:func:`vlm3r.schemas.conversation.conversation`): numeric tasks open-ended ("Please answer the question
using a single word or phrase."), the others as multiple choice answered with the letter. Decoding
is greedy, at most 16 new tokens, stopping at the end-of-turn token; the prediction is the decoded
text, stripped.

Videos are found like the training data (:func:`vlm3r.model.data.locate_video`) under the
benchmark's build folder (inferred from the file's location, or ``data_root``). A question whose
video cannot be read gets an empty prediction (it scores 0) and is counted, so the output has
exactly one line per benchmark question.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from vlm3r.schemas.qa import QARecord

log = logging.getLogger("vlm3r.predict")


@dataclass
class PredictSummary:
    """Counts and timing of one prediction run."""

    out: str
    questions: int
    failed: dict[str, int] = field(default_factory=dict)
    videos: int = 0
    seconds: float = 0.0
    empty: int = 0  # predictions that are empty text (failed videos included)

    @property
    def questions_per_second(self) -> float:
        return self.questions / self.seconds if self.seconds > 0 else math.nan

    def line(self) -> str:
        failed = sum(self.failed.values())
        why = f" ({', '.join(f'{k} {v}' for k, v in sorted(self.failed.items()))})" if failed else ""
        return (
            f"{self.questions} predictions over {self.videos} videos, {failed} without a readable video{why}, "
            f"{self.empty} empty; "
            f"{self.seconds:.1f} s ({self.questions_per_second:.2f} questions/s) -> {self.out}"
        )


# --------------------------------------------------------------------------------------------------
# Benchmark input
# --------------------------------------------------------------------------------------------------


def _record(row: dict[str, Any], where: str) -> QARecord:
    """A QARecord from a benchmark row (JSONL record or Parquet row; the Parquet table has no task_version)."""
    import numpy as np

    r = {k: v for k, v in row.items() if k in QARecord.model_fields}
    for k, v in list(r.items()):
        if isinstance(v, float) and math.isnan(v):
            r[k] = None
        elif isinstance(v, np.ndarray):
            r[k] = v.tolist()
    if r.get("id") is not None:
        r["id"] = str(r["id"])  # the original VSI-Bench tables number their questions
    r.setdefault("task_version", 0)
    if r.get("ground_truth") is None:
        r["ground_truth"] = ""
    r.pop("schema_version", None)
    try:
        if isinstance(r.get("extra"), str):  # a ``qa`` row keeps the generator's details as JSON text
            r["extra"] = json.loads(r["extra"] or "{}")
        return QARecord.model_validate(r)
    except ValueError as e:
        first = str(e).splitlines()
        raise ValueError(f"{where}: not a benchmark record ({first[0] if first else e})") from None


def read_benchmark(path: Path) -> list[QARecord]:
    """Questions of a ``.parquet`` table, a QA ``.jsonl`` file or a build folder (every ``qa/*/*.jsonl``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such benchmark file or folder")
    rows: list[tuple[dict, str]] = []
    if path.suffix == ".parquet":
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - pandas is a core dependency
            raise ImportError("reading Parquet needs pandas and pyarrow") from None
        from vlm3r.schemas.io import check_build_table

        check_build_table(path)
        frame = pd.read_parquet(path)
        rows = [(row, f"{path} row {k}") for k, row in enumerate(frame.to_dict(orient="records"))]
    else:
        from vlm3r.schemas.io import qa_files, read_jsonl

        for f in qa_files(path):
            rows += read_jsonl(f)
    records = [_record(row, where) for row, where in rows]
    if not records:
        raise ValueError(f"{path}: the benchmark has no questions")
    seen: set[str] = set()
    for r in records:
        if r.id in seen:
            raise ValueError(f"{path}: duplicate question id {r.id!r}")
        seen.add(r.id)
    return records


def benchmark_root(path: Path) -> Path:
    """The build folder of a benchmark file: the nearest ancestor holding ``scenes/``, else the file's folder."""
    path = Path(path).resolve()
    start = path if path.is_dir() else path.parent
    for d in (start, *start.parents):
        if (d / "scenes").is_dir():
            return d
    return start


def question_text(record: QARecord) -> str:
    """The user turn of a benchmark question, exactly as the training conversations pose it."""
    from vlm3r.schemas.conversation import conversation

    return conversation(record)["conversations"][0]["value"]


# --------------------------------------------------------------------------------------------------
# Prediction
# --------------------------------------------------------------------------------------------------


def _device_dtype(device: str | None, dtype: str | None) -> tuple[torch.device, torch.dtype]:
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dtype is None:
        dt = torch.bfloat16 if dev.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    else:
        dt = getattr(torch, dtype, None)
        if not isinstance(dt, torch.dtype):
            raise ValueError(f"unknown dtype {dtype!r} (float32, bfloat16 or float16)")
    return dev, dt


class Answerer:
    """Greedy answers of a loaded VLM-3R to questions about one video at a time.

    ``model``: a :class:`~vlm3r.model.vlm.VLM3R` on ``device``; ``video``: the frame/feature reader;
    ``encoder``: the prompt encoder (the training chat template)."""

    def __init__(self, model: Any, tokenizer: Any, video: Any, encoder: Any, max_new_tokens: int = 16) -> None:
        self.model, self.tok, self.video, self.encoder = model, tokenizer, video, encoder
        self.max_new_tokens = max_new_tokens
        self.eos = tokenizer.convert_tokens_to_ids(tokenizer.eos_token) if tokenizer.eos_token else None
        self.pad = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos)
        param = next(model.parameters())
        self.device, self.dtype = param.device, param.dtype

    def video_inputs(self, source: Any) -> tuple[torch.Tensor, torch.Tensor, str | None]:
        """SigLIP pixels (T, 3, S, S), CUT3R tokens (T, 1 + P, D) of a video (cached or encoded once)
        and its time instruction (None when the model was trained without one)."""
        inputs = self.video.inputs(source, require_cache=self.model.spatial_encoder is None)
        pixels = inputs.pixel_values_videos.to(self.device)
        if inputs.spatial_tokens is not None:
            return pixels, inputs.spatial_tokens.to(self.device), inputs.time_instruction
        with torch.no_grad():
            tokens = self.model.spatial_tokens(inputs.cut3r_frames[None].to(self.device, self.dtype))[0]
        return pixels, tokens, inputs.time_instruction

    def answer(self, questions: Sequence[str], pixels: torch.Tensor, spatial: torch.Tensor) -> list[str]:
        """Answers to user turns ``questions`` about one video, in one left-padded batch."""
        prompts = [self.encoder.prompt(q) for q in questions]
        b, n = len(prompts), max(len(p) for p in prompts)
        ids = torch.full((b, n), self.pad, dtype=torch.long)
        mask = torch.zeros((b, n), dtype=torch.long)
        for i, p in enumerate(prompts):
            ids[i, n - len(p) :] = torch.tensor(p)
            mask[i, n - len(p) :] = 1
        new = self.model.generate(
            ids.to(self.device),
            pixels[None].expand(b, *pixels.shape),
            spatial_tokens=spatial[None].expand(b, *spatial.shape),
            attention_mask=mask.to(self.device),
            max_new_tokens=self.max_new_tokens,
            do_sample=False,
            eos_token_id=self.eos,
            pad_token_id=self.pad,
        )
        return [self.tok.decode(row, skip_special_tokens=True).strip() for row in new]


def group_by_video(records: Sequence[QARecord], root: Path) -> dict[Any, tuple[Any, list[int]]]:
    """Question indices per video (first-appearance order): key -> (VideoSource or None, indices)."""
    from .data import locate_video

    groups: dict[Any, tuple[Any, list[int]]] = {}
    for k, r in enumerate(records):
        src = locate_video(root, r.video_path, r.dataset, r.dataset, r.scene_name)
        key = src.key if src is not None else ("missing", r.video_path or f"{r.dataset}/{r.scene_name}")
        groups.setdefault(key, (src, []))[1].append(k)
    return groups


def predict(
    model_dir: Path,
    benchmark: Path,
    out: Path,
    *,
    data_root: Path | None = None,
    base_model_dir: Path | None = None,
    spatial_checkpoint: Path | None = None,
    feature_cache: Path | None = None,
    tokenizer: Any = None,
    batch_size: int = 1,
    max_new_tokens: int = 16,
    num_frames: int | None = None,
    device: str | None = None,
    dtype: str | None = None,
    limit: int | None = None,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> PredictSummary:
    """Answer every question of ``benchmark`` with the model saved in ``model_dir``; write ``out``.

    ``base_model_dir`` / ``spatial_checkpoint`` override the paths recorded at training time;
    ``feature_cache`` (default: the cache recorded at training, else ``<data root>/features`` when
    it exists) supplies cached CUT3R tokens; a model trained without CUT3R and no cache is an error.
    Questions are grouped by video (each video is read and CUT3R-encoded once) and answered
    ``batch_size`` at a time (left padding); the output keeps the benchmark's order.
    """
    from vlm3r.schemas.conversation import with_time_instruction

    from .data import ConversationEncoder, SampleError, VideoEncoder, spatial_cache_tag
    from .feature_cache import SpatialFeatureCache
    from .saved import load_trained, read_saved_config
    from .train import load_tokenizer

    t0 = time.perf_counter()
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    model_dir = Path(model_dir)
    cfg, meta = read_saved_config(model_dir)
    records = read_benchmark(benchmark)[:limit]
    root = Path(data_root) if data_root is not None else benchmark_root(Path(benchmark))
    dev, dt = _device_dtype(device, dtype)
    with_cut3r = True if spatial_checkpoint is not None else None  # None: as trained
    model = load_trained(model_dir, base_model_dir, spatial_checkpoint, with_cut3r=with_cut3r, dtype=dt).to(dev)
    tok = tokenizer if tokenizer is not None else load_tokenizer(model_dir, base_model_dir, meta.get("base_model_dir"))
    if feature_cache is None:  # the cache training used, else the build's default one
        recorded = meta.get("feature_cache")
        if recorded and Path(recorded).is_dir():
            feature_cache = Path(recorded)
        elif (root / "features").is_dir():
            feature_cache = root / "features"
    if not meta.get("with_cut3r", True) and spatial_checkpoint is None and feature_cache is None:
        raise FileNotFoundError(
            f"{model_dir}: trained with --require-cache (no CUT3R) and no CUT3R token cache is found "
            f"(recorded: {meta.get('feature_cache')}); pass --feature-cache or --spatial-checkpoint"
        )
    cache = None
    if feature_cache is not None:
        ckpt = spatial_checkpoint if spatial_checkpoint is not None else meta.get("cut3r_checkpoint")
        tag = spatial_cache_tag(cfg, Path(ckpt) if ckpt else None, int(meta.get("seed", 0)))
        cache = SpatialFeatureCache(Path(feature_cache), tag)
    video = VideoEncoder(cfg, num_frames, cache)
    answerer = Answerer(
        model, tok, video, ConversationEncoder(tok, video.num_frames * cfg.tokens_per_frame), max_new_tokens
    )

    predictions = [""] * len(records)
    failed: Counter = Counter()
    groups = group_by_video(records, root)
    answered = 0
    for key, (src, idx) in groups.items():
        try:
            if src is None:
                raise SampleError("no video", f"{root / key[1]}: no frames or video on disk")
            pixels, spatial, instruction = answerer.video_inputs(src)
        except SampleError as e:
            failed[e.kind] += len(idx)
            log.warning("%s (%d questions answered with '')", e, len(idx))
            continue
        for b in range(0, len(idx), batch_size):
            chunk = idx[b : b + batch_size]
            texts = [question_text(records[k]) for k in chunk]
            if instruction is not None:  # as in training (model config time_instruction)
                texts = [with_time_instruction(t, instruction) for t in texts]
            answers = answerer.answer(texts, pixels, spatial)
            for k, a in zip(chunk, answers):
                predictions[k] = a
            answered += len(chunk)
            on_progress(answered + sum(failed.values()), len(records))
    write_predictions(out, [(r.id, p) for r, p in zip(records, predictions)])
    videos = sum(1 for src, _ in groups.values() if src is not None)
    empty = sum(1 for r, p in zip(records, predictions) if not p.strip())
    return PredictSummary(str(out), len(records), dict(failed), videos, time.perf_counter() - t0, empty)


def write_predictions(path: Path, rows: Sequence[tuple[str, str]]) -> None:
    """``{"id", "prediction"}`` JSON lines, written under a temporary name and renamed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        for rid, pred in rows:
            fh.write(json.dumps({"id": rid, "prediction": pred}, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
