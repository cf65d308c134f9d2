"""room_size_estimation: the floor area of the scene in square metres (one question per scene)."""

from __future__ import annotations

import numpy as np

from vlm3r.datagen.base import Draft, Task
from vlm3r.datagen.numeric_choices import numeric_choices
from vlm3r.datagen.registry import register_task
from vlm3r.schemas.scene import FrameMetadata, SceneMetadata

QUESTION = (
    "What is the size of this room (in square meters)? If multiple rooms are shown, estimate the size "
    "of the combined space."
)


@register_task
class RoomSizeEstimation(Task):
    name = "room_size_estimation"
    version = 1
    numeric = True

    def generate(self, scene: SceneMetadata, frames: FrameMetadata | None, rng: np.random.Generator) -> list[Draft]:
        answer = round(scene.room_size, 1)
        if answer <= 0:
            return []
        return [Draft(question=QUESTION, answer=answer, choices=numeric_choices(answer, rng, decimals=1))]
