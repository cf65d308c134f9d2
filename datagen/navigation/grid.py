"""The ``grid`` navigation backend: a pip-only occupancy grid built from the scene mesh.

Everything is metres in the z-up world. The build (:func:`rasterize`):

1. **floor**: the lowest height at which near-horizontal triangles (normal within 20 degrees of
   vertical, either winding) hold at least 30% of the area of the largest such height bin (5 cm bins,
   area-weighted), refined to the area-weighted median height of the triangles in that bin. One
   floor per scene (indoor scans are single-storey).
2. **floor cells**: cells touched by near-horizontal triangles within ``max_climb`` of the floor,
   closed morphologically (holes of scanned floors up to about 0.2 m across filled).
3. **obstacle cells**: cells touched by any geometry between ``max_climb`` and ``agent_height``
   above the floor (triangles are sampled on a lattice with steps of at most one cell; a cell a
   surface only clips may be missed, and the erosion of step 4, at least two cells, seals it).
4. **free cells**: floor cells farther than ``agent_radius`` from every non-floor or obstacle cell
   (exact Euclidean distance transform), i.e. where the agent's centre may stand.

Shortest paths: an end in straight free sight of the start gets the straight segment (exactly the
shortest path). Otherwise Dijkstra (``scipy.sparse.csgraph``) runs on the 8-connected graph of free
cells (diagonal steps only when both orthogonal neighbours are free, so paths never cut a blocked
corner), then the cell chain is simplified by line of sight ("string pulling"): from each waypoint,
the last chain point before straight sight breaks becomes the next waypoint. Islands are connected
components of the same graph, so ``reachable`` agrees with ``shortest_path`` exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from vlm3r.datagen.navigation import (
    NavConfig,
    NavigationError,
    Navigator,
    TopDown,
    check_mesh,
)

HORIZONTAL_COS = float(np.cos(np.radians(20.0)))
"""A triangle is near-horizontal when |normal . z| exceeds this."""
FLOOR_BIN_M = 0.05
FLOOR_PEAK_FRACTION = 0.3
"""The floor is the lowest height bin holding at least this share of the largest bin's area."""
SAMPLE_STEP_CELLS = 1.0
"""Triangle lattice spacing, in cells. A cell a surface only clips may be missed: the floor closing
and the agent-radius erosion (>= 2 cells) seal such one-cell gaps."""
MAX_SAMPLES = 40_000_000
"""Above this many lattice points the sampling step grows (memory bound for huge meshes)."""
LOS_STEP_CELLS = 0.5
"""Line-of-sight checks sample segments at this spacing, in cells."""
DETOUR_FACTOR = 1.3
DETOUR_SLACK_M = 1.0
"""The first Dijkstra search stops at ``DETOUR_FACTOR * straight distance + DETOUR_SLACK_M`` metres;
a target it misses triggers an unbounded search (same result, more time)."""
BISECT_BATCH = 15
"""Chain indices tested per vectorised line-of-sight call while simplifying a path."""
NAVIGABLE_DZ_M = 0.5
"""``is_navigable`` accepts points within this height of the floor (habitat's max_y_delta)."""


@dataclass(frozen=True)
class GridMap:
    """Rasters of one scene; cell (i, j) covers x in [x0 + j c, x0 + (j+1) c), y in [y0 + i c, ...).

    floor / obstacle / free: (H, W) bool; origin_xy (2,) = (x0, y0); cell = c; floor_z metres.
    """

    origin_xy: np.ndarray
    cell: float
    floor_z: float
    floor: np.ndarray
    obstacle: np.ndarray
    free: np.ndarray


