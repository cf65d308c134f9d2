"""Procedural synthetic indoor scenes: a room, benchmark furniture and a hand-held camera path.

Pure numpy, no I/O. Everything is drawn from ``np.random.default_rng(seed)``; the generator is passed
explicitly to every helper, so a (scene_id, seed, config) triple always gives the same arrays.

Frames and units (DESIGN.md section 3):

* the *aligned* world is z-up, metres; the floor is the plane z = 0, the ceiling z = ``wall_height``;
* the room polygon lies in the xy plane with its bounding-box corner at the origin;
* poses are camera-to-world 4x4 in the OpenCV convention (x right, y down, z forward);
* ``axis_alignment`` is ScanNet's ``axisAlignment``: ``aligned = A @ raw`` (so the raw scan frame,
  in which the ScanNet layout writer stores the mesh and the poses, is ``inv(A) @ aligned``).

Objects are solid boxes standing on the floor (1 mm clear of it) or mounted on a wall (2 cm clear of
it); nothing is stacked. Their meshes are box surfaces whose faces are grids of ``mesh_resolution``,
so the minimal oriented bounding box of an object's vertices is exactly its box.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

FLOOR_GAP = 0.001
"""Metres between the floor and the bottom of a floor-standing object (avoids coplanar faces)."""
WALL_GAP = 0.02
"""Metres between a wall and the back of an object placed against it."""
CLEARANCE = 0.05
"""Minimum metres between any two objects (in xy where their height ranges overlap)."""
TALL_OBJECT_Z = 1.2
"""Objects whose top is above this height (metres) are obstacles for the camera path."""


# --------------------------------------------------------------------------------------------------
# Configuration and result types
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticConfig:
    """Size and sampling parameters of a synthetic scene.

    ``width`` x ``height`` is the depth / instance image size in pixels; the colour image is
    ``round(color_scale * width)`` x ``round(color_scale * height)`` with intrinsics scaled to match.
    ``mesh_resolution`` is the vertex spacing in metres on every surface.
    """

    n_objects: tuple[int, int] = (8, 25)
    n_frames: int = 240
    fps: float = 30.0
    width: int = 320
    height: int = 240
    color_scale: float = 1.0
    fov_x_deg: float = 58.0
    mesh_resolution: float = 0.08
    n_invalid_poses: int = 3
    mask_every: int = 1

    def __post_init__(self) -> None:
        lo, hi = self.n_objects
        if not 3 <= lo <= hi <= 25:
            raise ValueError(f"n_objects must satisfy 3 <= lo <= hi <= 25, got {self.n_objects}")
        if self.n_frames < 2:
            raise ValueError(f"n_frames must be >= 2, got {self.n_frames}")
        if self.fps <= 0 or self.width < 2 or self.height < 2 or self.color_scale <= 0:
            raise ValueError("fps, width, height and color_scale must be positive")
        if not 10.0 <= self.fov_x_deg <= 150.0:
            raise ValueError(f"fov_x_deg must lie in [10, 150], got {self.fov_x_deg}")
        if not 0.005 <= self.mesh_resolution <= 1.0:
            raise ValueError(f"mesh_resolution must lie in [0.005, 1] m, got {self.mesh_resolution}")
        if self.n_invalid_poses < 0 or self.mask_every < 1:
            raise ValueError("n_invalid_poses must be >= 0 and mask_every >= 1")

    @classmethod
    def real_scan_size(cls) -> SyntheticConfig:
        """A configuration the size of a real ScanNet scan: ~150k vertices, 2000 frames, 640x480
        depth, 1296x972 colour (real scans have 1296x968)."""
        return cls(n_frames=2000, width=640, height=480, color_scale=2.025, mesh_resolution=0.034)

    @property
    def color_size(self) -> tuple[int, int]:
        """(width, height) of the colour image in pixels."""
        return int(round(self.color_scale * self.width)), int(round(self.color_scale * self.height))


@dataclass
class SyntheticObject:
    """One benchmark-category object: a solid box in the aligned z-up world (metres).

    ``instance_id`` is the ScanNet aggregation objectId (instance PNG value = instance_id + 1);
    ``rotation`` columns are the box axes in world, ``axes_lengths`` the full extents along them.
    """

    instance_id: int
    category: str
    raw_label: str
    centroid: np.ndarray
    axes_lengths: np.ndarray
    rotation: np.ndarray

    def corners(self) -> np.ndarray:
        """The eight box corners (8, 3), world metres."""
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=float)
        return self.centroid[None, :] + (signs * (self.axes_lengths / 2.0)) @ self.rotation.T


@dataclass
class SyntheticScene:
    """A whole synthetic scene; everything in the aligned z-up world, metres (see the module docstring).

    * ``room_polygon`` (K, 2) counter-clockwise xy outline (rectangle or L-shape), ``room_area`` its
      area in m^2, ``wall_height`` the ceiling height (the floor is z = 0);
    * ``objects``: the benchmark-category furniture only (the ground truth);
    * ``vertices`` (V, 3) float64 / ``faces`` (F, 3) int64 / ``vertex_colors`` (V, 3) uint8: the whole
      mesh (furniture, walls, floor, ceiling); ``vertex_object`` (V,) aggregation objectId (furniture:
      its ``instance_id``; then one id per wall, one for the floor, one for the ceiling, named in
      ``structure_labels``); ``vertex_segment`` (V,) segment id (one per box face / wall / floor tile);
    * ``camera_to_world`` (N, 4, 4) OpenCV camera-to-world, all finite; ``invalid_pose_frames`` the
      frames whose pose the ScanNet writer stores as -inf;
    * ``intrinsics`` fx, fy, cx, cy in pixels of the ``config.width`` x ``config.height`` depth image;
    * ``axis_alignment`` (4, 4): ScanNet's axisAlignment, ``aligned = A @ raw``.
    """

    scene_id: str
    seed: int
    config: SyntheticConfig
    room_polygon: np.ndarray
    room_area: float
    wall_height: float
    objects: list[SyntheticObject]
    vertices: np.ndarray
    faces: np.ndarray
    vertex_colors: np.ndarray
    vertex_object: np.ndarray
    vertex_segment: np.ndarray
    structure_labels: dict[int, str]
    camera_to_world: np.ndarray
    invalid_pose_frames: np.ndarray
    intrinsics: tuple[float, float, float, float]
    axis_alignment: np.ndarray

    @property
    def n_frames(self) -> int:
        return int(self.camera_to_world.shape[0])

    def group_label(self, object_id: int) -> str:
        """Raw label of an aggregation group: the object's raw label or "wall"/"floor"/"ceiling"."""
        if object_id in self.structure_labels:
            return self.structure_labels[object_id]
        return self.objects[object_id].raw_label

    def color_intrinsics(self) -> tuple[float, float, float, float]:
        """fx, fy, cx, cy of the colour image (pixel-centre convention, scaled by ``color_scale``)."""
        return scale_intrinsics(self.intrinsics, self.config.color_scale)


