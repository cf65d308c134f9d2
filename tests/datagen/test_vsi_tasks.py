"""The metadata-driven VSI-Bench tasks on hand-built scenes whose answers are known by construction."""

import numpy as np
import pytest

from vlm3r.datagen import TASKS
from vlm3r.datagen.object_rel_direction import direction_label
from vlm3r.datagen.obj_appearance_order import first_appearances
from vlm3r.schemas.scene import Frame, FrameMetadata, Intrinsics, VisibleInstance

UNIT = (0.5, 0.5, 0.5)


def gen(task, scene, frames=None, seed=0):
    return TASKS.get(task).generate(scene, frames, np.random.default_rng(seed))


def test_size_uses_longest_side_of_unique_objects_only(make_meta_scene):
    scene = make_meta_scene([("table", (0, 0, 0.4), (1.234, 0.8, 0.75), 30), ("chair", (2, 0, 0.45), UNIT, 0),
                             ("chair", (3, 0, 0.45), UNIT, 0)])
    (d,) = gen("object_size_estimation", scene)
    assert d.answer == 123 and d.categories == ("table",) and d.choices[0] == "123"
    assert len(set(d.choices)) == 4 and all(30 <= int(c) <= 216 for c in d.choices)


def test_room_size(make_meta_scene):
    (d,) = gen("room_size_estimation", make_meta_scene([("bed", (0, 0, 0.3), UNIT, 0)], room_size=23.456))
    assert d.answer == 23.5 and d.choices[0] == "23.5"


def test_abs_distance_face_to_face_and_threshold(make_meta_scene):
    # sofa and tv exactly 1.00 m apart face to face (rotated frame: both yawed 37 degrees)
    yaw = 37.0
    u = np.array([np.cos(np.radians(yaw)), np.sin(np.radians(yaw)), 0])
    scene = make_meta_scene([
        ("sofa", u * 0.0 + [0, 0, 0.4], (2.0, 0.9, 0.8), yaw),
        ("tv", u * (1.0 + 1.0 + 0.05) + [0, 0, 0.4], (2.0, 0.1, 0.8), yaw + 90),
    ])
    drafts = {frozenset(d.categories): d for d in gen("object_abs_distance", scene)}
    d = drafts[frozenset({"sofa", "tv"})]
    assert d.answer == 1.0 and d.extra["distance_m"] == pytest.approx(1.0, abs=1e-9)


def test_abs_distance_skips_under_20cm(make_meta_scene):
    scene = make_meta_scene([("bed", (0, 0, 0.3), (2, 1.6, 0.6), 0), ("nightstand", (1.15, 0, 0.3), UNIT, 0)])
    assert gen("object_abs_distance", scene) == []  # 0.15 m gap


def test_rel_distance_answer_and_rejections(make_meta_scene):
    base = [("bed", (0, 0, 0.3), (1, 1, 0.6), 0)]
    far = [("chair", (1.0, 0, 0.3), UNIT, 0), ("table", (0, 2.0, 0.3), UNIT, 0), ("lamp", (-3.0, 0, 0.3), UNIT, 0),
           ("door", (0, -4.0, 0.3), UNIT, 0)]
    (d,) = [x for x in gen("object_rel_distance", make_meta_scene(base + far)) if x.categories[0] == "bed"]
    assert d.answer == "chair" and set(d.choices) == {"chair", "table", "lamp", "door"}
    assert d.extra["distances_m"]["chair"] == pytest.approx(0.25)
    # Two choices 0.1 m apart in distance -> rejected.
    close = [("chair", (1.0, 0, 0.3), UNIT, 0), ("table", (0, 1.1, 0.3), UNIT, 0), ("lamp", (-3.0, 0, 0.3), UNIT, 0),
             ("door", (0, -4.0, 0.3), UNIT, 0)]
    assert not [x for x in gen("object_rel_distance", make_meta_scene(base + close)) if x.categories[0] == "bed"]
    # Closest under 0.15 m -> rejected.
    touching = [("chair", (0.8, 0, 0.3), UNIT, 0)] + far[1:]
    assert not [x for x in gen("object_rel_distance", make_meta_scene(base + touching)) if x.categories[0] == "bed"]


def test_rel_distance_measures_to_closest_instance_and_large_room_gap(make_meta_scene):
    scene = [("bed", (0, 0, 0.3), (1, 1, 0.6), 0), ("chair", (5.0, 0, 0.3), UNIT, 0), ("chair", (0, 1.0, 0.3), UNIT, 0),
             ("table", (-1.45, 0, 0.3), UNIT, 0)]
    # 2-choice chair (0.25 m via the second chair) vs table (0.7 m): gap 0.45 -> asked in any room.
    for room in (20.0, 50.0):
        got = [x for x in gen("object_rel_distance_2", make_meta_scene(scene, room_size=room)) if x.categories[0] == "bed"]
        assert got and got[0].answer == "chair"
    # Gap of 0.2 m: fine in a small room, rejected for 2 choices in a room over 40 m^2.
    scene[3] = ("table", (-1.2, 0, 0.3), UNIT, 0)  # 0.45 m vs 0.25 m
    assert [x for x in gen("object_rel_distance_2", make_meta_scene(scene, room_size=20.0)) if x.categories[0] == "bed"]
    assert not [x for x in gen("object_rel_distance_2", make_meta_scene(scene, room_size=50.0)) if x.categories[0] == "bed"]


