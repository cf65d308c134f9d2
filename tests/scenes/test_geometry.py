import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from vlm3r.scenes.geometry import alpha_shape_area, minimal_oriented_box, room_size_and_center


def box_surface_points(center, extent, rot, n=2000, rng=None):
    rng = rng or np.random.default_rng(0)
    local = rng.uniform(-0.5, 0.5, size=(n, 3)) * extent
    axis = rng.integers(0, 3, size=n)
    local[np.arange(n), axis] = np.sign(rng.uniform(-1, 1, size=n)) * extent[axis] / 2
    return local @ rot.T + center


@pytest.mark.parametrize("yaw_deg", [0.0, 17.0, 61.0])
def test_minimal_box_recovers_a_rotated_box(yaw_deg):
    rot = Rotation.from_euler("z", yaw_deg, degrees=True).as_matrix()
    center, extent = np.array([1.0, -2.0, 0.4]), np.array([1.2, 0.6, 0.8])
    pts = box_surface_points(center, extent, rot)
    pts = np.vstack([pts, (np.array([[sx, sy, sz] for sx in (-.5, .5) for sy in (-.5, .5) for sz in (-.5, .5)]) * extent) @ rot.T + center])
    box = minimal_oriented_box(pts)
    np.testing.assert_allclose(box.centroid, center, atol=1e-6)
    np.testing.assert_allclose(sorted(box.axes_lengths), sorted(extent), atol=1e-6)
    r = np.asarray(box.rotation)
    np.testing.assert_allclose(r.T @ r, np.eye(3), atol=1e-9)
    assert np.linalg.det(r) == pytest.approx(1.0)
    # Every point lies inside the returned box.
    local = (pts - box.centroid) @ r
    assert (np.abs(local) <= np.asarray(box.axes_lengths) / 2 + 1e-6).all()


def test_alpha_area_of_dense_rectangle_and_l_shape():
    rng = np.random.default_rng(1)
    rect = rng.uniform([0, 0], [5, 4], size=(8000, 2))
    assert alpha_shape_area(rect) == pytest.approx(20.0, rel=0.02)
    # L = 5x4 minus the 2x2 top-right corner: 16 m^2. The concavity must not be bridged.
    l_shape = rect[~((rect[:, 0] > 3) & (rect[:, 1] > 2))]
    assert alpha_shape_area(l_shape) == pytest.approx(16.0, rel=0.02)


def test_alpha_area_fills_interior_holes_and_ignores_far_outliers():
    rng = np.random.default_rng(2)
    pts = rng.uniform([0, 0], [4, 4], size=(8000, 2))
    ring = pts[np.linalg.norm(pts - 2, axis=1) > 1.0]  # a 1 m radius hole in the middle
    assert alpha_shape_area(ring) == pytest.approx(16.0, rel=0.02)
    far = np.vstack([pts, [[40.0, 40.0]]])  # a lone far point adds no area (alpha = 5 -> 0.2 m)
    assert alpha_shape_area(far) == pytest.approx(alpha_shape_area(pts), rel=1e-9)


def test_alpha_area_degenerate_inputs():
    assert alpha_shape_area(np.zeros((2, 2))) == 0.0
    assert alpha_shape_area(np.c_[np.linspace(0, 1, 10), np.zeros(10)]) == 0.0


def test_room_size_is_seeded_and_center_is_box_center():
    rng = np.random.default_rng(3)
    floor = np.c_[rng.uniform([0, 0], [6, 3], size=(30000, 2)), np.zeros(30000)]
    pts = np.vstack([floor, floor + [0, 0, 2.5]])
    a1, c1 = room_size_and_center(pts, np.random.default_rng(7))
    a2, c2 = room_size_and_center(pts, np.random.default_rng(7))
    assert a1 == a2 and c1 == c2
    assert a1 == pytest.approx(18.0, rel=0.03)
    np.testing.assert_allclose(c1, [3.0, 1.5, 1.25], atol=0.01)