def scale_intrinsics(
    intrinsics: tuple[float, float, float, float], scale: float
) -> tuple[float, float, float, float]:
    """Intrinsics for an image resized by ``scale`` (integer pixel coordinates at pixel centres)."""
    fx, fy, cx, cy = intrinsics
    return fx * scale, fy * scale, (cx + 0.5) * scale - 0.5, (cy + 0.5) * scale - 0.5


# --------------------------------------------------------------------------------------------------
# Furniture catalogue (benchmark categories only)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FurnitureSpec:
    """How to draw one category. ``size`` = (width along the wall, depth away from it, height) in
    metres before the +-15% jitter; ``placement`` "free" stands anywhere on the floor, "wall" has its
    back to a wall with its bottom ``elevation`` metres above the floor (0 = on the floor)."""

    category: str
    raw_labels: tuple[str, ...]
    size: tuple[float, float, float]
    placement: str
    elevation: float = 0.0
    weight: float = 1.0
    max_count: int = 1


CATALOGUE: tuple[FurnitureSpec, ...] = (
    FurnitureSpec("chair", ("chair",), (0.5, 0.5, 0.9), "free", max_count=6),
    FurnitureSpec("table", ("table", "desk"), (1.2, 0.8, 0.75), "free", weight=2, max_count=2),
    FurnitureSpec("bed", ("bed",), (1.6, 2.0, 0.5), "wall", weight=1.5),
    FurnitureSpec("sofa", ("sofa",), (2.0, 0.9, 0.85), "wall", weight=1.5),
    FurnitureSpec("window", ("window",), (1.2, 0.1, 1.3), "wall", elevation=0.9, weight=2, max_count=3),
    FurnitureSpec("bookshelf", ("bookshelf",), (0.9, 0.35, 1.8), "wall", weight=1.5, max_count=2),
    FurnitureSpec("counter", ("counter",), (1.8, 0.6, 0.9), "wall"),
    FurnitureSpec("refrigerator", ("refrigerator",), (0.7, 0.7, 1.8), "wall"),
    FurnitureSpec("door", ("door",), (0.9, 0.05, 2.0), "wall", weight=2, max_count=2),
    FurnitureSpec("lamp", ("lamp",), (0.4, 0.4, 1.6), "free", max_count=3),
    FurnitureSpec("printer", ("printer",), (0.6, 0.5, 1.0), "wall", weight=0.5),
    FurnitureSpec("towel", ("towel",), (0.5, 0.04, 0.8), "wall", elevation=0.9, weight=0.5),
    FurnitureSpec("tv", ("tv",), (1.2, 0.08, 0.7), "wall", elevation=1.0, weight=1.5),
    FurnitureSpec("nightstand", ("nightstand",), (0.5, 0.4, 0.55), "wall", max_count=2),
    FurnitureSpec("plant", ("plant",), (0.45, 0.45, 0.9), "free", weight=1.5, max_count=4),
    FurnitureSpec("backpack", ("backpack",), (0.35, 0.25, 0.45), "free", weight=0.7, max_count=2),
    FurnitureSpec("trash bin", ("trash can", "recycling bin", "trash bin"), (0.35, 0.3, 0.5), "free", weight=1.5, max_count=3),
    FurnitureSpec("closet", ("closet",), (1.2, 0.6, 2.0), "wall"),
    FurnitureSpec("fan", ("fan",), (0.45, 0.45, 1.2), "free", weight=0.6),
    FurnitureSpec("washing machine", ("washing machine",), (0.6, 0.6, 0.85), "wall", weight=0.5),
    FurnitureSpec("mirror", ("mirror",), (0.6, 0.04, 0.9), "wall", elevation=1.0),
    FurnitureSpec("piano", ("piano",), (1.5, 0.6, 1.25), "wall", weight=0.4),
    FurnitureSpec("radiator", ("radiator",), (1.0, 0.1, 0.6), "wall", elevation=0.1, max_count=2),
    FurnitureSpec("clock", ("clock",), (0.3, 0.05, 0.3), "wall", elevation=1.9, weight=0.7),
    FurnitureSpec("guitar", ("guitar",), (0.4, 0.12, 1.0), "wall", weight=0.5),
    FurnitureSpec("bicycle", ("bicycle",), (1.7, 0.5, 1.0), "wall", weight=0.4),
    FurnitureSpec("oven", ("oven",), (0.6, 0.6, 0.9), "wall", weight=0.5),
    FurnitureSpec("mattress", ("mattress",), (1.4, 2.0, 0.25), "wall", weight=0.3),
)
"""ScanNet-vocabulary categories that stand on the floor or hang on a wall (pillow, monitor, keyboard,
microwave, telephone and computer mouse are left out: they would have to be stacked on other
furniture). Every raw label is a real ScanNet raw_category that ScanNet's vocabulary maps onto the
spec's category (``desk`` is a table there)."""

