"""What a build writes from its QA records.

- QA rows (``schemas.rows`` format ``qa``): ``qa/<task>/<dataset>-<k>.jsonl`` shards and
  ``qa/<task>/<dataset>.parquet``, one schema for every task and file type;
- training conversations (LLaVA format): ``train/<task>/<dataset>-<k>.jsonl``, train-split scenes only,
  VSI-Bench evaluation scenes excluded unless asked otherwise;
- a summary per task: ``qa/summary.<dataset>.json``.
A task with no rows gets no data files (so no untyped empty tables). Every file is written under a
temporary name and renamed; a folder's ``<dataset>.done.json`` marker is removed first and written
last, and readers (``schemas.io.check_export``) refuse a folder whose marker is missing.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from vlm3r.schemas.conversation import conversation
from vlm3r.schemas.io import atomic_write_bytes, atomic_write_json
from vlm3r.schemas.qa import QARecord
from vlm3r.schemas.rows import ROW_FORMATS, qa_row

QA_SHARD_SIZE = 10_000


def json_lines(rows: Iterable[Mapping[str, Any]]) -> list[bytes]:
    return [json.dumps(r, ensure_ascii=False).encode("utf-8") + b"\n" for r in rows]


def write_shards(task_dir: Path, dataset: str, lines: Sequence[bytes]) -> int:
    """Replace ``<dataset>-*.jsonl`` in ``task_dir`` with fixed-size numbered shards (none when
    ``lines`` is empty); returns the shard count."""
    task_dir.mkdir(parents=True, exist_ok=True)
    for old in task_dir.glob(f"{dataset}-*.jsonl"):
        old.unlink()
    n_shards = -(-len(lines) // QA_SHARD_SIZE)
    for k in range(n_shards):
        atomic_write_bytes(task_dir / f"{dataset}-{k:05d}.jsonl", b"".join(lines[k * QA_SHARD_SIZE : (k + 1) * QA_SHARD_SIZE]))
    return n_shards


def arrow_schema(row_format: str):
    """The Arrow schema of a row format (``schemas.rows.ROW_FORMATS``)."""
    import pyarrow as pa

    types = {"string": pa.string(), "int64": pa.int64(), "list<string>": pa.list_(pa.string()), "list<int64>": pa.list_(pa.int64())}
    return pa.schema([(name, types[t]) for name, t in ROW_FORMATS[row_format].items()])


def write_parquet(lines: Sequence[bytes], row_format: str, path: Path) -> None:
    """JSON ``lines`` (rows of ``row_format``) as a Parquet table with the format's fixed schema; no
    file (an old one removed) when empty. The lines are parsed by Arrow's JSON reader against that
    schema (a row with another field is an error), which keeps pandas out of the build."""
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    if not lines:
        path.unlink(missing_ok=True)
        return
    data = b"".join(lines)
    schema = arrow_schema(row_format)
    table = pj.read_json(
        io.BytesIO(data),
        read_options=pj.ReadOptions(block_size=len(data) + 1),  # one chunk: one row group, as from a list
        parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="error"),
    ).select(schema.names)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp)
    tmp.replace(path)


def write_rows(
    folder: Path, dataset: str, rows: Sequence[Mapping[str, Any]], row_format: str, marker: dict | None = None,
    lines: Sequence[bytes] | None = None,
) -> int:
    """``<dataset>-<k>.jsonl`` shards (``lines``, default the rows as JSON lines) and
    ``<dataset>.parquet`` of ``rows`` in ``row_format``, then the ``<dataset>.done.json`` completion
    marker (removed first); returns the shard count."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{dataset}.done.json").unlink(missing_ok=True)
    lines = json_lines(rows) if lines is None else lines
    shards = write_shards(folder, dataset, lines)
    write_parquet(lines, row_format, folder / f"{dataset}.parquet")
    atomic_write_json(folder / f"{dataset}.done.json", {"records": len(rows), "shards": shards} | (marker or {}))
    return shards


def _digest(*parts: Sequence[bytes]) -> str:
    h = hashlib.sha1()
    for lines in parts:
        for line in lines:
            h.update(line)
        h.update(b"\0")
    return h.hexdigest()


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
    """Write one task's QA shards, Parquet table and training conversations, then its marker
    ``qa/<task>/<dataset>.done.json``. A task whose output is unchanged since the last completed
    export (same digest in its marker) is not rewritten, so readers of an unchanged re-run never
    see it incomplete."""
    task_dir = out / "qa" / task
    train = [conversation(r, numeric) for r in records if r.scene_name in train_scenes]
    rows = [qa_row(r) for r in records]
    qa_lines, train_lines = json_lines(rows), json_lines(train)
    digest = _digest(qa_lines, train_lines, [str(version).encode()])
    summary = task_summary(records, numeric) | {"train_samples": len(train), "task_version": version}
    marker = task_dir / f"{dataset}.done.json"
    try:
        done = json.loads(marker.read_text(encoding="utf-8"))
        unchanged = done.get("digest") == digest and done.get("shards") == len(list(task_dir.glob(f"{dataset}-*.jsonl")))
    except (OSError, ValueError, AttributeError):
        unchanged = False
    if unchanged:
        return summary
    task_dir.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    train_shards = write_shards(out / "train" / task, dataset, train_lines)
    write_rows(task_dir, dataset, rows, "qa", {"train_shards": train_shards, "task_version": version, "digest": digest}, qa_lines)
    return summary
