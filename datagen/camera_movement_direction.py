"""camera_movement_direction: the main direction the camera moved between two frames.

Frame pairs whose ranks differ by 5 to 30 (as for camera_displacement). The move in the START
camera's axes is ``d = R_start^T (c_end - c_start)`` (x right, y down, z forward; metres). Only x
(Right / Left) and z (Forward / Backward) are considered; an axis counts when ``|d| > 1.0 m`` for
the 4-choice variant and ``> 0.5 m`` for the 3- and 2-choice variants; the answer is the counted
axis with the larger component. Each eligible pair gets one variant, drawn by the rng among those it
qualifies for. The 3- and 2-choice variants never offer the direction of the other axis when that
axis counts too (it would be partly right); the 4-choice variant always offers all four.

One task, as in the released VSTI-Bench (question type ``camera_movement_direction`` with 4-, 3-
and 2-option questions); ``extra["n_choices"]`` tells the variants apart.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from vlm3r.datagen.base import Draft, Task
from vlm3r.datagen.camera_displacement import frame_pairs
from vlm3r.datagen.camera_geometry import FrameView, SceneBoxes, relative_translation, sample_capped
from vlm3r.datagen.registry import register_task
from vlm3r.schemas.scene import FrameMetadata, SceneMetadata

QUESTION = (
    "Between {start} and {end}, in which direction did the camera mainly move, relative to the way it "
    "was facing in {start}? The options are {options}."
)
DIRECTIONS = ("Forward", "Backward", "Left", "Right")
"""Canonical order, also the order options are listed in the question text."""
THRESHOLDS = {4: 1.0, 3: 0.5, 2: 0.5}
"""Metres an axis component must exceed to count, per number of choices."""


def direction_of(d: np.ndarray, axis: int) -> str:
    """Label of the move ``d`` (start-camera axes) along camera axis 0 (x) or 2 (z)."""
    if axis == 0:
        return "Right" if d[0] > 0 else "Left"
    return "Forward" if d[2] > 0 else "Backward"


def list_options(options: list[str]) -> str:
    """``"A and B"``, ``"A, B, and C"``, ``"A, B, C, and D"`` in canonical direction order."""
    opts = [o for o in DIRECTIONS if o in options]
    return " and ".join(opts) if len(opts) == 2 else ", ".join(opts[:-1]) + ", and " + opts[-1]


@register_task
class CameraMovementDirection(Task):
    """Multiple choice only (the answer is a direction word)."""

    name = "camera_movement_direction"
    family: ClassVar[str] = "camera_movement_direction"
    version = 1
    needs_frames = True
    answerability = "none"
    max_per_scene: ClassVar[int] = 20

    def generate(self, scene: SceneMetadata, frames: FrameMetadata | None, rng: np.random.Generator) -> list[Draft]:
        if frames is None:
            return []
        view = FrameView.build(frames, SceneBoxes.from_scene(scene))
        pairs = frame_pairs(view.num_frames)
        d = relative_translation(view.poses[pairs[:, 0]], view.poses[pairs[:, 1]])  # (P, 3)
        ax, az = np.abs(d[:, 0]), np.abs(d[:, 2])
        big = np.maximum(ax, az)
        keep = np.flatnonzero((big > min(THRESHOLDS.values())) & (ax != az))
        drafts = []
        for idx in keep[sample_capped(len(keep), self.max_per_scene, rng)]:
            i, j = (int(x) for x in pairs[idx])
            variants = [n for n, t in THRESHOLDS.items() if big[idx] > t]
            n = int(variants[rng.integers(len(variants))])
            main, other = (0, 2) if ax[idx] > az[idx] else (2, 0)
            answer = direction_of(d[idx], main)
            rest = [o for o in DIRECTIONS if o != answer]
            if n < 4:
                if abs(d[idx, other]) > THRESHOLDS[n]:
                    rest.remove(direction_of(d[idx], other))
                rest = [rest[k] for k in sorted(rng.choice(len(rest), size=n - 1, replace=False))]
            choices = (answer, *rest)
            drafts.append(
                Draft(
                    question=QUESTION.format(
                        start=view.label(i), end=view.label(j), options=list_options(list(choices))
                    ),
                    answer=answer,
                    choices=choices,
                    frame_ids=(int(view.frame_ids[i]), int(view.frame_ids[j])),
                    extra={
                        "frame_ranks": [i + 1, j + 1],
                        "num_frames": view.num_frames,
                        "n_choices": n,
                        "translation_start_camera_m": [float(x) for x in d[idx]],
                    },
                )
            )
        return drafts