STRUCTURE_COLORS: MappingProxyType[str, tuple[int, int, int]] = MappingProxyType({
    "wall": (206, 200, 188),
    "floor": (150, 118, 84),
    "ceiling": (236, 236, 232),
})

CATEGORY_COLORS: MappingProxyType[str, tuple[int, int, int]] = MappingProxyType({
    "chair": (196, 68, 52), "table": (120, 80, 44), "bed": (70, 110, 180), "sofa": (60, 140, 90),
    "window": (150, 210, 240), "bookshelf": (140, 95, 60), "counter": (180, 180, 170),
    "desk": (160, 120, 70), "refrigerator": (225, 228, 232), "door": (170, 130, 90), "lamp": (240, 210, 90),
    "printer": (90, 90, 96), "towel": (230, 150, 170), "tv": (30, 30, 36), "nightstand": (130, 90, 60),
    "plant": (50, 150, 50), "backpack": (40, 60, 140), "trash bin": (110, 110, 110), "closet": (185, 160, 120),
    "fan": (200, 200, 210), "washing machine": (240, 240, 245), "mirror": (190, 215, 225),
    "piano": (20, 20, 20), "radiator": (235, 235, 235), "clock": (240, 240, 200), "guitar": (180, 100, 40),
    "bicycle": (200, 40, 40), "oven": (60, 60, 60), "mattress": (225, 225, 210),
})


def benchmark_categories() -> tuple[str, ...]:
    """The categories a synthetic scene may hold: ScanNet's vocabulary (the demo's ground truth is
    in ScanNet's names; the other layouts' writers rename or drop as their source would)."""
    from vlm3r.scenes.categories import vocabulary

    return tuple(sorted(vocabulary("scannet").categories))


# --------------------------------------------------------------------------------------------------
# Small geometry helpers
# --------------------------------------------------------------------------------------------------


def rotation_z(yaw: float) -> np.ndarray:
    """3x3 rotation about +z by ``yaw`` radians (counter-clockwise seen from above)."""
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def polygon_area(polygon: np.ndarray) -> float:
    """Signed shoelace area (m^2) of a (K, 2) polygon; positive when counter-clockwise."""
    x, y = polygon[:, 0], polygon[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """(M,) bool: even-odd test of (M, 2) points against a (K, 2) polygon (boundary is ambiguous)."""
    p = np.asarray(points, dtype=float).reshape(-1, 2)
    a = polygon
    b = np.roll(polygon, -1, axis=0)
    px, py = p[:, 0:1], p[:, 1:2]
    cond = (a[None, :, 1] > py) != (b[None, :, 1] > py)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (b[None, :, 0] - a[None, :, 0]) / (b[None, :, 1] - a[None, :, 1])
        x_cross = a[None, :, 0] + (py - a[None, :, 1]) * slope
    crossings = cond & (px < x_cross)
    return (crossings.sum(axis=1) % 2) == 1


def _rect_corners_2d(center: np.ndarray, half: np.ndarray, rot2: np.ndarray) -> np.ndarray:
    """(4, 2) corners of an oriented rectangle (centre, half extents, 2x2 rotation columns = axes)."""
    signs = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=float)
    return center[None, :] + (signs * half[None, :]) @ rot2.T


def _rects_overlap(c1: np.ndarray, h1: np.ndarray, r1: np.ndarray,
                   c2: np.ndarray, h2: np.ndarray, r2: np.ndarray) -> bool:
    """Separating-axis test of two oriented rectangles (closed: touching counts as overlap)."""
    d = c2 - c1
    for axis in (r1[:, 0], r1[:, 1], r2[:, 0], r2[:, 1]):
        ra = abs(h1[0] * (r1[:, 0] @ axis)) + abs(h1[1] * (r1[:, 1] @ axis))
        rb = abs(h2[0] * (r2[:, 0] @ axis)) + abs(h2[1] * (r2[:, 1] @ axis))
        if abs(d @ axis) > ra + rb:
            return False
    return True


# --------------------------------------------------------------------------------------------------
# Room
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Room:
    """Room outline: the CCW polygon, axis-aligned rectangles (xmin, ymin, xmax, ymax) whose union is
    the room (``cover``: may overlap, every convex subset of the room lies in one of them for the
    shapes built here; ``tiles``: disjoint, for meshing floor and ceiling), and the wall height."""

    polygon: np.ndarray
    cover: tuple[tuple[float, float, float, float], ...]
    tiles: tuple[tuple[float, float, float, float], ...]
    wall_height: float


