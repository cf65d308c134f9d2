"""camera_displacement: how far the camera moved between two sampled frames.

Frame pairs whose ranks differ by 5 to 30; the answer is the distance (metres) between the two camera
centres (translation columns of camera-to-world), kept in [0.2, 10] m and rounded to 0.1 m. At most
``max_per_scene`` pairs per scene, drawn by the rng.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from vlm3r.datagen.base import Draft, Task
from vlm3r.datagen.camera_geometry import FrameView, SceneBoxes, sample_capped
from vlm3r.datagen.numeric_choices import numeric_choices
from vlm3r.datagen.registry import register_task
from vlm3r.schemas.scene import FrameMetadata, SceneMetadata

QUESTION = "Approximately how far (in meters) did the camera move between {start} and {end}?"
MIN_GAP, MAX_GAP = 5, 30
"""Rank gap between the two frames of a pair (inclusive)."""
MIN_DISTANCE, MAX_DISTANCE = 0.2, 10.0


def frame_pairs(num_frames: int, min_gap: int = MIN_GAP, max_gap: int = MAX_GAP) -> np.ndarray:
    """(P, 2) 0-based rank pairs (i, j) with ``min_gap <= j - i <= max_gap``, in (i, j) order."""
    i, j = np.triu_indices(num_frames, k=1)
    keep = (j - i >= min_gap) & (j - i <= max_gap)
    return np.stack([i[keep], j[keep]], axis=1)


@register_task
class CameraDisplacement(Task):
    """Numeric; carries four numeric options (correct first)."""

    name = "camera_displacement"
    family: ClassVar[str] = "camera_displacement"
    version = 1
    needs_frames = True
    answerability = "none"
    numeric = True  # scored by MRA; the four options are for the multiple-choice form
    max_per_scene: ClassVar[int] = 20

    def generate(self, scene: SceneMetadata, frames: FrameMetadata | None, rng: np.random.Generator) -> list[Draft]:
        if frames is None:
            return []
        view = FrameView.build(frames, SceneBoxes.from_scene(scene))
        pairs = frame_pairs(view.num_frames)
        dist = np.linalg.norm(view.centers[pairs[:, 1]] - view.centers[pairs[:, 0]], axis=1)
        keep = np.flatnonzero((dist >= MIN_DISTANCE) & (dist <= MAX_DISTANCE))
        drafts = []
        for idx in keep[sample_capped(len(keep), self.max_per_scene, rng)]:
            i, j = (int(x) for x in pairs[idx])
            answer = round(float(dist[idx]), 1)
            drafts.append(
                Draft(
                    question=QUESTION.format(start=view.label(i), end=view.label(j)),
                    answer=answer,
                    choices=numeric_choices(answer, rng),
                    frame_ids=(int(view.frame_ids[i]), int(view.frame_ids[j])),
                    extra={
                        "frame_ranks": [i + 1, j + 1],
                        "num_frames": view.num_frames,
                        "distance_m": float(dist[idx]),
                    },
                )
            )
        return drafts
