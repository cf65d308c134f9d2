"""object_abs_distance: the exact closest-point distance between two unique objects' boxes."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from vlm3r.datagen.base import Draft, Task
from vlm3r.datagen.box_geometry import pairwise_box_distances
from vlm3r.datagen.camera_geometry import sample_capped
from vlm3r.datagen.numeric_choices import numeric_choices
from vlm3r.datagen.registry import register_task
from vlm3r.datagen.scene_queries import unique_objects
from vlm3r.schemas.scene import FrameMetadata, SceneMetadata

QUESTION = (
    "Measuring from the closest point of each object, what is the direct distance between the {object1} "
    "and the {object2} (in meters)?"
)
MIN_DISTANCE_M = 0.2


@register_task
class ObjectAbsDistance(Task):
    name = "object_abs_distance"
    version = 2  # 2: categories from each source's own vocabulary
    numeric = True
    max_per_scene: ClassVar[int] = 20

    def generate(self, scene: SceneMetadata, frames: FrameMetadata | None, rng: np.random.Generator) -> list[Draft]:
        unique = unique_objects(scene)
        cats = list(unique)
        dist = pairwise_box_distances([unique[c].box for c in cats])
        pairs = [(i, j) for i in range(len(cats)) for j in range(i + 1, len(cats)) if dist[i, j] >= MIN_DISTANCE_M]
        drafts = []
        for k in sample_capped(len(pairs), self.max_per_scene, rng):
            i, j = pairs[k]
            if rng.random() < 0.5:  # which object is named first
                i, j = j, i
            answer = round(float(dist[i, j]), 1)
            drafts.append(
                Draft(
                    question=QUESTION.format(object1=cats[i], object2=cats[j]),
                    answer=answer,
                    choices=numeric_choices(answer, rng, decimals=1),
                    categories=(cats[i], cats[j]),
                    extra={"distance_m": float(dist[i, j])},
                )
            )
        return drafts
