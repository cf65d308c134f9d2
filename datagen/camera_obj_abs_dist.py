"""camera_obj_abs_dist: distance from the camera to an object's nearest point in one frame.

For every sampled frame and every category visible exactly once in it, the distance (metres) from
the frame's camera centre to the nearest point of that instance's solid oriented box; kept when in
[0.2, 10] m, rounded to 0.1 m. At most ``max_per_scene`` questions per scene, drawn by the rng.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from vlm3r.datagen.base import Draft, Task
from vlm3r.datagen.camera_geometry import FrameView, SceneBoxes, sample_capped
from vlm3r.datagen.numeric_choices import numeric_choices
from vlm3r.datagen.registry import register_task
from vlm3r.schemas.scene import FrameMetadata, SceneMetadata

QUESTION = (
    "What is the approximate distance (in meters) between the camera (or the person filming) and the "
    "nearest point of the {object} in {frame}?"
)
MIN_DISTANCE, MAX_DISTANCE = 0.2, 10.0


@register_task
class CameraObjAbsDist(Task):
    """Numeric; carries four numeric options (correct first)."""

    name = "camera_obj_abs_dist"
    family: ClassVar[str] = "camera_obj_abs_dist"
    version = 2  # 2: categories from each source's own vocabulary
    needs_frames = True
    answerability = "frame"
    numeric = True  # scored by MRA; the four options are for the multiple-choice form
    max_per_scene: ClassVar[int] = 20

    def generate(self, scene: SceneMetadata, frames: FrameMetadata | None, rng: np.random.Generator) -> list[Draft]:
        if frames is None or not scene.objects:
            return []
        boxes = SceneBoxes.from_scene(scene)
        view = FrameView.build(frames, boxes)
        dist = view.camera_box_distances(boxes)  # (N, M)
        cands = [
            (r, cat, k)
            for r, once in enumerate(view.visible_once)
            for cat, k in once.items()
            if MIN_DISTANCE <= dist[r, k] <= MAX_DISTANCE
        ]
        drafts = []
        for i in sample_capped(len(cands), self.max_per_scene, rng):
            r, cat, k = cands[i]
            answer = round(float(dist[r, k]), 1)
            drafts.append(
                Draft(
                    question=QUESTION.format(object=cat, frame=view.label(r)),
                    answer=answer,
                    choices=numeric_choices(answer, rng),
                    categories=(cat,),
                    frame_ids=(int(view.frame_ids[r]),),
                    extra={
                        "frame_ranks": [r + 1],
                        "num_frames": view.num_frames,
                        "instance_ids": [int(boxes.instance_ids[k])],
                        "distance_m": float(dist[r, k]),
                    },
                )
            )
        return drafts
