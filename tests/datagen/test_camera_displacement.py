"""camera_displacement on hand-built camera paths with known answers."""

import numpy as np
import pytest

from vlm3r.datagen import TASKS
from vlm3r.datagen.camera_displacement import QUESTION, CameraDisplacement, frame_pairs

from factories import make_frames, make_scene, pose


def generate(frames, seed=0, task=None):
    return (task or TASKS.get("camera_displacement")).generate(make_scene(), frames, np.random.default_rng(seed))


class Uncapped(CameraDisplacement):
    max_per_scene = 10_000


@pytest.mark.parametrize("yaw,pitch", [(0, 0), (90, 0), (130, -25), (-60, 20), (225, -10)])
def test_two_metres_forward(yaw, pitch):
    start = pose([1.0, -2.0, 1.4], yaw, pitch)
    end = start.copy()
    end[:3, 3] += 2.0 * start[:3, 2]
    # Six frames: rank 1 at the start, ranks 2-6 two metres ahead; only (1, 6) is 5 ranks apart.
    frames = make_frames([0, 10, 20, 30, 40, 50], [start] + [end] * 5, [[]] * 6)
    (d,) = generate(frames)
    assert d.answer == 2.0 and d.extra["distance_m"] == pytest.approx(2.0)
    assert d.question == QUESTION.format(start="frame 1 of 6", end="frame 6 of 6")
    assert d.frame_ids == (0, 50) and d.choices[0] == "2.0" and len(set(d.choices)) == 4


def test_regression_rotating_camera_uses_translation_column():
    a = pose([3.0, 1.0, 1.5], 20, -10)
    b = pose([4.2, 2.6, 1.2], 160, -30)  # moved 2.02 m and turned
    want = float(np.linalg.norm(b[:3, 3] - a[:3, 3]))
    wrong = float(np.linalg.norm(-b[:3, :3].T @ b[:3, 3] + a[:3, :3].T @ a[:3, 3]))
    assert abs(round(wrong, 1) - round(want, 1)) > 0.5  # the faulty -R^T t would change the answer
    (d,) = generate(make_frames(list(range(6)), [a] * 5 + [b], [[]] * 6))
    assert d.answer == round(want, 1) and d.extra["distance_m"] == pytest.approx(want)


def test_rank_gaps_and_distance_limits():
    # 40 frames, 0.1 m per rank along world x (camera turning as it goes): distance = 0.1 * gap.
    poses = [pose([0.1 * k, 0, 1.3], 7 * k, -15) for k in range(40)]
    drafts = generate(make_frames([3 * k for k in range(40)], poses, [[]] * 40), task=Uncapped())
    ranks = {tuple(d.extra["frame_ranks"]) for d in drafts}
    assert ranks == {(i + 1, j + 1) for i in range(40) for j in range(i + 5, min(i + 31, 40))}
    for d in drafts:
        i, j = d.extra["frame_ranks"]
        assert d.answer == round(0.1 * (j - i), 1)
        assert d.frame_ids == (3 * (i - 1), 3 * (j - 1))
    # Capped by default, reproducibly.
    capped = generate(make_frames(list(range(40)), poses, [[]] * 40), seed=4)
    assert len(capped) == 20 and capped == generate(make_frames(list(range(40)), poses, [[]] * 40), seed=4)


def test_too_small_or_too_large_moves_not_asked():
    still = pose([1, 1, 1.2], 45)
    assert generate(make_frames(list(range(6)), [still] * 6, [[]] * 6)) == []
    tiny = pose([1.15, 1, 1.2], 45)
    assert generate(make_frames(list(range(6)), [still] * 5 + [tiny], [[]] * 6)) == []
    far = pose([12.0, 1, 1.2], 45)
    assert generate(make_frames(list(range(6)), [still] * 5 + [far], [[]] * 6)) == []


def test_frame_pairs():
    p = frame_pairs(32)
    gaps = p[:, 1] - p[:, 0]
    assert gaps.min() == 5 and gaps.max() == 30 and len(p) == sum(32 - g for g in range(5, 31))
    assert frame_pairs(5).shape == (0, 2)
