"""object_size_estimation: the longest side of a unique object's box, in centimetres."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from vlm3r.datagen.base import Draft, Task
from vlm3r.datagen.camera_geometry import sample_capped
from vlm3r.datagen.numeric_choices import numeric_choices
from vlm3r.datagen.registry import register_task
from vlm3r.datagen.scene_queries import unique_objects
from vlm3r.schemas.scene import FrameMetadata, SceneMetadata

QUESTION = (
    "What is the length of the longest dimension (length, width, or height) of the {category}, "
    "measured in centimeters?"
)


@register_task
class ObjectSizeEstimation(Task):
    name = "object_size_estimation"
    version = 2  # 2: categories from each source's own vocabulary
    numeric = True
    max_per_scene: ClassVar[int] = 20

    def generate(self, scene: SceneMetadata, frames: FrameMetadata | None, rng: np.random.Generator) -> list[Draft]:
        drafts = []
        for category, obj in unique_objects(scene).items():
            answer = int(round(100 * obj.box.longest_side))
            if answer <= 0:
                continue
            drafts.append(
                Draft(
                    question=QUESTION.format(category=category),
                    answer=answer,
                    choices=numeric_choices(answer, rng, decimals=0),
                    categories=(category,),
                    extra={"instance_ids": [obj.instance_id]},
                )
            )
        return [drafts[i] for i in sample_capped(len(drafts), self.max_per_scene, rng)]
