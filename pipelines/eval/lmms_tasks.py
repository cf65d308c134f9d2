"""lmms-eval task functions for VSTI-Bench rows (``schemas.rows`` format ``vstibench``).

lmms-eval 0.7.3 ships a ``vsibench`` task but no VSTI-Bench task (that one lives in VLM-3R's fork of
thinking-in-space, ``lmms_eval/tasks/vstibench``). The task folder that ``vlm3r-data export-lmms-eval``
writes for VSTI-Bench imports these functions, which follow that task's contract:

- ``vstibench_doc_to_text``: its prompt ("These are frames of a video." when no pre-prompt is set, the
  question, the lettered options for multiple choice, then the post-prompt) - exactly our training
  prompt without the leading ``<image>`` line;
- ``vstibench_process_results``: its per-item metric (letter accuracy against ``mc_answer``, MRA of the
  first token read as a number against ``ground_truth``), computed by our scorer (protocol
  ``vsibench``);
- ``vstibench_aggregate_results``: its aggregate, the unweighted mean over question types x 100.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from vlm3r.pipelines.eval.scoring import item_from_record, score_items
from vlm3r.schemas.conversation import MC_SUFFIX, NUMERIC_SUFFIX, PRE_PROMPT, prompt_text
from vlm3r.schemas.qa import is_numeric_task
from vlm3r.schemas.rows import BENCHMARK_QUESTION_TYPES

def process_docs(dataset: Any) -> Any:
    """The rows as they are (the official task's default)."""
    return dataset


def vstibench_doc_to_text(doc: Mapping[str, Any], lmms_eval_specific_kwargs: Mapping[str, Any] | None = None) -> str:
    """The question as VSTI-Bench's task poses it."""
    kwargs = lmms_eval_specific_kwargs or {}
    if doc["question_type"] not in BENCHMARK_QUESTION_TYPES["vstibench"]:
        raise ValueError(f"{doc['question_type']!r} is not a VSTI-Bench question type")
    return prompt_text(
        doc["question"],
        None if is_numeric_task(doc["question_type"]) else doc["options"],
        pre=kwargs.get("pre_prompt") or PRE_PROMPT,
        mc_post=kwargs.get("mca_post_prompt") or MC_SUFFIX,
        na_post=kwargs.get("na_post_prompt") or NUMERIC_SUFFIX,
    )


def vstibench_process_results(doc: Mapping[str, Any], results: Sequence[str]) -> dict[str, dict[str, Any]]:
    """One item's score: ``{"vstibench_score": {"question_type", "score"}}`` (score in [0, 1])."""
    item = item_from_record(doc, "vstibench row")
    scored = score_items([item], {item.id: str(results[0])}, "vsibench")[0]
    return {"vstibench_score": {"question_type": item.question_type, "score": scored.score}}


def vstibench_aggregate_results(results: Sequence[Mapping[str, Any]]) -> float:
    """The unweighted mean of the per-question-type mean scores, x 100."""
    per_type: dict[str, list[float]] = defaultdict(list)
    for r in results:
        per_type[r["question_type"]].append(float(r["score"]))
    if not per_type:
        return 0.0
    return 100.0 * sum(sum(v) / len(v) for v in per_type.values()) / len(per_type)