def triangle_normals(tri: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit normals (F, 3) and areas (F,) m^2 of triangles ``tri`` (F, 3, 3); degenerate ones get a
    zero normal."""
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    norm = np.linalg.norm(n, axis=1)
    unit = np.divide(n, norm[:, None], out=np.zeros_like(n), where=norm[:, None] > 0)
    return unit, 0.5 * norm


def detect_floor_z(tri: np.ndarray, normals: np.ndarray, areas: np.ndarray) -> float:
    """Floor height (m) of a z-up mesh (see the module docstring, step 1)."""
    horizontal = (np.abs(normals[:, 2]) > HORIZONTAL_COS) & (areas > 0)
    if not horizontal.any():
        raise NavigationError("mesh has no horizontal surface to stand on")
    z = tri[horizontal, :, 2].mean(axis=1)
    w = areas[horizontal]
    lo = z.min()
    bins = np.floor((z - lo) / FLOOR_BIN_M).astype(np.int64)
    hist = np.bincount(bins, weights=w)
    k = int(np.flatnonzero(hist >= FLOOR_PEAK_FRACTION * hist.max())[0])
    sel = np.abs(bins - k) <= 1
    order = np.argsort(z[sel])
    cum = np.cumsum(w[sel][order])
    return float(z[sel][order][np.searchsorted(cum, 0.5 * cum[-1])])


def sample_triangles(tri: np.ndarray, step: float) -> np.ndarray:
    """Points (P, 3) on a lattice over every triangle of (F, 3, 3), vertices included.

    From the vertex o with the largest angle, with edges e1, e2 to the other two: the points
    ``o + (i / k1) e1 + (j / k2) e2`` with ``i / k1 + j / k2 <= 1``, ``k = ceil(|e| / step)``. Lattice
    steps are at most ``step`` along both edges (which meet at 60 degrees or more), and the count
    grows with the triangle's area, not its longest edge squared, so long thin wall strips stay cheap.
    All of it is vectorised (no loop over triangles).
    """
    if len(tri) == 0:
        return np.empty((0, 3))
    edges = np.stack([tri[:, 2] - tri[:, 1], tri[:, 0] - tri[:, 2], tri[:, 1] - tri[:, 0]], axis=1)  # opposite vertex k
    length = np.linalg.norm(edges, axis=2)
    o = np.argmax(length, axis=1)  # the largest angle faces the longest edge
    rows = np.arange(len(tri))
    origin = tri[rows, o]
    e1 = tri[rows, (o + 1) % 3] - origin
    e2 = tri[rows, (o + 2) % 3] - origin

    def counts(s: float) -> tuple[np.ndarray, np.ndarray]:
        k1 = np.maximum(1, np.ceil(np.linalg.norm(e1, axis=1) / s)).astype(np.int64)
        k2 = np.maximum(1, np.ceil(np.linalg.norm(e2, axis=1) / s)).astype(np.int64)
        return k1, k2

    k1, k2 = counts(step)
    total = float(((k1 + 1) * (k2 + 1)).sum()) / 2
    if total > MAX_SAMPLES:  # coarsen uniformly to stay within memory
        k1, k2 = counts(step * np.sqrt(total / MAX_SAMPLES))
    row_tri = np.repeat(rows, k1 + 1)  # one row per (triangle, i)
    i = np.arange(len(row_tri)) - np.repeat(np.cumsum(k1 + 1) - (k1 + 1), k1 + 1)
    jmax = np.floor(k2[row_tri] * (1.0 - i / k1[row_tri]) + 1e-9).astype(np.int64)
    pt_tri = np.repeat(row_tri, jmax + 1)
    u = np.repeat(i, jmax + 1) / k1[pt_tri]
    v = (np.arange(len(pt_tri)) - np.repeat(np.cumsum(jmax + 1) - (jmax + 1), jmax + 1)) / k2[pt_tri]
    return origin[pt_tri] + u[:, None] * e1[pt_tri] + v[:, None] * e2[pt_tri]


def rasterize(vertices: np.ndarray, faces: np.ndarray, config: NavConfig) -> GridMap:
    """The grid rasters of a z-up mesh (module docstring, steps 1-4)."""
    v, f = check_mesh(vertices, faces)
    tri = v[f]
    normals, areas = triangle_normals(tri)
    floor_z = detect_floor_z(tri, normals, areas)
    zlo, zhi = tri[:, :, 2].min(axis=1), tri[:, :, 2].max(axis=1)
    horizontal = np.abs(normals[:, 2]) > HORIZONTAL_COS
    floor_tri = tri[horizontal & (zhi <= floor_z + config.max_climb) & (zlo >= floor_z - config.max_climb)]
    if len(floor_tri) == 0:
        raise NavigationError("no floor triangles near the detected floor height")
    lo_xy = floor_tri[:, :, :2].reshape(-1, 2).min(axis=0)
    hi_xy = floor_tri[:, :, :2].reshape(-1, 2).max(axis=0)
    span = hi_xy - lo_xy
    cell = max(config.cell_size, float(np.sqrt(np.prod(span + 1e-9) / config.max_cells)))
    pad = 2
    origin = lo_xy - pad * cell
    w, h = (np.ceil(span / cell).astype(np.int64) + 1 + 2 * pad).tolist()

    def cells_of(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ij = np.floor((points[:, :2] - origin) / cell).astype(np.int64)
        ok = (ij[:, 0] >= 0) & (ij[:, 0] < w) & (ij[:, 1] >= 0) & (ij[:, 1] < h)
        return ij[ok, 1], ij[ok, 0]  # rows (y), cols (x)

    step = SAMPLE_STEP_CELLS * cell
    floor = np.zeros((h, w), dtype=bool)
    floor[cells_of(sample_triangles(floor_tri, step))] = True
    closing = max(1, int(round(0.1 / cell)))  # 3x3 closings: fills holes up to ~2 * 0.1 m
    floor = ndimage.binary_closing(floor, structure=np.ones((3, 3), bool), iterations=closing) | floor
    floor[:pad, :] = floor[-pad:, :] = False
    floor[:, :pad] = floor[:, -pad:] = False

    z0, z1 = floor_z + config.max_climb, floor_z + config.agent_height
    band = (zhi > z0) & (zlo < z1)
    pts = sample_triangles(tri[band], step)
    pts = pts[(pts[:, 2] > z0) & (pts[:, 2] < z1)]
    obstacle = np.zeros((h, w), dtype=bool)
    obstacle[cells_of(pts)] = True

    walkable = floor & ~obstacle
    clearance = ndimage.distance_transform_edt(walkable) * cell - 0.5 * cell
    free = walkable & (clearance >= config.agent_radius - 1e-9)
    if not free.any():
        raise NavigationError(f"no floor area clear of obstacles for an agent of radius {config.agent_radius} m")
    return GridMap(origin_xy=origin, cell=cell, floor_z=floor_z, floor=floor, obstacle=obstacle, free=free)


def grid_graph(free: np.ndarray, cell: float) -> tuple[csr_matrix, np.ndarray]:
    """Symmetric 8-connected graph of the free cells (edge weights in metres) and the (H, W) map of
    cell -> node index (-1 for blocked cells). Diagonal edges need both orthogonal cells free."""
    h, w = free.shape
    index = np.full((h, w), -1, dtype=np.int64)
    index[free] = np.arange(int(free.sum()))
    rows, cols, wts = [], [], []
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        ys, xs = np.nonzero(free)
        ty, tx = ys + dy, xs + dx
        ok = (ty < h) & (tx >= 0) & (tx < w)
        ys, xs, ty, tx = ys[ok], xs[ok], ty[ok], tx[ok]
        ok = free[ty, tx]
        if dy and dx:
            ok &= free[ys, tx] & free[ty, xs]
        a, b = index[ys[ok], xs[ok]], index[ty[ok], tx[ok]]
        length = cell * (np.sqrt(2.0) if dy and dx else 1.0)
        rows += [a, b]
        cols += [b, a]
        wts += [np.full(len(a), length), np.full(len(a), length)]
    n = int(free.sum())
    graph = csr_matrix((np.concatenate(wts), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    return graph, index


class GridNavigator(Navigator):
    """Occupancy-grid navigation (module docstring). Build with :meth:`from_mesh`."""

    backend = "grid"

    def __init__(self, grid: GridMap, config: NavConfig) -> None:
        super().__init__(config)
        self.grid = grid
        self._graph, self._index = grid_graph(grid.free, grid.cell)
        _, self._labels = connected_components(self._graph, directed=False)
        self._free_cells = np.argwhere(grid.free)  # (N, 2) rows, cols in node order
        self._free_flat = grid.free.ravel()
        _, nearest = ndimage.distance_transform_edt(~grid.free, return_indices=True)
        self._nearest = nearest  # (2, H, W): the nearest free cell of every cell

    @classmethod
    def from_mesh(cls, vertices: np.ndarray, faces: np.ndarray, config: NavConfig = NavConfig()) -> GridNavigator:
        return cls(rasterize(vertices, faces, config), config)

    # -- cells <-> points ------------------------------------------------------------------------

    def _raw_cell(self, xy: np.ndarray) -> tuple[int, int]:
        """(row, col) of the cell under xy, possibly outside the grid."""
        j, i = np.floor((np.asarray(xy, dtype=np.float64)[:2] - self.grid.origin_xy) / self.grid.cell).astype(np.int64)
        return int(i), int(j)

    def _centre(self, cells: np.ndarray) -> np.ndarray:
        """(N, 2) xy of cell centres for (N, 2) (row, col) cells."""
        return self.grid.origin_xy + (cells[:, ::-1] + 0.5) * self.grid.cell

    def _snap_cell(self, point: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        """The snapped xy (the point itself when its cell is free, else the nearest free cell's
        centre) and its free cell (row, col)."""
        p = np.asarray(point, dtype=np.float64)
        h, w = self.grid.free.shape
        i, j = self._raw_cell(p)
        if 0 <= i < h and 0 <= j < w and self.grid.free[i, j]:
            return p[:2].copy(), (i, j)
        i, j = min(max(i, 0), h - 1), min(max(j, 0), w - 1)
        ni, nj = int(self._nearest[0, i, j]), int(self._nearest[1, i, j])
        return self._centre(np.array([[ni, nj]]))[0], (ni, nj)

    def _point(self, xy: np.ndarray) -> np.ndarray:
        return np.array([xy[0], xy[1], self.grid.floor_z])

    # -- the interface ---------------------------------------------------------------------------

    def snap(self, point: np.ndarray) -> np.ndarray | None:
        xy, _ = self._snap_cell(point)
        return self._point(xy)

    def is_navigable(self, point: np.ndarray) -> bool:
        p = np.asarray(point, dtype=np.float64)
        xy, _ = self._snap_cell(p)
        return bool(np.allclose(xy, p[:2]) and abs(p[2] - self.grid.floor_z) <= NAVIGABLE_DZ_M)

    def sample_points(self, n: int, rng: np.random.Generator) -> np.ndarray:
        cells = self._free_cells[rng.integers(len(self._free_cells), size=n)]
        xy = self.grid.origin_xy + (cells[:, ::-1] + rng.random((n, 2))) * self.grid.cell
        return np.column_stack([xy, np.full(n, self.grid.floor_z)])

    def island(self, point: np.ndarray) -> int:
        _, cell = self._snap_cell(point)
        return int(self._labels[self._index[cell]])

    def shortest_path(self, start: np.ndarray, end: np.ndarray) -> np.ndarray | None:
        return self.shortest_paths(start, [end])[0]

    def shortest_paths(self, start: np.ndarray, ends: Sequence[np.ndarray]) -> list[np.ndarray | None]:
        """One search from ``start`` serves every end. An end in straight free sight of the start
        gets the straight segment (the exact shortest path) without a search."""
        s_xy, s_cell = self._snap_cell(start)
        src = int(self._index[s_cell])
        targets = [self._snap_cell(e) for e in ends]
        e_xy = np.array([xy for xy, _ in targets]).reshape(-1, 2)
        nodes = np.array([int(self._index[c]) for _, c in targets], dtype=np.int64)
        same = self._labels[nodes] == self._labels[src]
        direct = np.zeros(len(nodes), dtype=bool)
        if same.any():
            direct[same] = self.visible(s_xy, e_xy[same])
        search = same & ~direct
        pred = None
        if search.any():
            far = float(np.linalg.norm(e_xy[search] - s_xy, axis=1).max())
            # Dijkstra explores a disc of radius ``limit`` only: first a bound that holds for most
            # indoor paths, then (if a target was missed) the whole island
            for limit in (DETOUR_FACTOR * far + DETOUR_SLACK_M, np.inf):
                dist, pred = dijkstra(self._graph, directed=True, indices=src, return_predecessors=True, limit=limit)
                if np.isfinite(dist[nodes[search]]).all():
                    break
        out: list[np.ndarray | None] = []
        for k, t in enumerate(nodes):
            if not same[k]:
                out.append(None)
                continue
            if direct[k]:
                xy = np.vstack([s_xy, e_xy[k]])
            else:
                chain = [int(t)]
                while chain[-1] != src:
                    chain.append(int(pred[chain[-1]]))
                cells = self._free_cells[np.array(chain[::-1])]
                xy = self._simplify(np.vstack([s_xy, self._centre(cells[1:-1]), e_xy[k]]))
            out.append(np.column_stack([xy, np.full(len(xy), self.grid.floor_z)]))
        return out

    def topdown(self) -> TopDown:
        g = self.grid
        return TopDown(free=g.free, obstacle=g.obstacle, origin_xy=g.origin_xy, cell=g.cell)

    # -- line of sight ---------------------------------------------------------------------------

    def visible(self, a: np.ndarray, bs: np.ndarray) -> np.ndarray:
        """For one xy point ``a`` (2,) and many ``bs`` (M, 2), all on the grid: whether every
        sample of the segment a-b (spacing ``LOS_STEP_CELLS`` cells) lies in a free cell; (M,) bool.
        Segments between points on the grid stay on it (it is convex), so indices are only capped
        against rounding at its upper edge."""
        g = self.grid
        h, w = g.free.shape
        d = (bs - a[None, :]) / g.cell
        n = np.maximum(1, np.ceil(np.sqrt((d * d).sum(axis=1)) / LOS_STEP_CELLS)).astype(np.int64)
        t = np.minimum(np.arange(int(n.max()) + 1)[None, :] / n[:, None], 1.0)  # (M, S); t > 1 repeats b
        a_c = (a - g.origin_xy) / g.cell
        ix = np.minimum((a_c[0] + t * d[:, :1]).astype(np.int64), w - 1)  # >= 0: truncation = floor
        iy = np.minimum((a_c[1] + t * d[:, 1:]).astype(np.int64), h - 1)
        return self._free_flat[iy * w + ix].all(axis=1)

    def _simplify(self, pts: np.ndarray) -> np.ndarray:
        """Line-of-sight simplification ("string pulling") of an (N, 2) chain of points whose
        consecutive points are joined by free steps.

        From each waypoint i, the chain index where straight sight from i first breaks is searched
        by a batched bisection (each round tests ``BISECT_BATCH`` indices in one vectorised call;
        invariant: the lower bound is visible from i, the upper one is not) and the last visible
        index becomes the next waypoint; the end is taken as soon as it is visible. Finally
        waypoints whose neighbours see each other are dropped. Every kept segment is checked free.
        """
        n = len(pts)
        out = [0]
        while out[-1] < n - 1:
            i = out[-1]
            if self.visible(pts[i], pts[n - 1 :])[0]:
                out.append(n - 1)
                break
            lo, hi = i + 1, n - 1
            while hi - lo > 1:
                cand = np.unique(np.linspace(lo, hi, BISECT_BATCH + 2).round().astype(np.int64))[1:-1]
                bad = np.flatnonzero(~self.visible(pts[i], pts[cand]))
                if len(bad) == 0:
                    lo = int(cand[-1])
                else:
                    hi = int(cand[bad[0]])
                    lo = int(cand[bad[0] - 1]) if bad[0] > 0 else lo
            out.append(lo)
        keep = [out[0]]
        for k in range(1, len(out) - 1):
            if not self.visible(pts[keep[-1]], pts[out[k + 1] : out[k + 1] + 1])[0]:
                keep.append(out[k])
        keep.append(out[-1])
        return pts[keep]
