"""camera_obj_rel_dist: which of 4 / 3 / 2 objects is closest to the camera in one frame.

Candidates of a frame are the categories visible exactly once in it whose instance is at least
0.5 m from the camera centre (distance to the nearest point of the solid box). A question takes
``n_choices`` of them whose distances are pairwise at least 0.15 m apart; the answer is the closest.
At most one question per frame and ``max_per_scene`` per scene, drawn by the rng.

The three variants are separate tasks named as the released VSTI-Bench's question types
(``camera_obj_rel_dist_v1`` = 4 choices, ``_v2`` = 3, ``_v3`` = 2), so its scorers and per-type
reports apply unchanged; ``family`` names the paper's task (Table 6) they add up to.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from vlm3r.datagen.base import Draft, Task
from vlm3r.datagen.camera_geometry import FrameView, SceneBoxes, random_subsets, sample_capped
from vlm3r.datagen.registry import register_task
from vlm3r.schemas.scene import FrameMetadata, SceneMetadata

QUESTION = (
    "Measuring from the closest point of each object, which of these objects ({objects}) is the "
    "closest to the camera (or the person filming) in {frame}?"
)
MIN_DISTANCE = 0.5
"""Metres: candidates nearer to the camera than this are not used."""
MIN_SEPARATION = 0.15
"""Metres: every two options' camera distances differ by at least this."""


class CameraObjRelDist(Task):
    """Base of the three variants; subclasses set ``name`` and ``n_choices``."""

    family: ClassVar[str] = "camera_obj_rel_dist"
    version = 2  # 2: categories from each source's own vocabulary
    needs_frames = True
    answerability = "frame"
    n_choices: ClassVar[int]
    max_per_scene: ClassVar[int] = 20

    def generate(self, scene: SceneMetadata, frames: FrameMetadata | None, rng: np.random.Generator) -> list[Draft]:
        if frames is None or not scene.objects:
            return []
        boxes = SceneBoxes.from_scene(scene)
        view = FrameView.build(frames, boxes)
        dist = view.camera_box_distances(boxes)  # (N, M)
        picks: list[tuple[int, list[str], list[int]]] = []
        for r, once in enumerate(view.visible_once):
            cats = [c for c, k in once.items() if dist[r, k] >= MIN_DISTANCE]
            subsets = random_subsets(len(cats), self.n_choices, rng)
            if not len(subsets):
                continue
            d = np.sort(dist[r, [once[c] for c in cats]][subsets], axis=1)
            ok = np.flatnonzero(np.all(np.diff(d, axis=1) >= MIN_SEPARATION, axis=1))
            if len(ok):
                chosen = subsets[ok[rng.integers(len(ok))]]
                order = sorted(chosen, key=lambda j: dist[r, once[cats[j]]])  # closest first
                picks.append((r, [cats[j] for j in order], [once[cats[j]] for j in order]))
        drafts = []
        for i in sample_capped(len(picks), self.max_per_scene, rng):
            r, cats, ks = picks[i]
            drafts.append(
                Draft(
                    question=QUESTION.format(objects=", ".join(sorted(cats)), frame=view.label(r)),
                    answer=cats[0],
                    choices=tuple(cats),
                    categories=tuple(cats),
                    frame_ids=(int(view.frame_ids[r]),),
                    extra={
                        "frame_ranks": [r + 1],
                        "num_frames": view.num_frames,
                        "instance_ids": [int(boxes.instance_ids[k]) for k in ks],
                        "distances_m": [float(dist[r, k]) for k in ks],
                    },
                )
            )
        return drafts


@register_task
class CameraObjRelDist4(CameraObjRelDist):
    name = "camera_obj_rel_dist_v1"
    n_choices = 4


@register_task
class CameraObjRelDist3(CameraObjRelDist):
    name = "camera_obj_rel_dist_v2"
    n_choices = 3


@register_task
class CameraObjRelDist2(CameraObjRelDist):
    name = "camera_obj_rel_dist_v3"
    n_choices = 2
