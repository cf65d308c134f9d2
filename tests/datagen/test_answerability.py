"""Answerability predicates on scene graphs whose visibility is set by construction."""

import numpy as np
from factories import make_frames, make_scene, pose

from vlm3r.datagen import TASKS
from vlm3r.datagen.answerability import Visibility, keep_answerable, unanswerable_reason
from vlm3r.datagen.base import Draft
from vlm3r.schemas.scene import VisibleInstance

# 160 x 120 frames (factories.make_frames): 0.001 of the area = 19.2 -> 20 pixels to count as seen
BOXES = [
    (0, "chair", [1, 0, 0.5], [0.5, 0.5, 1]),
    (1, "chair", [2, 0, 0.5], [0.5, 0.5, 1]),
    (2, "table", [0, 2, 0.4], [1.0, 0.6, 0.8]),
    (3, "table", [0, 3, 0.4], [1.0, 0.6, 0.8]),
    (4, "sofa", [3, 3, 0.4], [2.0, 0.9, 0.8]),
    (5, "lamp", [-2, 1, 0.8], [0.3, 0.3, 1.6]),
]


def frames_with(pixels_per_frame: list[dict[int, int]]):
    """Frames 0, 10, 20, ... where frame k shows instance i with ``pixels_per_frame[k][i]`` pixels."""
    ids = [10 * k for k in range(len(pixels_per_frame))]
    fm = make_frames(ids, [pose([0, 0, 1.5])] * len(ids), [[] for _ in ids])
    for f, pix in zip(fm.frames, pixels_per_frame):
        f.visible = [VisibleInstance(instance_id=i, bbox_2d=[0, 0, 9, 9], pixel_count=n) for i, n in pix.items()]
    return fm


def test_counting_needs_every_instance_seen():
    scene = make_scene(BOXES)
    # chair 1 only ever covers 10 pixels (below the threshold); both tables are seen
    fm = frames_with([{0: 500, 1: 10, 2: 300}, {3: 25, 4: 400}])
    drafts = TASKS.get("object_counting").generate(scene, fm, np.random.default_rng(0))
    assert sorted(d.categories[0] for d in drafts) == ["chair", "table"]
    kept, dropped = keep_answerable("scene", drafts, Visibility.of(scene, fm))
    assert [d.categories for d in kept] == [("table",)]
    assert dropped == {"unseen": 1}
    # a lower threshold (10 / 19200 of the frame) makes chair 1 count as seen
    kept, _ = keep_answerable("scene", drafts, Visibility.of(scene, fm, min_area=10 / 19200))
    assert len(kept) == 2


def test_unique_category_tasks_drop_questions_naming_an_unseen_object():
    scene = make_scene(BOXES)
    fm = frames_with([{4: 500, 2: 100, 3: 100}, {0: 100, 1: 100}])  # the lamp is never seen
    vis = Visibility.of(scene, fm)
    drafts = TASKS.get("object_abs_distance").generate(scene, None, np.random.default_rng(0))
    assert {d.categories for d in drafts} == {("lamp", "sofa")}
    assert [unanswerable_reason("scene", d, vis) for d in drafts] == ["unseen"]
    fm.frames[0].visible.append(VisibleInstance(instance_id=5, bbox_2d=[0, 0, 9, 9], pixel_count=20))
    assert unanswerable_reason("scene", drafts[0], Visibility.of(scene, fm)) is None


def test_frame_questions_need_the_object_in_their_own_frame():
    scene = make_scene(BOXES)
    fm = frames_with([{4: 500}, {4: 5, 5: 300}])  # frame 0 shows the sofa, frame 10 the lamp
    vis = Visibility.of(scene, fm)
    on_frame = lambda fid, *cats: Draft("q", 1.0, categories=cats, frame_ids=(fid,))  # noqa: E731
    assert unanswerable_reason("frame", on_frame(0, "sofa"), vis) is None
    assert unanswerable_reason("frame", on_frame(10, "sofa"), vis) == "unseen_in_frame"  # 5 pixels there
    assert unanswerable_reason("frame", on_frame(10, "lamp"), vis) is None
    assert unanswerable_reason("frame", on_frame(0, "sofa", "lamp"), vis) == "unseen_in_frame"
    # camera-motion questions name nothing and always pass
    assert unanswerable_reason("none", Draft("q", 1.0, frame_ids=(0, 10)), vis) is None


def test_appearance_order_needs_its_first_sight_above_the_threshold():
    scene = make_scene(BOXES)
    # the sofa first appears with 3 pixels (frame 0) and only later fully; the lamp at once
    fm = frames_with([{4: 3}, {5: 100}, {4: 900}])
    vis = Visibility.of(scene, fm)
    assert unanswerable_reason("first_sight", Draft("q", "x", categories=("lamp",)), vis) is None
    assert unanswerable_reason("first_sight", Draft("q", "x", categories=("sofa", "lamp")), vis) == "first_sight_too_small"
    # the scene rule would have kept it (the sofa is seen later): the rules differ on purpose
    assert unanswerable_reason("scene", Draft("q", "x", categories=("sofa", "lamp")), vis) is None


def test_every_task_names_a_rule():
    rules = {n: TASKS.get(n).answerability for n in TASKS.names()}
    assert rules["camera_displacement"] == rules["camera_movement_direction"] == "none"
    assert rules["obj_appearance_order"] == "first_sight"
    assert all(rules[n] == "frame" for n in rules if n.startswith(("camera_obj_", "obj_obj_")))
    assert all(rules[n] == "scene" for n in rules if n.startswith(("object_", "room_", "route_")))
