"""obj_appearance_order: the order in which four categories first appear in the video.

A category's first appearance is the timestamp of the first sampled frame in which any of its
instances is visible. Four categories are asked about when their first appearances are pairwise
more than 1 s apart; the distractors are three other orders.
"""

from __future__ import annotations

from itertools import combinations
from typing import ClassVar

import numpy as np

from vlm3r.datagen.base import Draft, Task
from vlm3r.datagen.registry import register_task
from vlm3r.schemas.scene import FrameMetadata, SceneMetadata

QUESTION = "What will be the first-time appearance order of the following categories in the video: {categories}?"
MIN_SEPARATION_S = 1.0
N_CATEGORIES = 4


def first_appearances(scene: SceneMetadata, frames: FrameMetadata) -> dict[str, float]:
    """Category -> timestamp (s) of its first visible instance among the sampled frames."""
    category_of = {o.instance_id: o.category for o in scene.objects}
    first: dict[str, float] = {}
    for f in sorted(frames.frames, key=lambda f: f.timestamp_s):
        for v in f.visible:
            c = category_of.get(v.instance_id)
            if c is not None and c not in first:
                first[c] = f.timestamp_s
    return first


@register_task
class ObjAppearanceOrder(Task):
    name = "obj_appearance_order"
    version = 2  # 2: categories from each source's own vocabulary
    needs_frames = True
    answerability = "first_sight"
    max_per_scene: ClassVar[int] = 5

    def generate(self, scene: SceneMetadata, frames: FrameMetadata | None, rng: np.random.Generator) -> list[Draft]:
        if frames is None:
            return []
        first = first_appearances(scene, frames)
        cats = sorted(first)
        subsets = [
            s for s in combinations(cats, N_CATEGORIES)
            if np.all(np.diff(np.sort([first[c] for c in s])) > MIN_SEPARATION_S)
        ]
        drafts = []
        for k in rng.permutation(len(subsets))[: self.max_per_scene]:
            subset = subsets[k]
            order = sorted(subset, key=lambda c: first[c])
            answer = ", ".join(order)
            wrong: list[str] = []
            while len(wrong) < 3:
                perm = ", ".join(subset[i] for i in rng.permutation(N_CATEGORIES))
                if perm != answer and perm not in wrong:
                    wrong.append(perm)
            listed = [subset[i] for i in rng.permutation(N_CATEGORIES)]
            drafts.append(
                Draft(
                    question=QUESTION.format(categories=", ".join(listed)),
                    answer=answer,
                    choices=(answer, *wrong),
                    categories=tuple(listed),
                    extra={"first_appearance_s": {c: first[c] for c in subset}},
                )
            )
        return drafts
