"""The training conversation and prompt format (LLaVA, DESIGN.md section 5): how a QA record is
posed to the model and what the model must answer. Training export and prediction both use it."""

from __future__ import annotations

from typing import Any

from vlm3r.schemas.qa import QARecord
from vlm3r.schemas.rows import format_answer

HUMAN_PREFIX = "<image>\nThese are frames of a video.\n"
NUMERIC_SUFFIX = "Please answer the question using a single word or phrase."
MC_SUFFIX = "Answer with the option's letter from the given choices directly."


def conversation(record: QARecord, numeric: bool | None = None) -> dict[str, Any]:
    """One LLaVA-format training sample (DESIGN.md section 5): numeric tasks are asked open-ended,
    the others as multiple choice answered with the letter. ``numeric`` defaults to the record's
    own kind (:attr:`QARecord.is_numeric`)."""
    if numeric is None:
        numeric = record.is_numeric
    if numeric or not record.options:
        human = f"{HUMAN_PREFIX}{record.question}\n{NUMERIC_SUFFIX}"
        answer = format_answer(record.ground_truth)
    else:
        human = f"{HUMAN_PREFIX}{record.question}\nOptions:\n" + "\n".join(record.options) + f"\n{MC_SUFFIX}"
        answer = record.mc_answer or ""
    return {
        "id": record.id,
        "video": record.video_path,
        "dataset": record.dataset,
        "scene_name": record.scene_name,
        "question_type": record.question_type,
        "conversations": [{"from": "human", "value": human}, {"from": "gpt", "value": answer}],
    }
