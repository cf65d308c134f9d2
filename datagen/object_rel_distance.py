"""object_rel_distance (4, 3 and 2 choices): which category is closest to a unique object.

Distances are exact box-to-box distances; for a category with several instances, the closest one
counts. A question is rejected when the closest choice is under 0.15 m away, or when any two choices'
distances differ by less than 0.15 m (0.30 m for the 3- and 2-choice variants in rooms over 40 m^2).
The 4-choice variant is VSI-Bench's ``object_rel_distance``; the others are training variants.
"""

from __future__ import annotations

from itertools import combinations
from typing import ClassVar

import numpy as np

from vlm3r.datagen.base import Draft, Task
from vlm3r.datagen.registry import register_task
from vlm3r.datagen.scene_queries import category_distances, instance_distances, unique_objects
from vlm3r.schemas.scene import FrameMetadata, SceneMetadata

QUESTION = (
    "Measuring from the closest point of each object, which of these objects ({choices}) is the closest to "
    "the {category}? If there are multiple instances of an object category, measure to the closest."
)
MIN_CLOSEST_M = 0.15
MIN_GAP_M = 0.15
MIN_GAP_LARGE_ROOM_M = 0.30
LARGE_ROOM_M2 = 40.0
SUBSETS_PER_ANCHOR = 64


def min_gap(n_choices: int, room_size: float) -> float:
    return MIN_GAP_LARGE_ROOM_M if n_choices < 4 and room_size > LARGE_ROOM_M2 else MIN_GAP_M


def accept(distances: list[float], gap: float) -> bool:
    """The rejection rules: closest far enough, every two choices ``gap`` apart."""
    d = np.sort(np.asarray(distances))
    return bool(d[0] >= MIN_CLOSEST_M and np.all(np.diff(d) >= gap))


class _ObjectRelDistance(Task):
    n_choices: ClassVar[int]
    version = 2  # 2: categories from each source's own vocabulary
    max_per_scene: ClassVar[int] = 10

    def generate(self, scene: SceneMetadata, frames: FrameMetadata | None, rng: np.random.Generator) -> list[Draft]:
        objects = sorted(scene.objects, key=lambda o: o.instance_id)
        distances = instance_distances(objects)
        index = {o.instance_id: i for i, o in enumerate(objects)}
        gap = min_gap(self.n_choices, scene.room_size)
        anchors = list(unique_objects(scene).items())
        drafts: list[Draft] = []
        for a in rng.permutation(len(anchors)):
            if len(drafts) >= self.max_per_scene:
                break
            category, anchor = anchors[a]
            dist = category_distances(index[anchor.instance_id], objects, distances)
            cands = sorted(dist)
            subsets = list(combinations(range(len(cands)), self.n_choices))
            if not subsets:
                continue
            for s in rng.permutation(len(subsets))[:SUBSETS_PER_ANCHOR]:
                chosen = [cands[i] for i in subsets[s]]
                if accept([dist[c] for c in chosen], gap):
                    answer = min(chosen, key=lambda c: dist[c])
                    listed = [chosen[i] for i in rng.permutation(len(chosen))]
                    drafts.append(
                        Draft(
                            question=QUESTION.format(choices=", ".join(listed), category=category),
                            answer=answer,
                            choices=(answer, *[c for c in listed if c != answer]),
                            categories=(category, *listed),
                            extra={"distances_m": {c: dist[c] for c in chosen}},
                        )
                    )
                    break  # one question per anchor object
        return drafts


@register_task
class ObjectRelDistance(_ObjectRelDistance):
    name = "object_rel_distance"
    n_choices = 4


@register_task
class ObjectRelDistance3(_ObjectRelDistance):
    name = "object_rel_distance_3"
    n_choices = 3


@register_task
class ObjectRelDistance2(_ObjectRelDistance):
    name = "object_rel_distance_2"
    n_choices = 2
