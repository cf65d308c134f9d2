"""camera_movement_direction on hand-built camera paths with known answers."""

import numpy as np
import pytest

from vlm3r.datagen import TASKS
from vlm3r.datagen.camera_movement_direction import DIRECTIONS, QUESTION, CameraMovementDirection, list_options

from factories import make_frames, make_scene, pose


ORIENTATIONS = [(0, 0), (90, 0), (130, -25), (-60, 20), (225, -10)]


def moved(start, right=0.0, down=0.0, forward=0.0, yaw=None, pitch=0.0):
    """The pose after moving by (right, down, forward) metres in START camera axes (optionally turned)."""
    end = start.copy() if yaw is None else pose(start[:3, 3], yaw, pitch)
    end[:3, 3] = start[:3, 3] + start[:3, :3] @ [right, down, forward]
    return end


def ask(start, end, seed=0):
    frames = make_frames([0, 10, 20, 30, 40, 50], [start] + [end] * 5, [[]] * 6)  # one pair: ranks 1 and 6
    return TASKS.get("camera_movement_direction").generate(make_scene(), frames, np.random.default_rng(seed))


@pytest.mark.parametrize("yaw,pitch", ORIENTATIONS)
def test_two_metres_forward_is_forward(yaw, pitch):
    start = pose([1.0, -2.0, 1.4], yaw, pitch)
    variants = set()
    for seed in range(12):
        (d,) = ask(start, moved(start, forward=2.0), seed)
        assert d.answer == "Forward" == d.choices[0]
        n = d.extra["n_choices"]
        variants.add(n)
        assert len(d.choices) == n and set(d.choices) <= set(DIRECTIONS) and len(set(d.choices)) == n
        assert d.extra["translation_start_camera_m"] == pytest.approx([0, 0, 2.0], abs=1e-9)
        options = list_options(list(d.choices))
        assert d.question == QUESTION.format(start="frame 1 of 6", end="frame 6 of 6", options=options)
        assert d.frame_ids == (0, 50)
    assert variants == {2, 3, 4}  # a 2 m move qualifies for every variant


@pytest.mark.parametrize("yaw,pitch", ORIENTATIONS[2:])
@pytest.mark.parametrize("move,want", [({"forward": -1.6}, "Backward"), ({"right": -1.3}, "Left"),
                                       ({"right": 1.8, "forward": 0.4}, "Right"),
                                       ({"right": 0.7, "forward": -1.5, "down": 2.0}, "Backward")])
def test_each_direction(yaw, pitch, move, want):
    start = pose([0.5, 0.5, 1.2], yaw, pitch)
    for seed in range(4):
        (d,) = ask(start, moved(start, yaw=yaw + 50, **move), seed)  # the end orientation is irrelevant
        assert d.answer == want


def test_thresholds_per_variant():
    start = pose([0, 0, 1.3], 130, -25)
    small = {ask(start, moved(start, right=0.8), s)[0].extra["n_choices"] for s in range(12)}
    assert small == {2, 3}  # 0.8 m counts for the 3- and 2-choice variants only
    assert ask(start, moved(start, right=0.45, forward=0.45)) == []  # nothing above 0.5 m
    assert ask(start, moved(start, down=3.0)) == []  # vertical moves are not asked


def test_partly_right_direction_not_offered_in_small_variants():
    start = pose([0, 0, 1.3], 40, -15)
    for seed in range(20):
        (d,) = ask(start, moved(start, right=0.9, forward=1.5), seed)
        assert d.answer == "Forward"
        if d.extra["n_choices"] < 4:
            assert "Right" not in d.choices
        else:
            assert set(d.choices) == set(DIRECTIONS)


def test_regression_uses_translation_column():
    # Camera turns 90 degrees and moves 2 m along its start forward axis. With -R^T t as centres the
    # apparent move would not be forward.
    start = pose([3.0, 1.0, 1.4], 0, 0)
    end = moved(start, forward=2.0, yaw=90)
    c0, c1 = -start[:3, :3].T @ start[:3, 3], -end[:3, :3].T @ end[:3, 3]
    wrong = start[:3, :3].T @ (c1 - c0)
    assert not wrong[2] > abs(wrong[0])  # the faulty convention would not answer Forward
    assert ask(start, end)[0].answer == "Forward"


def test_cap_and_list_options():
    poses = [pose([0, 0.2 * k, 1.2], 90, -10) for k in range(32)]  # walking forward
    frames = make_frames(list(range(32)), poses, [[]] * 32)
    drafts = TASKS.get("camera_movement_direction").generate(make_scene(), frames, np.random.default_rng(0))
    assert len(drafts) == CameraMovementDirection.max_per_scene
    assert all(d.answer == "Forward" for d in drafts)
    assert list_options(["Right", "Forward"]) == "Forward and Right"
    assert list_options(["Left", "Backward", "Forward"]) == "Forward, Backward, and Left"
