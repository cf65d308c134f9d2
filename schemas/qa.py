"""Question-answer records (VSI-Bench compatible, DESIGN.md section 5)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from vlm3r.schemas.scene import SCHEMA_VERSION

MC_LETTERS = "ABCD"

# --------------------------------------------------------------------------------------------------
# Question kinds: the ONE place that says which question types are numeric
# --------------------------------------------------------------------------------------------------

NUMERIC_TASK_UNITS: Mapping[str, str | None] = {
    "object_counting": None,
    "object_size_estimation": "cm",
    "room_size_estimation": "m2",
    "object_abs_distance": "m",
    "camera_obj_abs_dist": "m",
    "camera_displacement": "m",
}
"""Numeric (MRA-scored) question types and the unit their answers are in (None = a count)."""

NUMERIC_TASKS: frozenset[str] = frozenset(NUMERIC_TASK_UNITS)

TASK_FAMILIES: Mapping[str, tuple[str, ...]] = {
    "object_rel_direction": (
        "object_rel_direction_easy",
        "object_rel_direction_medium",
        "object_rel_direction_hard",
    ),
    "object_rel_distance": ("object_rel_distance", "object_rel_distance_3", "object_rel_distance_2"),
    "camera_obj_rel_dist": ("camera_obj_rel_dist_v1", "camera_obj_rel_dist_v2", "camera_obj_rel_dist_v3"),
    "obj_obj_relative_pos": ("obj_obj_relative_pos_nf", "obj_obj_relative_pos_lr", "obj_obj_relative_pos_ud"),
}
"""Paper task -> the question types (variants) generated for it."""


def task_family(question_type: str) -> str:
    """The paper task a question type belongs to (itself when it has no variants)."""
    for family, parts in TASK_FAMILIES.items():
        if question_type in parts:
            return family
    return question_type


def is_numeric_task(question_type: str) -> bool:
    """True for question types scored by MRA on a number."""
    return question_type in NUMERIC_TASKS


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

    @property
    def is_numeric(self) -> bool:
        """True when the question is answered with a number (scored by MRA), else by option letter."""
        return is_numeric_task(self.question_type)
