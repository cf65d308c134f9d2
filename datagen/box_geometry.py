"""Exact distances between solid oriented boxes, vectorised over many box pairs.

Boxes are given as centroid (..., 3), full extents (..., 3) and rotation (..., 3, 3) whose columns
are the box axes, in metres in the z-up world (the ``OrientedBox`` convention).

The distance between two disjoint convex polytopes is attained between a vertex of one and the
other solid, or between two edges; it is zero when they intersect (separating-axis test over the
15 candidate axes). Both are computed in closed form, so the result is exact up to floating point,
unlike estimates from point grids.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from vlm3r.schemas.scene import OrientedBox

_SIGNS = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=float)
# The 12 edges of a box as pairs of corner indices (corners ordered as _SIGNS).
_EDGES = np.array(
    [(a, b) for a in range(8) for b in range(a + 1, 8) if np.abs(_SIGNS[a] - _SIGNS[b]).sum() == 2], dtype=np.int64
)


def box_arrays(boxes: list[OrientedBox]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack boxes into centroid (N, 3), extent (N, 3), rotation (N, 3, 3) arrays."""
    c = np.array([b.centroid for b in boxes], dtype=float).reshape(-1, 3)
    e = np.array([b.axes_lengths for b in boxes], dtype=float).reshape(-1, 3)
    r = np.array([b.rotation for b in boxes], dtype=float).reshape(-1, 3, 3)
    return c, e, r


def box_corners_world(centroids: np.ndarray, axes_lengths: np.ndarray, rotations: np.ndarray) -> np.ndarray:
    """Corners (..., 8, 3) of boxes given centroids (..., 3), full extents (..., 3), rotations
    (..., 3, 3) (columns = box axes in world). Same corner order as ``schemas.scene.box_corners``."""
    c = np.asarray(centroids, dtype=np.float64)
    half = np.asarray(axes_lengths, dtype=np.float64) / 2.0
    rot = np.asarray(rotations, dtype=np.float64)
    local = _SIGNS * half[..., None, :]  # (..., 8, 3)
    return c[..., None, :] + local @ np.swapaxes(rot, -1, -2)


def point_box_distance(
    points: np.ndarray, centroids: np.ndarray, axes_lengths: np.ndarray, rotations: np.ndarray
) -> np.ndarray:
    """Exact Euclidean distance (metres) from points to SOLID oriented boxes; 0 inside a box.

    The point is expressed in the box frame (``u = R^T (p - c)``) and clamped into
    ``[-extent/2, extent/2]``; the clamped point is the box's closest point, so the distance is
    ``|u - clamp(u)|``. Shapes broadcast: points (..., 3), centroids (..., 3), axes_lengths (..., 3),
    rotations (..., 3, 3) -> (...).
    """
    p = np.asarray(points, dtype=np.float64)
    c = np.asarray(centroids, dtype=np.float64)
    half = np.asarray(axes_lengths, dtype=np.float64) / 2.0
    rot = np.asarray(rotations, dtype=np.float64)
    u = np.einsum("...ji,...j->...i", rot, p - c)
    outside = np.maximum(np.abs(u) - half, 0.0)
    return np.sqrt(np.sum(outside * outside, axis=-1))


# --------------------------------------------------------------------------------------------------
# Array views of a scene graph
# --------------------------------------------------------------------------------------------------


def segment_segment_distance(p0: np.ndarray, p1: np.ndarray, q0: np.ndarray, q1: np.ndarray) -> np.ndarray:
    """Closest distance between segments [p0, p1] and [q0, q1], shapes (..., 3), broadcasting.

    Standard clamped solution of the 2x2 least-squares problem, with degenerate (zero-length or
    parallel) segments handled by clamping.
    """
    d1, d2, w = p1 - p0, q1 - q0, p0 - q0
    a = np.einsum("...i,...i->...", d1, d1)
    e = np.einsum("...i,...i->...", d2, d2)
    b = np.einsum("...i,...i->...", d1, d2)
    c = np.einsum("...i,...i->...", d1, w)
    f = np.einsum("...i,...i->...", d2, w)
    eps = 1e-18
    denom = a * e - b * b
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(denom > eps * np.maximum(a * e, eps), (b * f - c * e) / denom, 0.0)
        s = np.clip(np.nan_to_num(s), 0.0, 1.0)
        t = np.where(e > eps, (b * s + f) / e, 0.0)
        # t outside [0, 1]: clamp it and recompute s for the clamped t.
        t_c = np.clip(t, 0.0, 1.0)
        s = np.where(t != t_c, np.clip(np.where(a > eps, (b * t_c - c) / a, 0.0), 0.0, 1.0), s)
    t = t_c
    diff = (p0 + d1 * s[..., None]) - (q0 + d2 * t[..., None])
    return np.linalg.norm(diff, axis=-1)