def _make_room(rng: np.random.Generator, min_area: float) -> _Room:
    """A rectangle or an L-shape with 3-9 m outer sides, area in [max(12, min_area), 60] m^2."""
    min_area = float(np.clip(min_area, 12.0, 55.0))
    wall_height = float(rng.uniform(2.5, 3.0))
    l_shape = bool(rng.random() < 0.35)
    for _ in range(1000):
        w, d = rng.uniform(3.0, 9.0, size=2)
        if not l_shape:
            if min_area <= w * d <= 60.0:
                poly = np.array([[0, 0], [w, 0], [w, d], [0, d]], dtype=float)
                rect = ((0.0, 0.0, float(w), float(d)),)
                return _Room(poly, rect, rect, wall_height)
            continue
        if w < 5.0 or d < 5.0:
            continue
        nw = rng.uniform(1.2, w - 2.8)  # notch removed from the (+x, +y) corner; arms stay >= 2.8 m wide
        nd = rng.uniform(1.2, d - 2.8)
        area = w * d - nw * nd
        if not min_area <= area <= 60.0:
            continue
        poly = np.array([[0, 0], [w, 0], [w, d - nd], [w - nw, d - nd], [w - nw, d], [0, d]], dtype=float)
        cover = ((0.0, 0.0, float(w), float(d - nd)), (0.0, 0.0, float(w - nw), float(d)))
        tiles = ((0.0, 0.0, float(w), float(d - nd)), (0.0, float(d - nd), float(w - nw), float(d)))
        return _Room(poly, cover, tiles, wall_height)
    raise RuntimeError("could not draw a room")  # pragma: no cover - the loop practically always succeeds


def _in_cover(points: np.ndarray, room: _Room, margin: float) -> np.ndarray:
    """(M,) bool: all of the (M, P, 2) point sets lie inside one cover rectangle shrunk by ``margin``."""
    pts = points if points.ndim == 3 else points[:, None, :]
    ok = np.zeros(pts.shape[0], dtype=bool)
    for x0, y0, x1, y1 in room.cover:
        inside = (
            (pts[..., 0] >= x0 + margin) & (pts[..., 0] <= x1 - margin)
            & (pts[..., 1] >= y0 + margin) & (pts[..., 1] <= y1 - margin)
        )
        ok |= inside.all(axis=1)
    return ok


# --------------------------------------------------------------------------------------------------
# Furniture
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Placed:
    """A placed box plus the footprint used for collisions (doors keep their swing area clear)."""

    spec: FurnitureSpec
    centroid: np.ndarray
    extent: np.ndarray
    rotation: np.ndarray
    keep_center: np.ndarray
    keep_half: np.ndarray

    @property
    def z_range(self) -> tuple[float, float]:
        return float(self.centroid[2] - self.extent[2] / 2), float(self.centroid[2] + self.extent[2] / 2)


