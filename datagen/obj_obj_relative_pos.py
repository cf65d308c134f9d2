"""obj_obj_relative_pos: near/far, left/right, up/down of two objects as seen in one frame.

Both objects are categories visible exactly once in the frame. Their box corners are taken into the
frame's camera coordinates (OpenCV: x right, y down, z forward; metres). Along the variant's axis
(z: near/far, x: left/right, y: up/down, up = smaller y), A is "Near" / "Left" / "Up" when
``max(A) + 0.15 < min(B)`` and "Far" / "Right" / "Down" when ``min(A) > max(B) + 0.15``; pairs whose
extents are not separated by that margin are not asked. Two options; letters are balanced later.
Which object of a pair is A is drawn by the rng. At most ``max_per_scene`` questions per scene.

The variants are separate tasks named as the released VSTI-Bench's question types
(``obj_obj_relative_pos_nf`` / ``_lr`` / ``_ud``); ``family`` names the paper's task (Table 6).
"""

from __future__ import annotations

from itertools import combinations
from typing import ClassVar

import numpy as np

from vlm3r.datagen.base import Draft, Task
from vlm3r.datagen.camera_geometry import FrameView, SceneBoxes, sample_capped
from vlm3r.datagen.registry import register_task
from vlm3r.schemas.scene import FrameMetadata, SceneMetadata

QUESTION_NF = "In {frame}, relative to the camera, is the {a} near or far compared to the {b}?"
QUESTION_LR = "In {frame}, from the camera's point of view, is the {a} to the left or to the right of the {b}?"
QUESTION_UD = "In {frame}, from the camera's point of view, is the {a} up or down compared to the {b}?"
MARGIN = 0.15
"""Metres of clear separation required between the two boxes along the asked axis."""


class ObjObjRelativePos(Task):
    """Base of the three variants: subclasses set ``name``, ``axis`` (0 = x, 1 = y, 2 = z of the
    camera), ``labels`` (the answer when A is on the smaller / larger side) and ``question``."""

    family: ClassVar[str] = "obj_obj_relative_pos"
    version = 2  # 2: categories from each source's own vocabulary
    needs_frames = True
    answerability = "frame"
    axis: ClassVar[int]
    labels: ClassVar[tuple[str, str]]
    question: ClassVar[str]
    max_per_scene: ClassVar[int] = 20

    def generate(self, scene: SceneMetadata, frames: FrameMetadata | None, rng: np.random.Generator) -> list[Draft]:
        if frames is None or not scene.objects:
            return []
        boxes = SceneBoxes.from_scene(scene)
        view = FrameView.build(frames, boxes)
        coord = view.corners_in_camera(boxes)[..., self.axis]  # (N, M, 8)
        lo, hi = coord.min(axis=-1), coord.max(axis=-1)
        cands: list[tuple[int, str, str, int, int, int]] = []  # rank, cat a, cat b, k a, k b, side
        for r, once in enumerate(view.visible_once):
            for (ca, ka), (cb, kb) in combinations(once.items(), 2):
                if hi[r, ka] + MARGIN < lo[r, kb]:
                    cands.append((r, ca, cb, ka, kb, 0))
                elif lo[r, ka] > hi[r, kb] + MARGIN:
                    cands.append((r, ca, cb, ka, kb, 1))
        drafts = []
        for i in sample_capped(len(cands), self.max_per_scene, rng):
            r, ca, cb, ka, kb, side = cands[i]
            if rng.random() < 0.5:  # ask about the other object of the pair
                ca, cb, ka, kb, side = cb, ca, kb, ka, 1 - side
            answer, other = self.labels[side], self.labels[1 - side]
            drafts.append(
                Draft(
                    question=self.question.format(frame=view.label(r), a=ca, b=cb),
                    answer=answer,
                    choices=(answer, other),
                    categories=(ca, cb),
                    frame_ids=(int(view.frame_ids[r]),),
                    extra={
                        "frame_ranks": [r + 1],
                        "num_frames": view.num_frames,
                        "instance_ids": [int(boxes.instance_ids[ka]), int(boxes.instance_ids[kb])],
                        "camera_axis": "xyz"[self.axis],
                        "extent_a_m": [float(lo[r, ka]), float(hi[r, ka])],
                        "extent_b_m": [float(lo[r, kb]), float(hi[r, kb])],
                    },
                )
            )
        return drafts


@register_task
class ObjObjRelativePosNF(ObjObjRelativePos):
    name = "obj_obj_relative_pos_nf"
    axis = 2
    labels = ("Near", "Far")
    question = QUESTION_NF


@register_task
class ObjObjRelativePosLR(ObjObjRelativePos):
    name = "obj_obj_relative_pos_lr"
    axis = 0
    labels = ("Left", "Right")
    question = QUESTION_LR


@register_task
class ObjObjRelativePosUD(ObjObjRelativePos):
    name = "obj_obj_relative_pos_ud"
    axis = 1
    labels = ("Up", "Down")
    question = QUESTION_UD
