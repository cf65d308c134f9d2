"""Exact box distances: hand-built cases and properties against independent computations."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog, minimize
from scipy.spatial.transform import Rotation

from vlm3r.datagen.box_geometry import box_box_distance, pairwise_box_distances, point_box_distance
from vlm3r.datagen.box_geometry import box_corners_world as corners
from vlm3r.schemas.scene import OrientedBox


def rz(deg):
    return Rotation.from_euler("z", deg, degrees=True).as_matrix()


def dist(a, b):
    return float(box_box_distance(*(np.asarray(x, float) for x in (*a, *b))))


def test_face_to_face_one_metre():
    a = ([0, 0, 0.5], [1, 1, 1], np.eye(3))
    b = ([2, 0.3, 0.5], [1, 1, 1], np.eye(3))
    assert dist(a, b) == pytest.approx(1.0, abs=1e-12)


def test_rotated_box_corner_towards_face():
    # B rotated 45 degrees about z: its corner points at A's +x face; half-diagonal = sqrt(0.5).
    a = ([0, 0, 0], [1, 1, 1], np.eye(3))
    b = ([3, 0, 0], [1, 1, 1], rz(45))
    assert dist(a, b) == pytest.approx(3 - 0.5 - np.sqrt(0.5), abs=1e-12)


def test_edge_to_edge_skew():
    # A's top edge along x, B's bottom edge along y (B rotated), separated only vertically.
    a = ([0, 0, 0], [2, 0.1, 0.1], np.eye(3))
    b = ([0, 0, 1.0], [0.1, 2, 0.1], np.eye(3))
    assert dist(a, b) == pytest.approx(0.9, abs=1e-12)


def test_overlap_and_touching_are_zero():
    a = ([0, 0, 0], [1, 1, 1], np.eye(3))
    assert dist(a, ([0.5, 0.5, 0], [1, 1, 1], rz(30))) == 0.0
    assert dist(a, ([1.0, 0, 0], [1, 1, 1], np.eye(3))) == 0.0
    # Crossing bars: no vertex of either is inside the other, yet they intersect.
    assert dist(([0, 0, 0], [3, 0.2, 0.2], np.eye(3)), ([0, 0, 0], [0.2, 3, 0.2], np.eye(3))) == 0.0


def test_point_box_distance():
    c, e, r = np.zeros(3), np.array([2.0, 2.0, 2.0]), np.eye(3)
    assert point_box_distance(np.array([3.0, 0, 0]), c, e, r) == pytest.approx(2.0)
    assert point_box_distance(np.array([2.0, 2.0, 0]), c, e, r) == pytest.approx(np.sqrt(2))
    assert point_box_distance(np.array([0.5, 0, 0]), c, e, r) == 0.0


def test_pairwise_matrix():
    boxes = [OrientedBox.from_arrays([x, 0, 0], [1, 1, 1], np.eye(3)) for x in (0, 2, 5)]
    np.testing.assert_allclose(pairwise_box_distances(boxes), [[0, 1, 4], [1, 0, 2], [4, 2, 0]], atol=1e-12)


box_st = st.tuples(
    st.lists(st.floats(-2, 2), min_size=3, max_size=3),
    st.lists(st.floats(0.05, 2), min_size=3, max_size=3),
    st.lists(st.floats(-np.pi, np.pi), min_size=3, max_size=3),
)


def as_box(t):
    c, e, ang = t
    return np.array(c), np.array(e), Rotation.from_euler("xyz", ang).as_matrix()


def intersect_lp(a, b):
    """Independent intersection test: is there a point inside both boxes? (LP feasibility)"""
    rows, rhs = [], []
    for c, e, r in (a, b):
        for k in range(3):
            rows += [r[:, k], -r[:, k]]
            rhs += [r[:, k] @ c + e[k] / 2, -(r[:, k] @ c) + e[k] / 2]
    res = linprog(np.zeros(3), A_ub=np.array(rows), b_ub=np.array(rhs), bounds=[(None, None)] * 3)
    return res.status == 0


def qp_distance(a, b):
    """Independent: minimise |p - q| with p, q in box-local coordinates clipped to the extents."""
    (ca, ea, ra), (cb, eb, rb) = a, b

    def f(x):
        return np.sum((ca + ra @ x[:3] - cb - rb @ x[3:]) ** 2)

    bounds = [(-h, h) for h in ea / 2] + [(-h, h) for h in eb / 2]
    starts = [np.zeros(6)] + [np.random.default_rng(k).uniform(-0.5, 0.5, 6) * np.r_[ea, eb] for k in range(6)]
    best = min(
        (minimize(f, x0, bounds=bounds, method="SLSQP", options={"ftol": 1e-16, "maxiter": 1000}) for x0 in starts),
        key=lambda r: r.fun,
    )
    return np.sqrt(max(best.fun, 0.0))


@settings(max_examples=60, deadline=None)
@given(box_st, box_st)
def test_properties_against_independent_solvers(ta, tb):
    a, b = as_box(ta), as_box(tb)
    d_ab = float(box_box_distance(*a, *b))
    d_ba = float(box_box_distance(*b, *a))
    assert d_ab == pytest.approx(d_ba, abs=1e-9)
    inter = intersect_lp(a, b)
    if inter:
        assert d_ab <= 1e-9
    else:
        assert d_ab > 0 or qp_distance(a, b) < 1e-6
    # Never larger than any pair of sampled points' distance (a lower bound on them all).
    rng = np.random.default_rng(0)
    pa = a[0] + (rng.uniform(-0.5, 0.5, (300, 3)) * a[1]) @ a[2].T
    pb = b[0] + (rng.uniform(-0.5, 0.5, (300, 3)) * b[1]) @ b[2].T
    sampled = np.linalg.norm(np.vstack([pa, corners(*a)])[:, None] - np.vstack([pb, corners(*b)])[None], axis=-1).min()
    assert d_ab <= sampled + 1e-9
    # Agrees with a bounded QP solved numerically.
    assert d_ab == pytest.approx(qp_distance(a, b), abs=1e-5)


@settings(max_examples=25, deadline=None)
@given(box_st, box_st)
def test_equals_dense_grid_estimate_within_grid_error(ta, tb):
    a, b = as_box(ta), as_box(tb)
    step = 0.05

    def surface_grid(c, e, r):
        axes = [np.linspace(-h, h, max(2, int(np.ceil(2 * h / step)) + 1)) for h in e / 2]
        g = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
        return c + g @ r.T

    ga, gb = surface_grid(*a), surface_grid(*b)
    from scipy.spatial import cKDTree

    grid_d = cKDTree(gb).query(ga)[0].min()
    exact = float(box_box_distance(*a, *b))
    # Grid points are within step*sqrt(3)/2 of any point of the solid, on each side.
    assert exact <= grid_d + 1e-9
    assert grid_d - exact <= step * np.sqrt(3) + 1e-9


def test_pairwise_distances_in_chunks_equal_one_pass_and_are_not_shared(monkeypatch):
    from vlm3r.datagen import box_geometry as bg
    from vlm3r.schemas.scene import OrientedBox

    rng = np.random.default_rng(4)
    boxes = [OrientedBox.from_arrays(rng.uniform(-3, 3, 3), rng.uniform(0.1, 1.5, 3), np.eye(3)) for _ in range(23)]
    whole = bg.pairwise_box_distances(boxes)
    bg._pairwise_cached.cache_clear()
    monkeypatch.setattr(bg, "PAIR_CHUNK", 7)  # 253 pairs in 37 chunks
    chunked = bg.pairwise_box_distances(boxes)
    assert np.array_equal(whole, chunked)
    i, j = 3, 17
    c, e, r = bg.box_arrays([boxes[i], boxes[j]])
    assert chunked[i, j] == bg.box_box_distance(c[0], e[0], r[0], c[1], e[1], r[1])
    chunked[i, j] = -1.0  # a caller's copy: the cached matrix is not changed
    assert bg.pairwise_box_distances(boxes)[i, j] == whole[i, j]
