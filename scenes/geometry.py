"""Scene-level geometry as the benchmark defines it (DESIGN.md section 3).

All inputs and outputs are metres in the z-up world frame.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import Delaunay, QhullError
from vlm3r.schemas.scene import OrientedBox

ROOM_SAMPLE_POINTS = 10_000
ROOM_ALPHA = 5.0


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 homogeneous transform to (N, 3) points."""
    return points @ matrix[:3, :3].T + matrix[:3, 3]


def minimal_oriented_box(points: np.ndarray) -> OrientedBox:
    """Minimum-volume oriented bounding box of (N, 3) points, as centre / full extents / rotation
    (columns = box axes in world), the convention of open3d's ``OrientedBoundingBox``.

    Computed with trimesh's ``oriented_bounds`` (convex hull, then every hull face direction with a
    2D minimum-area rectangle), which is exact for box-shaped inputs and, unlike open3d's minimal box,
    stable under float32 noise. Degenerate inputs (fewer than 4 points, or flat point sets) fall back
    to the axis-aligned box, so that every instance still gets a box.
    """
    import trimesh

    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) == 0:
        raise ValueError(f"expected (N, 3) points, got shape {pts.shape}")
    if not np.isfinite(pts).all():
        raise ValueError("points contain NaN or inf")
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    center, extent, rot = (lo + hi) / 2, hi - lo, np.eye(3)
    if len(pts) >= 4:
        try:
            to_origin, ext = trimesh.bounds.oriented_bounds(pts)
        except Exception:  # qhull on flat or degenerate sets
            to_origin = None
        if to_origin is not None and np.prod(ext) < np.prod(np.maximum(extent, 1e-12)) * (1 + 1e-9):
            box_to_world = np.linalg.inv(to_origin)
            center, extent, rot = box_to_world[:3, 3], np.asarray(ext, dtype=np.float64), box_to_world[:3, :3]
    if np.linalg.det(rot) < 0:  # keep a proper rotation: flip the last axis (same box)
        rot = rot.copy()
        rot[:, 2] *= -1
    return OrientedBox.from_arrays(center, extent, rot)


def alpha_shape_area(points_xy: np.ndarray, alpha: float = ROOM_ALPHA) -> float:
    """Area (m^2) of the 2D alpha shape of (N, 2) points, holes filled.

    Same definition as the ``alphashape`` package the benchmark used: Delaunay triangles whose
    circumradius is below ``1 / alpha`` are kept, and the shape is the region bounded by the outer
    rings of their union (the package polygonises boundary edges, which fills interior holes).
    """
    import shapely

    pts = np.asarray(points_xy, dtype=np.float64)
    if len(pts) < 3:
        return 0.0
    try:
        tri = Delaunay(pts)
    except QhullError:  # all points collinear or coincident: no area
        return 0.0
    a, b, c = (pts[tri.simplices[:, k]] for k in range(3))
    la = np.linalg.norm(b - c, axis=1)
    lb = np.linalg.norm(a - c, axis=1)
    lc = np.linalg.norm(a - b, axis=1)
    cross = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    area2 = np.abs(cross)
    with np.errstate(divide="ignore", invalid="ignore"):
        circumradius = la * lb * lc / (2.0 * area2)
    keep = np.isfinite(circumradius) & (circumradius < 1.0 / alpha)
    if not keep.any():
        return 0.0
    triangles = np.stack([a[keep], b[keep], c[keep]], axis=1)
    union = shapely.coverage_union_all(shapely.polygons(triangles))
    parts = getattr(union, "geoms", [union])
    filled = shapely.union_all([shapely.Polygon(p.exterior) for p in parts if not p.is_empty])
    return float(filled.area)


def room_size_and_center(
    points: np.ndarray, rng: np.random.Generator, n_sample: int = ROOM_SAMPLE_POINTS, alpha: float = ROOM_ALPHA
) -> tuple[float, list[float]]:
    """Room floor area (alpha shape of a seeded 10k-point sample projected on xy) and room centre
    (centre of the minimal oriented box of all points)."""
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) > n_sample:
        sample = pts[np.sort(rng.choice(len(pts), size=n_sample, replace=False))]
    else:
        sample = pts
    area = alpha_shape_area(sample[:, :2], alpha)
    center = minimal_oriented_box(pts).centroid
    return area, center