def _plan_objects(rng: np.random.Generator, n: int) -> list[FurnitureSpec]:
    """The categories to place, one entry per instance: 2+ chairs, one or two more repeated
    categories, and distinct single-instance categories for the rest."""
    by_cat = {s.category: s for s in CATALOGUE}
    n_chairs = min(int(rng.integers(2, 7)), max(2, n // 3))
    plan = [by_cat["chair"]] * n_chairs
    remaining = n - n_chairs
    multi = [s for s in CATALOGUE if s.max_count >= 2 and s.category != "chair"]
    n_extra = int(rng.integers(1, 3)) if n >= 8 else 0
    picks = rng.choice(len(multi), size=n_extra, replace=False) if n_extra else []
    used = {"chair"}
    for i in picks:
        spec = multi[int(i)]
        count = min(int(rng.integers(2, spec.max_count + 1)), remaining - 2)
        if count < 2:
            continue
        plan += [spec] * count
        remaining -= count
        used.add(spec.category)
    plan += _draw_unique(rng, remaining, used)
    return plan


def _draw_unique(rng: np.random.Generator, k: int, used: set[str]) -> list[FurnitureSpec]:
    """``k`` distinct catalogue categories not in ``used``, drawn by weight without replacement."""
    pool = [s for s in CATALOGUE if s.category not in used]
    if k <= 0 or not pool:
        return []
    w = np.array([s.weight for s in pool], dtype=float)
    idx = rng.choice(len(pool), size=min(k, len(pool)), replace=False, p=w / w.sum())
    return [pool[int(i)] for i in idx]


def _jittered_size(rng: np.random.Generator, spec: FurnitureSpec) -> np.ndarray:
    return np.asarray(spec.size, dtype=float) * rng.uniform(0.85, 1.15, size=3)


def _propose(rng: np.random.Generator, spec: FurnitureSpec, room: _Room, wall_lengths: np.ndarray) -> _Placed | None:
    """One random pose for ``spec``: against a wall (drawn by length) or free on the floor."""
    ext = _jittered_size(rng, spec)
    if spec.placement == "wall":
        ok = wall_lengths >= ext[0] + 0.1
        if not ok.any():
            return None
        p = np.where(ok, wall_lengths, 0.0)
        k = int(rng.choice(len(wall_lengths), p=p / p.sum()))
        a = room.polygon[k]
        b = room.polygon[(k + 1) % len(room.polygon)]
        along = (b - a) / wall_lengths[k]
        inward = np.array([-along[1], along[0]])
        s = rng.uniform(ext[0] / 2 + 0.05, wall_lengths[k] - ext[0] / 2 - 0.05)
        c2 = a + along * s + inward * (ext[1] / 2 + WALL_GAP)
        yaw = math.atan2(along[1], along[0])
        elevation = max(spec.elevation, FLOOR_GAP)
    else:
        x0, y0 = room.polygon.min(axis=0)
        x1, y1 = room.polygon.max(axis=0)
        c2 = rng.uniform([x0, y0], [x1, y1])
        if rng.random() < 0.7:
            yaw = float(rng.integers(0, 4)) * math.pi / 2 + rng.normal(0.0, math.radians(8))
        else:
            yaw = rng.uniform(-math.pi, math.pi)
        elevation = FLOOR_GAP
    rot = rotation_z(yaw)
    centroid = np.array([c2[0], c2[1], elevation + ext[2] / 2])
    keep_center, keep_half = c2.copy(), ext[:2] / 2
    if spec.category == "door":  # keep the door's swing area free of furniture
        swing = 0.7
        keep_center = c2 + rot[:2, 1] * swing / 2
        keep_half = np.array([ext[0] / 2, ext[1] / 2 + swing / 2])
    return _Placed(spec, centroid, ext, rot, keep_center, keep_half)


def _fits(cand: _Placed, placed: list[_Placed], room: _Room) -> bool:
    """Inside the room (all footprint corners in one cover rectangle, top under the ceiling) and at
    least CLEARANCE away from every placed object whose height range overlaps."""
    z0, z1 = cand.z_range
    if z1 > room.wall_height - 0.05:
        return False
    rot2 = cand.rotation[:2, :2]
    corners = np.concatenate(
        [_rect_corners_2d(cand.centroid[:2], cand.extent[:2] / 2, rot2),
         _rect_corners_2d(cand.keep_center, cand.keep_half, rot2)]
    )
    if not _in_cover(corners[None], room, 0.0)[0]:
        return False
    half_gap = np.full(2, CLEARANCE / 2)
    for other in placed:
        o0, o1 = other.z_range
        if z1 + CLEARANCE <= o0 or o1 + CLEARANCE <= z0:
            continue
        if _rects_overlap(cand.keep_center, cand.keep_half + half_gap, rot2,
                          other.keep_center, other.keep_half + half_gap, other.rotation[:2, :2]):
            return False
    return True


def _place_objects(rng: np.random.Generator, room: _Room, n: int) -> list[_Placed] | None:
    """Rejection-sample ``n`` non-overlapping objects (largest first); a category that does not fit
    is replaced by another unused one. Returns None when the room cannot hold ``n`` objects."""
    plan = _plan_objects(rng, n)
    plan.sort(key=lambda s: -s.size[0] * s.size[1])
    wall_lengths = np.linalg.norm(np.roll(room.polygon, -1, axis=0) - room.polygon, axis=1)
    placed: list[_Placed] = []
    queue = list(plan)
    used = {s.category for s in plan}
    while queue:
        spec = queue.pop(0)
        for _ in range(150):
            cand = _propose(rng, spec, room, wall_lengths)
            if cand is not None and _fits(cand, placed, room):
                placed.append(cand)
                break
        else:
            repl = _draw_unique(rng, 1, used)
            if not repl:
                return None
            used.add(repl[0].category)
            queue.append(repl[0])
    return placed


def _counts_ok(placed: list[_Placed]) -> bool:
    cats = [p.spec.category for p in placed]
    counts = {c: cats.count(c) for c in set(cats)}
    return any(v >= 2 for v in counts.values()) and any(v == 1 for v in counts.values())


# --------------------------------------------------------------------------------------------------
# Mesh
# --------------------------------------------------------------------------------------------------


def _grid_patch(origin: np.ndarray, u: np.ndarray, v: np.ndarray, res: float) -> tuple[np.ndarray, np.ndarray]:
    """A parallelogram ``origin + s*u + t*v`` (s, t in [0, 1]) as a vertex grid with spacing <= res.

    Triangles wind so that their normal is ``u x v``. Returns (V, 3) float64 and (F, 3) int64.
    """
    nu = max(1, int(math.ceil(np.linalg.norm(u) / res - 1e-9)))
    nv = max(1, int(math.ceil(np.linalg.norm(v) / res - 1e-9)))
    s = np.linspace(0.0, 1.0, nu + 1)
    t = np.linspace(0.0, 1.0, nv + 1)
    verts = origin[None, None, :] + s[:, None, None] * u[None, None, :] + t[None, :, None] * v[None, None, :]
    i, j = np.meshgrid(np.arange(nu), np.arange(nv), indexing="ij")
    a = (i * (nv + 1) + j).ravel()
    b = a + (nv + 1)
    c = b + 1
    d = a + 1
    faces = np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])
    return verts.reshape(-1, 3), faces.astype(np.int64)


