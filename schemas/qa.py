"""Question-answer records (VSI-Bench compatible, DESIGN.md section 5)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vlm3r.schemas.scene import SCHEMA_VERSION

MC_LETTERS = "ABCD"


class QARecord(BaseModel):
    """One question. ``options`` are lettered ("A. ...") when the question can be posed as multiple
    choice; ``mc_answer`` is then the correct letter. ``ground_truth`` is the answer value (a number
    for numeric tasks, the answer text for multiple-choice-only tasks)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    dataset: str
    scene_name: str
    question_type: str
    question: str
    options: list[str] | None = None
    ground_truth: int | float | str
    mc_answer: str | None = Field(None, pattern="^[A-D]$")
    video_path: str | None = None
    split: str | None = Field(None, description="scene-level split: train / val / an official list's name")
    task_version: int
    schema_version: str = SCHEMA_VERSION
    categories: list[str] = Field(default_factory=list)
    frame_ids: list[int] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict)