def boxes_intersect(ca, ea, ra, cb, eb, rb) -> np.ndarray:  # noqa: ANN001 - arrays as documented above
    """Separating-axis test for solid boxes over the 15 candidate axes, vectorised over leading
    dims; touching counts as intersecting."""
    ax_a = np.swapaxes(ra, -1, -2)  # (..., 3, 3): row k = box A's axis k
    ax_b = np.swapaxes(rb, -1, -2)
    shape = np.broadcast_shapes(ax_a.shape, ax_b.shape)
    ax_a, ax_b = np.broadcast_to(ax_a, shape), np.broadcast_to(ax_b, shape)
    crosses = np.cross(ax_a[..., :, None, :], ax_b[..., None, :, :]).reshape(*shape[:-2], 9, 3)
    axes = np.concatenate([ax_a, ax_b, crosses], axis=-2)  # (..., 15, 3)
    norm = np.linalg.norm(axes, axis=-1)
    valid = norm > 1e-9  # parallel edges give a zero cross product: not an axis
    u = axes / np.where(valid, norm, 1.0)[..., None]
    # Projected half-widths: sum_k |u . axis_k| * extent_k / 2.
    half_a = (np.abs(np.einsum("...nj,...kj->...nk", u, ax_a)) * (ea[..., None, :] / 2.0)).sum(-1)
    half_b = (np.abs(np.einsum("...nj,...kj->...nk", u, ax_b)) * (eb[..., None, :] / 2.0)).sum(-1)
    centre_gap = np.abs(np.einsum("...nj,...j->...n", u, cb - ca))
    separated = valid & (centre_gap > half_a + half_b + 1e-12)
    return ~separated.any(axis=-1)


def box_box_distance(ca, ea, ra, cb, eb, rb) -> np.ndarray:  # noqa: ANN001 - arrays as documented above
    """Exact closest-point distance between solid boxes A and B, vectorised over leading dims."""
    ka, kb = box_corners_world(ca, ea, ra), box_corners_world(cb, eb, rb)  # (..., 8, 3)
    d_vertex_a = point_box_distance(ka, cb[..., None, :], eb[..., None, :], rb[..., None, :, :]).min(-1)  # A's corners to B
    d_vertex_b = point_box_distance(kb, ca[..., None, :], ea[..., None, :], ra[..., None, :, :]).min(-1)  # B's corners to A
    pa0, pa1 = ka[..., _EDGES[:, 0], :], ka[..., _EDGES[:, 1], :]  # (..., 12, 3)
    pb0, pb1 = kb[..., _EDGES[:, 0], :], kb[..., _EDGES[:, 1], :]
    d_edges = segment_segment_distance(
        pa0[..., :, None, :], pa1[..., :, None, :], pb0[..., None, :, :], pb1[..., None, :, :]
    ).min(axis=(-1, -2))
    d = np.minimum(np.minimum(d_vertex_a, d_vertex_b), d_edges)
    return np.where(boxes_intersect(ca, ea, ra, cb, eb, rb), 0.0, d)


PAIR_CHUNK = 2048
"""Box pairs computed at once by ``pairwise_box_distances`` (about 40 kB of temporaries each, so
~80 MB at most whatever the number of boxes)."""


def pairwise_box_distances(boxes: list[OrientedBox]) -> np.ndarray:
    """(N, N) symmetric matrix of exact box distances (zero diagonal), computed in chunks of
    ``PAIR_CHUNK`` pairs. Scenes' tasks ask for the same matrix several times: the last few results
    are kept (keyed by the exact box parameters), so it is computed once per scene."""
    c, e, r = box_arrays(boxes)
    return _pairwise_cached(c.tobytes(), e.tobytes(), r.tobytes()).copy()


@lru_cache(maxsize=4)
def _pairwise_cached(c_bytes: bytes, e_bytes: bytes, r_bytes: bytes) -> np.ndarray:
    c = np.frombuffer(c_bytes).reshape(-1, 3)
    e = np.frombuffer(e_bytes).reshape(-1, 3)
    r = np.frombuffer(r_bytes).reshape(-1, 3, 3)
    n = len(c)
    out = np.zeros((n, n))
    iu, ju = np.triu_indices(n, k=1)
    for k in range(0, len(iu), PAIR_CHUNK):
        i, j = iu[k : k + PAIR_CHUNK], ju[k : k + PAIR_CHUNK]
        d = box_box_distance(c[i], e[i], r[i], c[j], e[j], r[j])
        out[i, j] = d
        out[j, i] = d
    out.setflags(write=False)
    return out