def _box_patches(centroid: np.ndarray, extent: np.ndarray,
                 rotation: np.ndarray) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The six outward-facing faces of a box as (origin, u, v) parallelograms in world."""
    h = extent / 2
    ex, ey, ez = (rotation[:, k] * extent[k] for k in range(3))
    lo = centroid - rotation @ h
    return [
        (lo + ex, ey, ez), (lo, ez, ey),  # +x, -x
        (lo + ey, ez, ex), (lo, ex, ez),  # +y, -y
        (lo + ez, ex, ey), (lo, ey, ex),  # +z, -z
    ]


@dataclass
class _MeshBuilder:
    """Accumulates patches with their aggregation object id, segment id and colour."""

    res: float
    verts: list[np.ndarray] = field(default_factory=list)
    faces: list[np.ndarray] = field(default_factory=list)
    obj: list[np.ndarray] = field(default_factory=list)
    seg: list[np.ndarray] = field(default_factory=list)
    col: list[np.ndarray] = field(default_factory=list)
    n_verts: int = 0
    n_segs: int = 0

    def add(self, origin: np.ndarray, u: np.ndarray, v: np.ndarray, object_id: int,
            color: tuple[int, int, int]) -> None:
        """Add one patch as its own segment."""
        verts, faces = _grid_patch(origin, u, v, self.res)
        self.verts.append(verts)
        self.faces.append(faces + self.n_verts)
        self.obj.append(np.full(len(verts), object_id, dtype=np.int64))
        self.seg.append(np.full(len(verts), self.n_segs, dtype=np.int64))
        self.col.append(np.tile(np.asarray(color, dtype=np.uint8), (len(verts), 1)))
        self.n_verts += len(verts)
        self.n_segs += 1

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return (np.concatenate(self.verts), np.concatenate(self.faces), np.concatenate(self.col),
                np.concatenate(self.obj), np.concatenate(self.seg))


def _build_mesh(room: _Room, objects: list[SyntheticObject],
                res: float) -> tuple[tuple[np.ndarray, ...], dict[int, str]]:
    """Mesh of furniture, walls (inward normals), floor and ceiling; returns the arrays
    (vertices, faces, colours, vertex objectId, vertex segment) and the structure labels."""
    mb = _MeshBuilder(res)
    for obj in objects:
        color = CATEGORY_COLORS.get(obj.category, (128, 128, 128))
        for origin, u, v in _box_patches(obj.centroid, obj.axes_lengths, obj.rotation):
            mb.add(origin, u, v, obj.instance_id, color)
    labels: dict[int, str] = {}
    next_id = len(objects)
    up = np.array([0.0, 0.0, room.wall_height])
    poly = room.polygon
    for k in range(len(poly)):
        a = np.array([poly[k, 0], poly[k, 1], 0.0])
        b = np.array([poly[(k + 1) % len(poly), 0], poly[(k + 1) % len(poly), 1], 0.0])
        mb.add(a, up, b - a, next_id, STRUCTURE_COLORS["wall"])
        labels[next_id] = "wall"
        next_id += 1
    for name, z in (("floor", 0.0), ("ceiling", room.wall_height)):
        for x0, y0, x1, y1 in room.tiles:
            o = np.array([x0, y0, z])
            ux, uy = np.array([x1 - x0, 0.0, 0.0]), np.array([0.0, y1 - y0, 0.0])
            u, v = (ux, uy) if name == "floor" else (uy, ux)
            mb.add(o, u, v, next_id, STRUCTURE_COLORS[name])
        labels[next_id] = name
        next_id += 1
    return mb.arrays(), labels


# --------------------------------------------------------------------------------------------------
# Camera path
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Obstacles:
    """Footprints (oriented rectangles) of objects reaching above TALL_OBJECT_Z."""

    center: np.ndarray  # (K, 2)
    half: np.ndarray  # (K, 2)
    rot: np.ndarray  # (K, 2, 2) columns = rectangle axes

    def blocked(self, points: np.ndarray, margin: float) -> np.ndarray:
        """(M,) bool: point within ``margin`` (Chebyshev, in the box frame) of any footprint."""
        if len(self.center) == 0:
            return np.zeros(len(points), dtype=bool)
        local = np.einsum("mkj,kji->mki", points[:, None, :] - self.center[None], self.rot)
        return (np.abs(local) < self.half[None] + margin).all(axis=2).any(axis=1)


def _free(points: np.ndarray, room: _Room, obstacles: _Obstacles, wall_margin: float, obj_margin: float) -> np.ndarray:
    """(M,) bool: xy points at least ``wall_margin`` inside the room and clear of tall objects."""
    return _in_cover(points, room, wall_margin) & ~obstacles.blocked(points, obj_margin)


def _segment_free(a: np.ndarray, b: np.ndarray, room: _Room, obstacles: _Obstacles,
                  margin: tuple[float, float]) -> np.ndarray:
    """(M,) bool: the straight segments a[m] -> b[m] are free, sampled every 5 cm."""
    n = int(math.ceil(np.linalg.norm(b - a, axis=1).max() / 0.05)) + 1
    t = np.linspace(0.0, 1.0, n)
    pts = a[:, None, :] + t[None, :, None] * (b - a)[:, None, :]
    ok = _free(pts.reshape(-1, 2), room, obstacles, *margin).reshape(len(a), n)
    return ok.all(axis=1)


def _waypoints(rng: np.random.Generator, room: _Room, obstacles: _Obstacles, length: float) -> np.ndarray | None:
    """A random walk of waypoints in free space (0.4 m from walls, 0.35 m from tall objects) whose
    straight segments are free too; total length >= ``length``. None when stuck."""
    margin = (0.4, 0.35)
    lo, hi = room.polygon.min(axis=0), room.polygon.max(axis=0)
    cand = rng.uniform(lo, hi, size=(512, 2))
    ok = _free(cand, room, obstacles, *margin)
    if not ok.any():
        return None
    pts = [cand[int(np.argmax(ok))]]
    heading = rng.uniform(-math.pi, math.pi)
    total = 0.0
    while total < length or len(pts) < 3:
        for spread in (math.radians(50), math.radians(100), math.pi):
            ang = heading + rng.normal(0.0, spread, size=64)
            dist = rng.uniform(0.8, 2.5, size=64)
            nxt = pts[-1][None, :] + dist[:, None] * np.stack([np.cos(ang), np.sin(ang)], axis=1)
            good = _free(nxt, room, obstacles, *margin)
            if good.any():
                start = np.repeat(pts[-1][None], int(good.sum()), axis=0)
                good[good] = _segment_free(start, nxt[good], room, obstacles, margin)
            if good.any():
                k = int(np.argmax(good))
                heading = float(ang[k])
                total += float(dist[k])
                pts.append(nxt[k])
                break
        else:
            return None
    return np.array(pts)


def _catmull_rom(points: np.ndarray, samples_per_segment: int = 64) -> np.ndarray:
    """Dense samples of the centripetal Catmull-Rom spline through (P, D) points (ends extended by
    reflection). The curve passes through every point; returns (S, D)."""
    p = np.concatenate([2 * points[:1] - points[1:2], points, 2 * points[-1:] - points[-2:-1]])
    out = []
    t = np.linspace(0.0, 1.0, samples_per_segment, endpoint=False)[:, None]
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        t0 = 0.0
        t1 = t0 + max(np.linalg.norm(p1 - p0), 1e-6) ** 0.5
        t2 = t1 + max(np.linalg.norm(p2 - p1), 1e-6) ** 0.5
        t3 = t2 + max(np.linalg.norm(p3 - p2), 1e-6) ** 0.5
        tt = t1 + t * (t2 - t1)
        a1 = (t1 - tt) / (t1 - t0) * p0 + (tt - t0) / (t1 - t0) * p1
        a2 = (t2 - tt) / (t2 - t1) * p1 + (tt - t1) / (t2 - t1) * p2
        a3 = (t3 - tt) / (t3 - t2) * p2 + (tt - t2) / (t3 - t2) * p3
        b1 = (t2 - tt) / (t2 - t0) * a1 + (tt - t0) / (t2 - t0) * a2
        b2 = (t3 - tt) / (t3 - t1) * a2 + (tt - t1) / (t3 - t1) * a3
        out.append((t2 - tt) / (t2 - t1) * b1 + (tt - t1) / (t2 - t1) * b2)
    out.append(points[-1:])
    return np.concatenate(out)


def _smooth_noise(rng: np.random.Generator, t: np.ndarray, freqs: tuple[float, float]) -> np.ndarray:
    """A smooth deterministic signal in [-1, 1]: three sinusoids with random frequency and phase."""
    f = rng.uniform(*freqs, size=3)
    ph = rng.uniform(0.0, 2 * math.pi, size=3)
    amp = np.array([0.5, 0.3, 0.2])
    return (amp[None, :] * np.sin(2 * math.pi * f[None, :] * t[:, None] + ph[None, :])).sum(axis=1)


def _camera_centers(rng: np.random.Generator, room: _Room, obstacles: _Obstacles, n_frames: int,
                    fps: float) -> np.ndarray | None:
    """(N, 3) camera centres: a walk at 0.3-0.8 m/s along a spline through free waypoints, about
    1.5 m high. None when no valid path was found."""
    t = np.arange(n_frames) / fps
    speed = rng.uniform(0.3, 0.8)
    mod_f = 0.4
    mod_a = 0.15 * speed / (2 * math.pi * mod_f)
    s = speed * t + mod_a * np.sin(2 * math.pi * mod_f * t + rng.uniform(0, 2 * math.pi))
    s -= s[0]
    need = float(s.max()) + 0.3
    for _ in range(20):
        wp = _waypoints(rng, room, obstacles, need)
        if wp is None:
            continue
        dense = _catmull_rom(wp)
        arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(dense, axis=0), axis=1))])
        if arc[-1] < need:
            continue
        xy = np.stack([np.interp(s, arc, dense[:, 0]), np.interp(s, arc, dense[:, 1])], axis=1)
        if not _free(xy, room, obstacles, 0.25, 0.2).all():
            continue
        base = rng.uniform(1.42, 1.58)
        z = base + 0.05 * _smooth_noise(rng, t, (0.05, 0.3)) + 0.01 * np.sin(2 * math.pi * 1.8 * t)
        return np.concatenate([xy, z[:, None]], axis=1)
    return None


def _view_angles(rng: np.random.Generator, centers: np.ndarray, objects: list[SyntheticObject], fps: float,
                 polygon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N,) yaw and pitch (radians) of the viewing direction: keyframes every 1.5-3 s aim at an object
    centroid at least 1.2 m away whose line of sight stays inside the room polygon (not around the
    corner of an L-shaped room; least-viewed first, small turns preferred); shape-preserving cubic
    interpolation between keyframes plus a little hand-held jitter. Pitch is clipped to a slight
    downward look ([-30, -6] degrees)."""
    from scipy.interpolate import PchipInterpolator

    n = len(centers)
    t = np.arange(n) / fps
    key_t = [0.0]
    while key_t[-1] < t[-1]:
        key_t.append(key_t[-1] + rng.uniform(1.5, 3.0))
    cents = np.array([o.centroid for o in objects])
    visits = np.zeros(len(objects))
    yaws: list[float] = []
    pitches: list[float] = []
    prev_yaw = None
    for kt in key_t:
        c = centers[min(int(round(kt * fps)), n - 1)]
        d = cents - c[None, :]
        horiz = np.linalg.norm(d[:, :2], axis=1)
        yaw_o = np.arctan2(d[:, 1], d[:, 0])
        turn = np.zeros(len(objects)) if prev_yaw is None else np.abs(np.angle(np.exp(1j * (yaw_o - prev_yaw))))
        score = visits + turn / math.pi + rng.uniform(0.0, 0.8, size=len(objects))
        score[horiz < 1.2] = np.inf
        ray = c[None, None, :2] + np.linspace(0.05, 0.95, 16)[None, :, None] * d[:, None, :2]
        score[~points_in_polygon(ray.reshape(-1, 2), polygon).reshape(len(objects), -1).all(axis=1)] = np.inf
        if np.isfinite(score).any():
            k = int(np.argmin(score))
            visits[k] += 1
            yaw = float(yaw_o[k])
            pitch = math.atan2(float(d[k, 2]), float(horiz[k]))
        else:
            yaw = (prev_yaw if prev_yaw is not None else 0.0) + rng.uniform(-1.0, 1.0)
            pitch = -0.3
        if prev_yaw is not None:  # unwrap: the shortest turn from the previous keyframe
            yaw = prev_yaw + float(np.angle(np.exp(1j * (yaw - prev_yaw))))
        prev_yaw = yaw
        yaws.append(yaw)
        pitches.append(float(np.clip(pitch, math.radians(-30), math.radians(-6))))
    yaw_t = PchipInterpolator(key_t, yaws)(t) + math.radians(1.5) * _smooth_noise(rng, t, (0.2, 0.8))
    pitch_t = PchipInterpolator(key_t, pitches)(t) + math.radians(1.0) * _smooth_noise(rng, t, (0.2, 0.8))
    return yaw_t, pitch_t


