"""camera_obj_abs_dist on hand-built scenes whose answers are known by construction."""

import numpy as np
import pytest

from vlm3r.datagen import TASKS
from vlm3r.datagen.camera_obj_abs_dist import QUESTION, CameraObjAbsDist
from vlm3r.datagen.camera_geometry import point_box_distance

from factories import make_frames, make_scene, pose


def generate(scene, frames, seed=0, task=None):
    return (task or TASKS.get("camera_obj_abs_dist")).generate(scene, frames, np.random.default_rng(seed))


@pytest.mark.parametrize("yaw,pitch", [(0, 0), (90, 0), (130, -25), (-60, 20), (200, -10)])
def test_box_three_metres_ahead(yaw, pitch):
    cam = pose([3.0, -1.5, 1.4], yaw, pitch)
    rot, t = cam[:3, :3], cam[:3, 3]
    lengths = [0.8, 0.6, 1.0]  # depth (along the camera's z) 1.0 -> half-depth 0.5
    scene = make_scene([(7, "sofa", t + 3.0 * rot[:, 2], lengths, rot)])
    drafts = generate(scene, make_frames([12], [cam], [[7]]))
    assert len(drafts) == 1
    d = drafts[0]
    assert d.answer == 2.5 and d.extra["distance_m"] == pytest.approx(2.5)
    assert d.question == QUESTION.format(object="sofa", frame="frame 1 of 1")
    assert d.categories == ("sofa",) and d.frame_ids == (12,) and d.extra["instance_ids"] == [7]
    assert len(d.choices) == 4 and d.choices[0] == "2.5" and len(set(d.choices)) == 4


def test_regression_camera_centre_is_t_not_minus_rt_t():
    cam = pose([3.0, -1.5, 1.4], 130, -25)
    rot, t = cam[:3, :3], cam[:3, 3]
    centroid, lengths = t + 3.0 * rot[:, 2], np.array([0.8, 0.6, 1.0])
    wrong = float(point_box_distance(-rot.T @ t, centroid, lengths, rot))
    assert abs(round(wrong, 1) - 2.5) > 0.5  # the faulty convention would give another answer
    scene = make_scene([(1, "sofa", centroid, lengths, rot)])
    assert generate(scene, make_frames([0], [cam], [[1]]))[0].answer == 2.5


def test_only_categories_visible_exactly_once_and_distance_limits():
    cam = pose([0, 0, 1.2], 90)  # looking along +y
    scene = make_scene([
        (1, "chair", [-0.5, 3.0, 0.75], [0.4, 0.4, 1.5]),  # spans the camera height 1.2
        (2, "chair", [0.5, 3.0, 0.75], [0.4, 0.4, 1.5]),
        (3, "table", [0, 5.0, 0.75], [1.0, 1.0, 1.5]),     # 4.5 m
        (4, "lamp", [0, 12.0, 1.2], [0.2, 0.2, 0.2]),      # 10.9 m: too far
        (5, "tv", [0, 0.1, 1.2], [1.0, 0.4, 0.6]),         # camera inside: 0 m, too near
    ])
    frames = make_frames([0, 30, 60], [cam, cam, cam], [[1, 2, 3, 4, 5], [1], [2, 3]])
    got = {(d.frame_ids[0], d.categories[0]): d.extra["distance_m"] for d in generate(scene, frames)}
    # frame 0: two chairs visible -> no chair question there; lamp and tv fail the distance limits.
    chair = float(np.hypot(0.3, 2.8))  # nearest point (+-0.3, 2.8, 1.2)
    assert got.keys() == {(0, "table"), (30, "chair"), (60, "chair"), (60, "table")}
    assert got[(0, "table")] == pytest.approx(4.5) and got[(60, "table")] == pytest.approx(4.5)
    assert got[(30, "chair")] == pytest.approx(chair) and got[(60, "chair")] == pytest.approx(chair)


def test_frame_rank_among_sampled_frames_and_cap():
    cam = pose([0, 0, 1.2], 90)
    scene = make_scene([(i, f"obj{i}", [i - 5.0, 4.0, 1.0], [0.3, 0.3, 0.3]) for i in range(10)])
    ids = [90, 3, 45, 210, 7]  # stream ids, out of order
    frames = make_frames(ids, [cam] * 5, [list(range(10))] * 5)
    drafts = generate(scene, frames, seed=1)
    assert len(drafts) == CameraObjAbsDist.max_per_scene == 20  # 50 candidates, capped
    rank = {fid: k + 1 for k, fid in enumerate(sorted(ids))}
    for d in drafts:
        assert f"in frame {rank[d.frame_ids[0]]} of 5?" in d.question
    assert [d.question for d in drafts] == [d.question for d in generate(scene, frames, seed=1)]
    assert [d.question for d in drafts] != [d.question for d in generate(scene, frames, seed=2)]

    class Small(CameraObjAbsDist):
        max_per_scene = 3

    assert len(generate(scene, frames, task=Small())) == 3


def test_no_frames_no_questions():
    scene = make_scene([(1, "sofa", [0, 3, 0.5], [1, 1, 1])])
    assert generate(scene, None) == []
    assert generate(scene, make_frames([0], [pose([0, 0, 1], 90)], [[]])) == []
