"""The contract of a task generator (DESIGN.md section 5).

A task turns one scene graph into question drafts, using only the rng it is given. Drafts carry
the answer and, for questions that can be posed as multiple choice, the option texts with the
correct one first; letters are assigned later, over the whole task output (see ``choices``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np

from vlm3r.schemas.scene import FrameMetadata, SceneMetadata


AnswerabilityRule = Literal["scene", "frame", "first_sight", "none"]
"""Which frames must show a question's objects (see ``datagen.answerability``)."""


@dataclass(frozen=True)
class Draft:
    """One question before letter assignment.

    choices: option texts with the correct answer FIRST, or None when the question has no
    multiple-choice form.
    """

    question: str
    answer: int | float | str
    choices: tuple[str, ...] | None = None
    categories: tuple[str, ...] = ()
    frame_ids: tuple[int, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


class Task(ABC):
    """One benchmark task. Subclasses set ``name`` and ``version`` (bump it when output changes)."""

    name: ClassVar[str]
    version: ClassVar[int]
    needs_frames: ClassVar[bool] = False
    numeric: ClassVar[bool] = False  # answered with a number (scored by MRA); else by option letter
    family: ClassVar[str | None] = None  # the paper's task a variant belongs to (e.g. VSTI-Bench Table 6)
    max_per_scene: ClassVar[int] = 1_000_000  # cap on questions per scene; instances may override
    answerability: ClassVar[AnswerabilityRule] = "scene"  # what the sampled frames must show (datagen.answerability)

    @abstractmethod
    def generate(self, scene: SceneMetadata, frames: FrameMetadata | None, rng: np.random.Generator) -> list[Draft]:
        """Drafts for one scene; all randomness from ``rng``."""
