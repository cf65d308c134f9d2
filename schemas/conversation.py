"""The training conversation and prompt format (LLaVA, DESIGN.md section 5): how a QA record is
posed to the model and what the model must answer. Training export and prediction both use it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vlm3r.schemas.qa import QARecord
from vlm3r.schemas.rows import format_answer

PRE_PROMPT = "These are frames of a video."
HUMAN_PREFIX = f"<image>\n{PRE_PROMPT}\n"
NUMERIC_SUFFIX = "Please answer the question using a single word or phrase."
MC_SUFFIX = "Answer with the option's letter from the given choices directly."


def prompt_text(
    question: str,
    options: Sequence[str] | None,
    pre: str = PRE_PROMPT,
    mc_post: str = MC_SUFFIX,
    na_post: str = NUMERIC_SUFFIX,
) -> str:
    """The question as posed in text (no ``<image>`` line): open-ended when ``options`` is empty or
    None, else with the lettered options. The evaluation tasks' ``doc_to_text`` is this same text."""
    if not options:
        return f"{pre}\n{question}\n{na_post}"
    return "\n".join([pre, question, "Options:\n" + "\n".join(options), mc_post])


def time_instruction(video_seconds: float, frame_seconds: Sequence[float]) -> str:
    """VLM-3R's time instruction (its ``train.py`` with ``--add_time_instruction True``, as its
    training script runs): the video's length and where the sampled frames are, in seconds."""
    times = ",".join(f"{t:.2f}s" for t in frame_seconds)
    return (
        f"The video lasts for {video_seconds:.2f} seconds, and {len(frame_seconds)} frames are uniformly sampled "
        f"from it. These frames are located at {times}.Please answer the following questions related to this video."
    )


def with_time_instruction(user_turn: str, instruction: str) -> str:
    """The first user turn with the instruction after the ``<image>`` line, as VLM-3R rewrites it:
    ``"<image>\n{instruction}\n"`` followed by the turn with its ``<image>`` removed."""
    return f"<image>\n{instruction}\n{user_turn.replace('<image>', '')}"


def conversation(record: QARecord, numeric: bool | None = None) -> dict[str, Any]:
    """One LLaVA-format training sample (DESIGN.md section 5): numeric tasks are asked open-ended,
    the others as multiple choice answered with the letter. ``numeric`` defaults to the record's
    own kind (:attr:`QARecord.is_numeric`)."""
    if numeric is None:
        numeric = record.is_numeric
    open_ended = numeric or not record.options
    human = "<image>\n" + prompt_text(record.question, None if open_ended else record.options)
    answer = format_answer(record.ground_truth) if open_ended else record.mc_answer or ""
    return {
        "id": record.id,
        "video": record.video_path,
        "dataset": record.dataset,
        "scene_name": record.scene_name,
        "question_type": record.question_type,
        "conversations": [{"from": "human", "value": human}, {"from": "gpt", "value": answer}],
    }