def look_rotation(yaw: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """(N, 3, 3) OpenCV camera-to-world rotations (columns right, down, forward) for a forward
    direction of the given yaw (from +x, counter-clockwise) and pitch (up positive), world up = +z."""
    f = np.stack([np.cos(pitch) * np.cos(yaw), np.cos(pitch) * np.sin(yaw), np.sin(pitch)], axis=-1)
    up = np.array([0.0, 0.0, 1.0])
    r = np.cross(f, up)
    r /= np.linalg.norm(r, axis=-1, keepdims=True)
    dn = np.cross(f, r)
    return np.stack([r, dn, f], axis=-1)


# --------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------


def _axis_alignment(rng: np.random.Generator) -> np.ndarray:
    """ScanNet-style axisAlignment (aligned = A @ raw): a yaw 15-75 degrees off a multiple of 90 plus
    a translation."""
    yaw = math.radians(rng.uniform(15.0, 75.0) + 90.0 * int(rng.integers(0, 4)))
    a = np.eye(4)
    a[:3, :3] = rotation_z(yaw)
    a[:3, 3] = [rng.uniform(-4.0, 4.0), rng.uniform(-4.0, 4.0), rng.uniform(-0.3, 0.3)]
    return a


def _to_objects(rng: np.random.Generator, placed: list[_Placed]) -> list[SyntheticObject]:
    """Assign instance ids (0-based, in placement order) and raw labels."""
    out = []
    for i, p in enumerate(placed):
        raw = p.spec.raw_labels[int(rng.integers(0, len(p.spec.raw_labels)))]
        out.append(SyntheticObject(i, p.spec.category, raw, p.centroid.copy(), p.extent.copy(), p.rotation.copy()))
    return out


def make_scene(scene_id: str, seed: int, config: SyntheticConfig = SyntheticConfig()) -> SyntheticScene:
    """Draw a whole synthetic scene (room, furniture, mesh, camera path) from ``seed``."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(config.n_objects[0], config.n_objects[1] + 1))
    for _ in range(50):
        room = _make_room(rng, min_area=1.7 * n)
        for _ in range(5):
            placed = _place_objects(rng, room, n)
            if placed is None or not _counts_ok(placed):
                continue
            tall = [p for p in placed if p.z_range[1] > TALL_OBJECT_Z]
            obstacles = _Obstacles(
                np.array([p.centroid[:2] for p in tall]).reshape(-1, 2),
                np.array([p.extent[:2] / 2 for p in tall]).reshape(-1, 2),
                np.array([p.rotation[:2, :2] for p in tall]).reshape(-1, 2, 2),
            )
            centers = _camera_centers(rng, room, obstacles, config.n_frames, config.fps)
            if centers is not None:
                return _assemble(scene_id, seed, config, rng, room, placed, centers)
    raise RuntimeError(f"{scene_id}: could not build a scene for seed {seed}")  # pragma: no cover


def _assemble(scene_id: str, seed: int, config: SyntheticConfig, rng: np.random.Generator, room: _Room,
              placed: list[_Placed], centers: np.ndarray) -> SyntheticScene:
    objects = _to_objects(rng, placed)
    yaw, pitch = _view_angles(rng, centers, objects, config.fps, room.polygon)
    poses = np.tile(np.eye(4), (len(centers), 1, 1))
    poses[:, :3, :3] = look_rotation(yaw, pitch)
    poses[:, :3, 3] = centers
    k = min(config.n_invalid_poses, config.n_frames - 1)
    invalid = np.sort(rng.choice(np.arange(1, config.n_frames), size=k, replace=False)).astype(np.int64)
    (verts, faces, colors, vobj, vseg), labels = _build_mesh(room, objects, config.mesh_resolution)
    fx = config.width / 2.0 / math.tan(math.radians(config.fov_x_deg) / 2.0)
    intr = (fx, fx, (config.width - 1) / 2.0, (config.height - 1) / 2.0)
    return SyntheticScene(
        scene_id=scene_id, seed=seed, config=config, room_polygon=room.polygon.copy(),
        room_area=polygon_area(room.polygon), wall_height=room.wall_height, objects=objects,
        vertices=verts, faces=faces, vertex_colors=colors, vertex_object=vobj, vertex_segment=vseg,
        structure_labels=labels, camera_to_world=poses, invalid_pose_frames=invalid, intrinsics=intr,
        axis_alignment=_axis_alignment(rng),
    )
