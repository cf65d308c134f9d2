"""object_counting: how many instances of a category with two or more instances."""

from __future__ import annotations

import numpy as np

from vlm3r.datagen.base import Draft, Task
from vlm3r.datagen.choices import count_distractors
from vlm3r.datagen.registry import register_task
from vlm3r.schemas.scene import FrameMetadata, SceneMetadata

QUESTION = "How many {category}(s) are in this room?"


@register_task
class ObjectCounting(Task):
    name = "object_counting"
    version = 2  # 2: categories from each source's own vocabulary
    numeric = True

    def generate(self, scene: SceneMetadata, frames: FrameMetadata | None, rng: np.random.Generator) -> list[Draft]:
        drafts = []
        for category, count in sorted(scene.object_counts.items()):
            if count < 2:
                continue
            wrong = count_distractors(count, rng)
            drafts.append(
                Draft(
                    question=QUESTION.format(category=category),
                    answer=count,
                    choices=tuple(str(x) for x in [count, *wrong]),
                    categories=(category,),
                )
            )
        return drafts