@pytest.mark.parametrize(
    "q_xy, hard, medium, easy",
    [((-1, 1), "front-left", "left", "left"), ((1, 1), "front-right", "right", "right"),
     ((-0.5, -2), "back-left", "back", None), ((0.5, -2), "back-right", "back", None),
     ((-1, 0.2), "front-left", "left", "left")],
)
def test_direction_bins(q_xy, hard, medium, easy):
    p, o = np.array([0.0, 0.0]), np.array([0.0, 2.0])  # standing at the origin facing +y
    q = np.array(q_xy, float) * 2
    corners = q + np.array([[dx, dy] for dx in (-0.1, 0.1) for dy in (-0.1, 0.1)] * 2)
    for level, want in (("hard", hard), ("medium", medium), ("easy", easy)):
        assert direction_label(p, o, q, corners, level) == want


def test_direction_ambiguity_rules():
    p, o = np.array([0.0, 0.0]), np.array([0.0, 2.0])
    small = np.array([[dx, dy] for dx in (-0.05, 0.05) for dy in (-0.05, 0.05)] * 2)
    # 5 degrees left of straight ahead: within 10 degrees of the 0/360 edge for every level.
    q = 2 * np.array([-np.sin(np.radians(5)), np.cos(np.radians(5))])
    assert all(direction_label(p, o, q, q + small, lvl) is None for lvl in ("hard", "medium", "easy"))
    # 95 degrees: near hard's 90 edge (rejected) but fine for medium (left) and easy (left).
    q = 2 * np.array([-np.sin(np.radians(95)), np.cos(np.radians(95))])
    assert direction_label(p, o, q, q + small, "hard") is None
    assert direction_label(p, o, q, q + small, "medium") == "left"
    # 130 degrees: near medium's 135 edge; hard says back-left.
    q = 2 * np.array([-np.sin(np.radians(130)), np.cos(np.radians(130))])
    assert direction_label(p, o, q, q + small, "medium") is None
    assert direction_label(p, o, q, q + small, "hard") == "back-left"
    # Centroid clearly front-left (45 degrees) but a huge box straddles the edges: > 2 corners elsewhere.
    q = 2 * np.array([-np.sin(np.radians(45)), np.cos(np.radians(45))])
    big = q + np.array([[dx, dy] for dx in (-3, 3) for dy in (-3, 3)] * 2)
    assert direction_label(p, o, q, big, "hard") is None


@pytest.mark.parametrize(("deg", "want"), [(130, None), (140, None), (170, None), (185, None), (220, None),
                                           (230, None), (124, "left"), (236, "right"), (60, "left"), (300, "right")])
def test_easy_never_asks_the_back_sector(deg, want):
    """VSI-Bench's easy variant: nothing in [135, 225) is asked, and the 10-degree margin sits at 135 and
    225 (so 130 and 230 are rejected, 124 and 236 kept); 180 is no edge of its own."""
    p, o = np.array([0.0, 0.0]), np.array([0.0, 2.0])
    small = np.array([[dx, dy] for dx in (-0.05, 0.05) for dy in (-0.05, 0.05)] * 2)
    q = 2 * np.array([-np.sin(np.radians(deg)), np.cos(np.radians(deg))])
    assert direction_label(p, o, q, q + small, "easy") == want


def test_easy_task_options_are_left_and_right(make_meta_scene):
    scene = make_meta_scene([("bed", (0, 0, 0.3), UNIT, 0), ("door", (0, 3, 1.0), (0.9, 0.05, 2.0), 0),
                             ("lamp", (-2, 2, 0.5), UNIT, 0), ("sofa", (0.3, -2.5, 0.4), UNIT, 0)])
    drafts = gen("object_rel_direction_easy", scene)
    assert drafts and all(sorted(d.choices) == ["left", "right"] for d in drafts)


def test_rel_direction_task_on_scene(make_meta_scene):
    scene = make_meta_scene([("bed", (0, 0, 0.3), UNIT, 0), ("door", (0, 3, 1.0), (0.9, 0.05, 2.0), 0),
                             ("lamp", (-2, 2, 0.5), UNIT, 0)])
    got = {d.categories: d.answer for d in gen("object_rel_direction_hard", scene)}
    assert got[("bed", "door", "lamp")] == "front-left"
    assert got[("door", "bed", "lamp")] == "front-right"  # facing -y from the door: the lamp is to the right


def make_frames(visible_by_time):
    frames = [
        Frame(frame_id=i, timestamp_s=t, camera_to_world=np.eye(4).tolist(),
              visible=[VisibleInstance(instance_id=k, bbox_2d=[0, 0, 1, 1], pixel_count=50) for k in ids])
        for i, (t, ids) in enumerate(visible_by_time)
    ]
    return FrameMetadata(scene_id="s0", dataset="test", intrinsics=Intrinsics(fx=1, fy=1, cx=0, cy=0, width=2, height=2),
                         fps=30, num_stream_frames=len(frames), num_valid_frames=len(frames),
                         visibility_source="instance_masks", frames=frames)


def test_appearance_order(make_meta_scene):
    scene = make_meta_scene([(c, (i, 0, 0.3), UNIT, 0) for i, c in enumerate(["bed", "chair", "door", "lamp", "tv", "chair"])])
    frames = make_frames([(0.0, [1]), (1.5, [1, 5]), (3.0, [0]), (4.6, [3]), (5.0, [2]), (8.0, [4])])
    assert first_appearances(scene, frames) == {"chair": 0.0, "bed": 3.0, "lamp": 4.6, "door": 5.0, "tv": 8.0}
    drafts = gen("obj_appearance_order", scene, frames)
    assert drafts
    for d in drafts:
        cats = d.answer.split(", ")
        times = [first_appearances(scene, frames)[c] for c in cats]
        assert times == sorted(times) and np.all(np.diff(times) > 1.0)
        assert "lamp" not in cats or "door" not in cats  # 0.4 s apart: never together
        assert len(set(d.choices)) == 4 and all(sorted(c.split(", ")) == sorted(cats) for c in d.choices)
    assert gen("obj_appearance_order", scene, None) == []
