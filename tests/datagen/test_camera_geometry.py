"""Camera geometry: centres, world-to-camera, camera-frame corners, exact point-to-box distance,
and the array views of a scene graph, against constructions and independent computations."""

from math import comb

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.spatial.transform import Rotation

from vlm3r.datagen.camera_geometry import (
    FrameView,
    SceneBoxes,
    box_corners_camera,
    box_corners_world,
    camera_centers,
    point_box_distance,
    random_subsets,
    relative_translation,
    sample_capped,
    world_points_to_camera,
    world_to_camera,
)
from vlm3r.schemas.scene import (
    box_corners,
)

from factories import make_frames, make_scene, pose


# A pose whose rotation and translation are both far from trivial.
TILTED = pose([3.0, -1.5, 1.4], yaw_deg=130.0, pitch_deg=-25.0)


def test_camera_centre_is_translation_column_not_minus_rt_t():
    rot, t = TILTED[:3, :3], TILTED[:3, 3]
    assert np.allclose(camera_centers(TILTED), t)
    wrong = -rot.T @ t
    assert np.linalg.norm(wrong - t) > 1.0  # the two conventions really differ for this pose
    assert not np.allclose(camera_centers(TILTED), wrong)
    # The centre is where the camera origin lands in the world.
    assert np.allclose((TILTED @ [0, 0, 0, 1])[:3], camera_centers(TILTED))
    # Batched.
    batch = np.stack([TILTED, pose([1, 2, 3])])
    assert camera_centers(batch).shape == (2, 3) and np.allclose(camera_centers(batch)[1], [1, 2, 3])


def test_world_to_camera_inverts_pose():
    w2c = world_to_camera(TILTED)
    assert np.allclose(w2c @ TILTED, np.eye(4)) and np.allclose(w2c, np.linalg.inv(TILTED))
    batch = np.stack([TILTED, pose([0.5, 0, 1], 10, 5)])
    assert np.allclose(world_to_camera(batch), np.linalg.inv(batch))


def test_points_in_camera_frame_follow_opencv_axes():
    rot, t = TILTED[:3, :3], TILTED[:3, 3]
    right, down, forward = rot[:, 0], rot[:, 1], rot[:, 2]
    pts = np.stack([t + 3 * forward, t + 2 * right, t - 1.5 * down, t])
    cam = world_points_to_camera(TILTED, pts)
    assert np.allclose(cam, [[0, 0, 3], [2, 0, 0], [0, -1.5, 0], [0, 0, 0]], atol=1e-12)
    # pitch -25 degrees: the camera looks down, so the camera's "down" axis is tilted too, and
    # world up maps to a negative camera y.
    assert world_points_to_camera(TILTED, t + np.array([[0, 0, 1.0]]))[0, 1] < 0


def test_corners_broadcast_and_match_schema():
    rng = np.random.default_rng(0)
    cents = rng.normal(size=(5, 3))
    lens = rng.uniform(0.1, 2, size=(5, 3))
    rots = Rotation.random(5, random_state=1).as_matrix()
    world = box_corners_world(cents, lens, rots)
    for k in range(5):
        assert np.allclose(world[k], box_corners(cents[k], lens[k], rots[k]))
    poses = np.stack([TILTED, pose([0, 1, 1], 45, 10), pose([2, 2, 1.2], -90, -30)])
    cam = box_corners_camera(poses[:, None], cents[None], lens[None], rots[None])
    assert cam.shape == (3, 5, 8, 3)
    for f in range(3):
        inv = np.linalg.inv(poses[f])
        for k in range(5):
            homog = np.c_[world[k], np.ones(8)] @ inv.T
            assert np.allclose(cam[f, k], homog[:, :3])


def scipy_distance(p, c, e, r):
    """Independent: minimise |c + R u - p|^2 over the box |u| <= e / 2 (convex, bounded)."""
    res = minimize(lambda u: np.sum((c + r @ u - p) ** 2), np.zeros(3),
                   jac=lambda u: 2 * r.T @ (c + r @ u - p),
                   bounds=[(-h, h) for h in e / 2], method="L-BFGS-B", options={"ftol": 1e-15, "gtol": 1e-12})
    return float(np.sqrt(max(res.fun, 0.0)))


def test_point_box_distance_cases_by_construction():
    c, e, r = np.array([1.0, 2.0, 0.5]), np.array([2.0, 1.0, 1.0]), np.eye(3)
    assert point_box_distance([1.2, 2.1, 0.6], c, e, r) == 0.0  # inside
    assert point_box_distance([1.0, 2.0, 4.0], c, e, r) == pytest.approx(3.0)  # face: 4 - 1
    # Edge and corner regions: Pythagoras over the excess per axis.
    assert point_box_distance([3.0, 3.5, 0.5], c, e, r) == pytest.approx(np.hypot(1.0, 1.0))
    assert point_box_distance([-1.0, 0.5, -1.5], c, e, r) == pytest.approx(np.sqrt(1 + 1 + 1.5**2))
    # Rotated 45 degrees about z: a unit cube's vertex sits sqrt(0.5) from its centre along x.
    rz = Rotation.from_euler("z", 45, degrees=True).as_matrix()
    assert point_box_distance([2.0, 0, 0], [0, 0, 0], [1, 1, 1], rz) == pytest.approx(2.0 - np.sqrt(0.5))


