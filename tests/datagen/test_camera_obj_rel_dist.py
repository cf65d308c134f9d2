"""camera_obj_rel_dist (v1/v2/v3 = 4/3/2 choices) on hand-built scenes with known answers."""

import numpy as np
import pytest

from vlm3r.datagen import TASKS
from vlm3r.datagen.camera_obj_rel_dist import QUESTION

from factories import make_frames, make_scene, pose


CAM = pose([0, 0, 1.2], 90)  # looking along +y from 1.2 m height
# Near-face distances from the camera (boxes span the camera height, centred on its line of sight).
NEAR = {"bed": 1.0, "tv": 1.1, "sofa": 1.5, "table": 2.0, "desk": 2.6, "lamp": 0.3}
IDS = {c: k for k, c in enumerate(NEAR)}


def line_scene():
    return make_scene([(IDS[c], c, [0, d + 0.25, 1.0], [0.6, 0.5, 2.0]) for c, d in NEAR.items()])


def generate(name, scene, frames, seed=0):
    return TASKS.get(name).generate(scene, frames, np.random.default_rng(seed))


@pytest.mark.parametrize("name,n", [("camera_obj_rel_dist_v1", 4), ("camera_obj_rel_dist_v2", 3),
                                    ("camera_obj_rel_dist_v3", 2)])
def test_answer_is_closest_with_separated_options(name, n):
    frames = make_frames([0, 8, 16], [CAM] * 3, [list(IDS.values())] * 3)
    seen_answers = set()
    for seed in range(8):
        drafts = generate(name, line_scene(), frames, seed)
        assert len(drafts) == 3  # at most one question per frame
        for d in drafts:
            assert len(d.choices) == n and set(d.choices) == set(d.categories)
            assert "lamp" not in d.choices  # nearer than 0.5 m
            dists = [NEAR[c] for c in d.choices]
            assert d.extra["distances_m"] == pytest.approx(dists)
            assert d.answer == d.choices[0] == min(d.choices, key=NEAR.get)
            gaps = np.diff(sorted(dists))
            assert (gaps >= 0.15 - 1e-9).all()  # so bed and tv never appear together
            k = sorted([0, 8, 16]).index(d.frame_ids[0]) + 1
            assert d.question == QUESTION.format(objects=", ".join(sorted(d.choices)), frame=f"frame {k} of 3")
            seen_answers.add(d.answer)
    assert "bed" in seen_answers


def test_options_too_close_are_not_asked():
    scene = line_scene()
    two = make_frames([0], [CAM], [[IDS["bed"], IDS["tv"]]])  # 1.0 vs 1.1 m
    assert generate("camera_obj_rel_dist_v3", scene, two) == []
    near = make_frames([0], [CAM], [[IDS["lamp"], IDS["desk"]]])  # lamp at 0.3 m is no candidate
    assert generate("camera_obj_rel_dist_v3", scene, near) == []
    ok = make_frames([0], [CAM], [[IDS["tv"], IDS["desk"]]])
    (d,) = generate("camera_obj_rel_dist_v3", scene, ok)
    assert d.answer == "tv" and d.choices == ("tv", "desk")
    # Only 3 usable candidates cannot make a 4-choice question.
    three = make_frames([0], [CAM], [[IDS["bed"], IDS["sofa"], IDS["desk"]]])
    assert generate("camera_obj_rel_dist_v1", scene, three) == []
    assert generate("camera_obj_rel_dist_v2", scene, three)[0].answer == "bed"


def test_category_seen_twice_in_a_frame_is_not_a_candidate():
    scene = make_scene([(0, "chair", [-1, 2.25, 1.0], [0.5, 0.5, 2.0]), (1, "chair", [1, 4.25, 1.0], [0.5, 0.5, 2.0]),
                        (2, "desk", [0, 3.25, 1.0], [0.5, 0.5, 2.0])])
    assert generate("camera_obj_rel_dist_v3", scene, make_frames([0], [CAM], [[0, 1, 2]])) == []
    (d,) = generate("camera_obj_rel_dist_v3", scene, make_frames([0], [CAM], [[1, 2]]))
    assert d.answer == "desk" and d.extra["instance_ids"] == [2, 1]


def test_rotated_camera_uses_its_own_centre():
    # A tilted, displaced camera: distances are from its translation column.
    cam = pose([2.0, -3.0, 1.5], 130, -20)
    rot, t = cam[:3, :3], cam[:3, 3]
    scene = make_scene([(0, "sofa", t + 1.5 * rot[:, 2], [1, 1, 1], rot),
                        (1, "bed", t + 3.0 * rot[:, 2], [1, 1, 1], rot)])
    (d,) = generate("camera_obj_rel_dist_v3", scene, make_frames([5], [cam], [[0, 1]]))
    assert d.answer == "sofa" and d.extra["distances_m"] == pytest.approx([1.0, 2.5])
