"""What a build writes from its QA records.

- benchmark records (VSI-Bench format): ``qa/<task>/<dataset>-<k>.jsonl`` shards and
  ``qa/<task>/<dataset>.parquet`` (loadable with ``datasets.load_dataset("parquet", ...)``);
- training conversations (LLaVA format): ``train/<task>/<dataset>-<k>.jsonl``, train-split scenes only,
  VSI-Bench evaluation scenes excluded unless asked otherwise;
- a summary per task: ``qa/summary.<dataset>.json``.
Every file is written under a temporary name and renamed; a task's ``<dataset>.done.json`` marker is
removed first and written last.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vlm3r.schemas.io import atomic_write_bytes, atomic_write_json
from vlm3r.schemas.conversation import conversation, format_answer
from vlm3r.schemas.qa import QARecord

QA_SHARD_SIZE = 10_000
def write_shards(task_dir: Path, dataset: str, lines: Sequence[bytes]) -> int:
    """Replace ``<dataset>-*.jsonl`` in ``task_dir`` with fixed-size numbered shards; returns shard count."""
    task_dir.mkdir(parents=True, exist_ok=True)
    for old in task_dir.glob(f"{dataset}-*.jsonl"):
        old.unlink()
    n_shards = max(1, -(-len(lines) // QA_SHARD_SIZE))
    for k in range(n_shards):
        atomic_write_bytes(task_dir / f"{dataset}-{k:05d}.jsonl", b"".join(lines[k * QA_SHARD_SIZE : (k + 1) * QA_SHARD_SIZE]))
    return n_shards


def write_parquet(records: Sequence[QARecord], path: Path) -> None:
    """The VSI-Bench columns as a Parquet table (ground_truth as text, like VSI-Bench's own)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "id": [r.id for r in records],
            "dataset": [r.dataset for r in records],
            "scene_name": [r.scene_name for r in records],
            "question_type": [r.question_type for r in records],
            "question": [r.question for r in records],
            "options": pa.array([r.options for r in records], type=pa.list_(pa.string())),
            "ground_truth": [format_answer(r.ground_truth) for r in records],
            "mc_answer": pa.array([r.mc_answer for r in records], type=pa.string()),
            "video_path": pa.array([r.video_path for r in records], type=pa.string()),
            "split": pa.array([r.split for r in records], type=pa.string()),
        }
    )
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)


def task_summary(records: Sequence[QARecord], numeric: bool) -> dict[str, Any]:
    """Count, answer distribution and letter distribution of one task's records."""
    letters = Counter(r.mc_answer for r in records if r.mc_answer)
    out: dict[str, Any] = {"count": len(records), "letters": dict(sorted(letters.items()))}
    if numeric and records:
        values = sorted(float(r.ground_truth) for r in records)
        out["answer"] = {"min": values[0], "median": values[len(values) // 2], "max": values[-1]}
    else:
        out["answer"] = dict(Counter(str(r.ground_truth) for r in records).most_common(10))
    return out


def export_task(
    out: Path,
    dataset: str,
    task: str,
    version: int,
    records: Sequence[QARecord],
    numeric: bool,
    train_scenes: set[str],
) -> dict[str, Any]:
    """Write one task's benchmark shards, Parquet table and training conversations."""
    task_dir = out / "qa" / task
    task_dir.mkdir(parents=True, exist_ok=True)
    marker = task_dir / f"{dataset}.done.json"
    marker.unlink(missing_ok=True)
    shards = write_shards(task_dir, dataset, [r.model_dump_json().encode("utf-8") + b"\n" for r in records])
    write_parquet(records, task_dir / f"{dataset}.parquet")
    train = [conversation(r, numeric) for r in records if r.scene_name in train_scenes]
    write_shards(out / "train" / task, dataset, [json.dumps(c, ensure_ascii=False).encode("utf-8") + b"\n" for c in train])
    summary = task_summary(records, numeric) | {"train_samples": len(train), "task_version": version}
    atomic_write_json(marker, {"records": len(records), "shards": shards, "task_version": version})
    return summary