def test_point_box_distance_matches_independent_optimiser():
    rng = np.random.default_rng(3)
    rots = Rotation.random(40, random_state=4).as_matrix()
    cents = rng.normal(scale=2.0, size=(40, 3))
    lens = rng.uniform(0.05, 3.0, size=(40, 3))
    pts = rng.normal(scale=3.0, size=(40, 3))
    got = point_box_distance(pts, cents, lens, rots)
    assert got.shape == (40,)
    want = [scipy_distance(pts[k], cents[k], lens[k], rots[k]) for k in range(40)]
    assert np.allclose(got, want, atol=1e-6)
    # Broadcasting: (P, 1, 3) points against (1, B, ...) boxes.
    grid = point_box_distance(pts[:, None], cents[None], lens[None], rots[None])
    assert grid.shape == (40, 40) and np.allclose(np.diag(grid), got)


@pytest.mark.parametrize("yaw,pitch", [(0, 0), (90, 0), (-135, 0), (30, -20), (200, 15)])
def test_relative_translation_forward_in_start_camera(yaw, pitch):
    start = pose([1.0, 2.0, 1.5], yaw, pitch)
    end = start.copy()
    end[:3, 3] += 2.0 * start[:3, 2]
    assert np.allclose(relative_translation(start, end), [0, 0, 2.0])
    # The end orientation does not matter, only the start one does.
    end2 = pose(end[:3, 3], yaw + 70, pitch - 10)
    assert np.allclose(relative_translation(start, end2), [0, 0, 2.0])
    left = start.copy()
    left[:3, 3] -= 1.2 * start[:3, 0]
    assert np.allclose(relative_translation(start, left), [-1.2, 0, 0])


def test_frame_view_ranks_labels_and_visible_once():
    scene = make_scene([(10, "chair", [0, 3, 0.5], [0.5] * 3), (11, "chair", [1, 3, 0.5], [0.5] * 3),
                        (12, "table", [2, 3, 0.5], [1.0] * 3)])
    p = [pose([0, 0, 1], 90), pose([0, -1, 1], 90), pose([0, -2, 1], 90)]
    # Frames given out of stream order; 99 is not an object of the scene (ignored).
    fm = make_frames([40, 5, 17], p, [[10, 12, 99], [10, 11, 12], [11]])
    boxes = SceneBoxes.from_scene(scene)
    view = FrameView.build(fm, boxes)
    assert view.frame_ids.tolist() == [5, 17, 40] and view.num_frames == 3
    assert np.allclose(view.centers[0], [0, -1, 1]) and np.allclose(view.centers[2], [0, 0, 1])
    assert view.label(0) == "frame 1 of 3" and view.label(2) == "frame 3 of 3"
    # frame 5: two chairs -> only the table is visible exactly once.
    assert view.visible_once[0] == {"table": boxes.index[12]}
    assert view.visible_once[1] == {"chair": boxes.index[11]}
    assert view.visible_once[2] == {"chair": boxes.index[10], "table": boxes.index[12]}
    d = view.camera_box_distances(boxes)
    assert d.shape == (3, 3)
    # camera at (0, 0, 1) looking +y; table centre (2, 3, 0.5), half 0.5: excess (1.5, 2.5, 0).
    assert d[2, boxes.index[12]] == pytest.approx(np.hypot(1.5, 2.5))
    cam = view.corners_in_camera(boxes)
    assert cam.shape == (3, 3, 8, 3)
    # Looking along +y from (0, 0, 1): the first chair's centre is 3 m ahead.
    assert cam[2, boxes.index[10]].mean(axis=0) == pytest.approx([0, 0.5, 3.0])


def test_sample_capped_and_subsets():
    rng = np.random.default_rng(0)
    assert sample_capped(5, 20, rng).tolist() == [0, 1, 2, 3, 4]
    idx = sample_capped(100, 20, np.random.default_rng(7))
    assert len(idx) == 20 and len(set(idx.tolist())) == 20 and (np.diff(idx) > 0).all()
    assert np.array_equal(idx, sample_capped(100, 20, np.random.default_rng(7)))
    full = random_subsets(6, 3, rng)
    assert full.shape == (comb(6, 3), 3) and len({tuple(r) for r in full.tolist()}) == comb(6, 3)
    big = random_subsets(40, 4, rng, limit=500)
    assert big.shape == (500, 4) and (np.diff(big, axis=1) > 0).all() and big.max() < 40
    assert random_subsets(2, 3, rng).shape == (0, 3)
