"""The row formats our files carry (DESIGN.md section 5): one fixed set of columns and types per
format, the same in every shard, task and file type (JSONL and Parquet), so that
``datasets.load_dataset`` reads a whole folder as one table.

``qa``
    Every QA record of a build (``qa/<task>/``): ``ground_truth`` is the answer as text (the number
    written by ``str``, or the answer text of a multiple-choice question), ``mc_answer`` the correct
    letter, ``extra`` the generator's details as a JSON object in text. This is also VSTI-Bench's
    convention (its scorer compares a multiple-choice prediction with ``mc_answer``).
``vsibench``
    The VSI-Bench dataset's own row (nyu-visionx/VSI-Bench, read by lmms-eval's ``vsibench`` task):
    an integer ``id``; ``ground_truth`` the option LETTER for multiple choice and the number as text
    for numeric questions; ``options`` null for numeric questions. Our string id is kept in
    ``qa_id`` and the answer text in ``answer_text``.
``vstibench``
    The VSTI-Bench row (VLM-3R's ``vstibench`` task): ``mc_answer`` the letter, ``ground_truth`` the
    answer text, ``video_path`` the video relative to the task's video folder.

Only question types that a benchmark's official task code knows go into that benchmark's files
(``BENCHMARK_QUESTION_TYPES``): training-only variants such as ``object_rel_distance_2`` would make
the official code raise.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from vlm3r.schemas.qa import MC_LETTERS, QARecord, is_numeric_task
from vlm3r.schemas.seeding import stable_hash

_QUESTION = {
    "dataset": "string",
    "scene_name": "string",
    "question_type": "string",
    "question": "string",
    "options": "list<string>",
    "ground_truth": "string",
}
_WHERE = {"video_path": "string", "split": "string"}
_VSTIBENCH = {"id": "string", **_QUESTION, "mc_answer": "string", **_WHERE}

ROW_FORMATS: Mapping[str, Mapping[str, str]] = {
    "qa": _VSTIBENCH
    | {
        "task_version": "int64",
        "schema_version": "string",
        "categories": "list<string>",
        "frame_ids": "list<int64>",
        "extra": "string",
    },
    "vsibench": {"id": "int64", **_QUESTION, "answer_text": "string", "qa_id": "string", **_WHERE},
    "vstibench": _VSTIBENCH,
}
"""Row format -> column -> Arrow type (every column nullable)."""

BENCHMARK_QUESTION_TYPES: Mapping[str, tuple[str, ...]] = {
    "vsibench": (
        "object_rel_direction_easy",
        "object_rel_direction_medium",
        "object_rel_direction_hard",
        "object_rel_distance",
        "route_planning",
        "obj_appearance_order",
        "object_abs_distance",
        "object_counting",
        "object_size_estimation",
        "room_size_estimation",
    ),
    "vstibench": (
        "obj_obj_relative_pos_nf",
        "obj_obj_relative_pos_ud",
        "obj_obj_relative_pos_lr",
        "camera_obj_rel_dist_v1",
        "camera_obj_rel_dist_v2",
        "camera_obj_rel_dist_v3",
        "camera_movement_direction",
        "camera_obj_abs_dist",
        "camera_displacement",
        "camera_obj_dist_change",
    ),
}
"""The question types each benchmark's official task code scores (its MCA and NA lists)."""

MAX_SAFE_ID = 2**53 - 1  # integer ids stay exact in any JSON reader (JavaScript included)


def format_answer(value: int | float | str) -> str:
    """An answer as text: numbers by ``str`` (shortest round-trip form), text unchanged."""
    return str(value)


def parse_numeric_answer(text: str) -> int | float:
    """The inverse of ``format_answer`` for numbers: an int when written without a point or
    exponent, else a float."""
    return int(text) if text.lstrip("-").isdigit() else float(text)


def video_relpath(dataset: str, scene_name: str) -> str:
    """Where the official tasks look for a scene's video, relative to their video folder."""
    return f"{dataset}/{scene_name}.mp4"


def answer_text(record: QARecord) -> str:
    """The answer in words: the correct option's text for multiple choice, else the answer value."""
    if record.mc_answer and record.options:
        k = MC_LETTERS.index(record.mc_answer)
        if k < len(record.options):
            option = record.options[k]
            return option.split(". ", 1)[1] if ". " in option[:4] else option
    return format_answer(record.ground_truth)


def qa_row(record: QARecord) -> dict[str, Any]:
    """A record as a ``qa`` row."""
    row = record.model_dump()
    row["ground_truth"] = format_answer(record.ground_truth)
    row["extra"] = json.dumps(record.extra, ensure_ascii=False, sort_keys=True)
    return {name: row[name] for name in ROW_FORMATS["qa"]}


def record_from_qa_row(row: Mapping[str, Any]) -> QARecord:
    """The record a ``qa`` row was written from (raises ValueError on a malformed row)."""
    data = dict(row)
    gt, qtype = data.get("ground_truth"), str(data.get("question_type", ""))
    if isinstance(gt, str) and is_numeric_task(qtype):
        try:
            data["ground_truth"] = parse_numeric_answer(gt)
        except ValueError:
            raise ValueError(f"numeric task {qtype} has non-numeric ground_truth {gt!r}") from None
    extra = data.get("extra")
    if isinstance(extra, str):
        try:
            data["extra"] = json.loads(extra)
        except ValueError:
            raise ValueError("extra is not a JSON object") from None
    return QARecord.model_validate(data)


def vsibench_id(qa_id: str) -> int:
    """A stable integer id for a VSI-Bench row: the same question always gets the same number."""
    return (stable_hash(qa_id) << 21 ^ stable_hash(qa_id[::-1])) & MAX_SAFE_ID


def _benchmark_row(record: QARecord, row_format: str, **values: Any) -> dict[str, Any]:
    """A benchmark row of ``row_format``: the record's own fields, the video where the official
    task looks, no options for numeric questions, then ``values``."""
    row = record.model_dump(include={"dataset", "scene_name", "question_type", "question", "options", "split"})
    row |= {"video_path": video_relpath(record.dataset, record.scene_name)}
    if record.is_numeric:
        row["options"] = None
    row |= values
    return {name: row[name] for name in ROW_FORMATS[row_format]}


def vsibench_row(record: QARecord) -> dict[str, Any]:
    """A record in VSI-Bench's own row format."""
    gt = format_answer(record.ground_truth) if record.is_numeric else record.mc_answer
    return _benchmark_row(record, "vsibench", id=vsibench_id(record.id), ground_truth=gt,
                          answer_text=answer_text(record), qa_id=record.id)


def vstibench_row(record: QARecord) -> dict[str, Any]:
    """A record in VSTI-Bench's row format."""
    return _benchmark_row(record, "vstibench", id=record.id, ground_truth=format_answer(record.ground_truth),
                          mc_answer=None if record.is_numeric else record.mc_answer)


ROW_BUILDERS = {"qa": qa_row, "vsibench": vsibench_row, "vstibench": vstibench_row}
