"""obj_obj_relative_pos (nf / lr / ud) with boxes placed in the camera frame by construction."""

import numpy as np
import pytest

from vlm3r.datagen import TASKS
from vlm3r.datagen.obj_obj_relative_pos import QUESTION_LR, QUESTION_NF, QUESTION_UD

from factories import make_frames, make_scene, pose


ORIENTATIONS = [(0, 0), (90, -20), (130, -25), (-70, 15)]
SIZE = [0.4, 0.4, 0.4]  # half-extent 0.2 along every camera axis


def two_box_scene(cam, a_cam, b_cam):
    """A 'bed' and a 'sofa' whose centres are given in camera coordinates, axes along the camera's."""
    rot, t = cam[:3, :3], cam[:3, 3]
    return make_scene([(0, "bed", t + rot @ np.asarray(a_cam, float), SIZE, rot),
                       (1, "sofa", t + rot @ np.asarray(b_cam, float), SIZE, rot)])


def ask(name, scene, cam, seed=0):
    frames = make_frames([3], [cam], [[0, 1]])
    return TASKS.get(name).generate(scene, frames, np.random.default_rng(seed))


CASES = [  # task, bed position, sofa position (camera coords), bed's label, sofa's label, template
    ("obj_obj_relative_pos_lr", [-1.0, 0, 3], [1.0, 0, 3], "Left", "Right", QUESTION_LR),
    ("obj_obj_relative_pos_nf", [0, 0, 2.0], [0.3, 0, 4.0], "Near", "Far", QUESTION_NF),
    ("obj_obj_relative_pos_ud", [0.2, -1.0, 3], [0, 1.0, 3], "Up", "Down", QUESTION_UD),
]


@pytest.mark.parametrize("yaw,pitch", ORIENTATIONS)
@pytest.mark.parametrize("name,bed,sofa,bed_label,sofa_label,template", CASES)
def test_each_side_by_construction(yaw, pitch, name, bed, sofa, bed_label, sofa_label, template):
    cam = pose([1.0, -2.0, 1.3], yaw, pitch)
    scene = two_box_scene(cam, bed, sofa)
    asked_about = set()
    for seed in range(6):
        (d,) = ask(name, scene, cam, seed)
        a, b = d.categories
        want = bed_label if a == "bed" else sofa_label
        assert d.answer == want and d.choices == (want, sofa_label if want == bed_label else bed_label)
        assert d.question == template.format(frame="frame 1 of 1", a=a, b=b) and d.frame_ids == (3,)
        asked_about.add(a)
    assert asked_about == {"bed", "sofa"}  # the rng decides which object is A
    # The other two relations have overlapping extents here: not asked.
    for other, *_ in CASES:
        if other != name:
            assert ask(other, scene, cam) == []


@pytest.mark.parametrize("name,axis", [("obj_obj_relative_pos_lr", 0), ("obj_obj_relative_pos_ud", 1),
                                       ("obj_obj_relative_pos_nf", 2)])
def test_pairs_inside_the_margin_are_not_asked(name, axis):
    cam = pose([0.5, 0.5, 1.4], 130, -25)
    for gap, asked in [(0.10, False), (0.14, False), (0.16, True), (0.5, True)]:
        a, b = np.array([0, 0, 3.0]), np.array([0, 0, 3.0])
        b[axis] += 0.4 + gap  # boxes 0.4 wide: clear gap between them = ``gap``
        assert bool(ask(name, two_box_scene(cam, a, b), cam)) == asked, gap


def test_pair_needs_both_categories_visible_exactly_once():
    cam = pose([0, 0, 1.2], 90)
    rot, t = cam[:3, :3], cam[:3, 3]
    scene = make_scene([(0, "bed", t + rot @ [-1, 0, 3], SIZE, rot), (1, "sofa", t + rot @ [1, 0, 3], SIZE, rot),
                        (2, "sofa", t + rot @ [2, 0, 3], SIZE, rot)])
    task = TASKS.get("obj_obj_relative_pos_lr")
    assert task.generate(scene, make_frames([0], [cam], [[0, 1, 2]]), np.random.default_rng(0)) == []
    (d,) = task.generate(scene, make_frames([0], [cam], [[0, 2]]), np.random.default_rng(0))
    assert sorted(d.extra["instance_ids"]) == [0, 2]


def test_cap_bounds_questions_per_scene():
    cam = pose([0, 0, 1.2], 90)
    rot, t = cam[:3, :3], cam[:3, 3]
    scene = make_scene([(k, f"obj{k}", t + rot @ [k - 4.0, 0, 5], SIZE, rot) for k in range(9)])
    frames = make_frames(list(range(4)), [cam] * 4, [list(range(9))] * 4)  # 4 frames x 36 pairs
    drafts = TASKS.get("obj_obj_relative_pos_lr").generate(scene, frames, np.random.default_rng(0))
    assert len(drafts) == 20
    for d in drafts:  # objK sits left of objL exactly when K < L
        ka, kb = (int(c[3:]) for c in d.categories)
        assert d.answer == ("Left" if ka < kb else "Right")
