"""A small navigation interface over a scene mesh (DESIGN.md section 6), with a backend registry.

Frames and units: every point going in or out is metres in the scene graph's z-up world (the frame
of ``SceneMetadata.objects``). A navigable point lies on the walkable floor (its z is the floor
height under it); the agent is a vertical cylinder of ``NavConfig.agent_height`` and
``NavConfig.agent_radius`` standing there.

Backends (``BACKENDS``), each a :class:`Navigator` built by ``from_mesh(vertices, faces, config)``:

* ``grid`` (:mod:`vlm3r.datagen.navigation.grid`): pip-only occupancy grid, the default everywhere;
* ``habitat`` (:mod:`vlm3r.datagen.navigation.habitat`): habitat-sim's Recast/Detour ``PathFinder``, used
  when habitat-sim is installed (conda only on Linux).

The registry is an immutable mapping from name to ``"module:Class"``; modules are imported only when
a backend is asked for, so a missing optional dependency costs nothing until it is used.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import ClassVar

import numpy as np
from vlm3r.schemas.scene import SceneMetadata

AGENT_HEIGHT_M = 1.5
"""Height of the agent cylinder: geometry up to this far above the floor blocks it."""
AGENT_RADIUS_M = 0.15
"""Radius of the agent cylinder: free space is eroded by this much (the issue asks for 0.1-0.2 m)."""
MAX_CLIMB_M = 0.1
"""Geometry up to this far above the floor (rugs, thresholds, the floor's own noise) is walked over."""


class NavigationError(Exception):
    """A navigation mesh that cannot be built (no floor, empty mesh, a backend that cannot load)."""


@dataclass(frozen=True)
class NavConfig:
    """Agent and discretisation settings shared by every backend (metres).

    cell_size: horizontal resolution of the grid backend (Recast's ``cell_size`` for habitat);
    max_cells: the grid backend coarsens ``cell_size`` so that the grid stays under this many cells.
    """

    agent_height: float = AGENT_HEIGHT_M
    agent_radius: float = AGENT_RADIUS_M
    max_climb: float = MAX_CLIMB_M
    cell_size: float = 0.05
    max_cells: int = 4_000_000

    def __post_init__(self) -> None:
        if not 0.0 < self.agent_radius <= 1.0:
            raise ValueError(f"agent_radius must lie in (0, 1] m, got {self.agent_radius}")
        if not 0.0 < self.max_climb < self.agent_height:
            raise ValueError(f"need 0 < max_climb < agent_height, got {self.max_climb}, {self.agent_height}")
        if not 0.005 <= self.cell_size <= 1.0:
            raise ValueError(f"cell_size must lie in [0.005, 1] m, got {self.cell_size}")
        if self.max_cells < 16:
            raise ValueError(f"max_cells must be >= 16, got {self.max_cells}")


@dataclass(frozen=True)
class TopDown:
    """A top-down raster of the navigable area, for pictures.

    ``free`` (H, W) bool: cells where the agent's centre may stand; ``obstacle`` (H, W) bool: cells
    holding geometry between ``max_climb`` and ``agent_height`` above the floor (all False when the
    backend does not know). Cell (i, j) covers x in [x0 + j c, x0 + (j+1) c), y in [y0 + i c, ...),
    with (x0, y0) = ``origin_xy`` and c = ``cell`` (metres, z-up world).
    """

    free: np.ndarray
    obstacle: np.ndarray
    origin_xy: np.ndarray
    cell: float

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """(xmin, xmax, ymin, ymax) in metres, matplotlib's ``imshow(origin="lower")`` extent."""
        h, w = self.free.shape
        x0, y0 = (float(v) for v in self.origin_xy)
        return x0, x0 + w * self.cell, y0, y0 + h * self.cell


class Navigator(ABC):
    """Navigation queries on one scene. Points are (3,) arrays, metres, z-up world.

    Paths are (K, 3) waypoints, K >= 2, from the snapped start to the snapped end, consecutive
    waypoints joined by straight collision-free segments. Unreachable pairs give ``None`` (paths) or
    ``inf`` (distances), never an exception.
    """

    backend: ClassVar[str]

    def __init__(self, config: NavConfig) -> None:
        self.config = config

    @classmethod
    @abstractmethod
    def from_mesh(cls, vertices: np.ndarray, faces: np.ndarray, config: NavConfig = NavConfig()) -> Navigator:
        """Build from a triangle mesh: ``vertices`` (V, 3) metres in the z-up world, ``faces`` (F, 3)
        vertex indices. Raises :class:`NavigationError` when no navigable floor is found."""

    @staticmethod
    def available() -> bool:
        """Whether the backend's dependencies import here."""
        return True

    @abstractmethod
    def snap(self, point: np.ndarray) -> np.ndarray | None:
        """The navigable point nearest to ``point`` (horizontally), or None when there is none."""

    @abstractmethod
    def is_navigable(self, point: np.ndarray) -> bool:
        """Whether the agent can stand at ``point`` (within 0.5 m of the floor height there)."""

    @abstractmethod
    def sample_points(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """(n, 3) navigable points drawn with ``rng`` (uniform over the navigable area)."""

    @abstractmethod
    def island(self, point: np.ndarray) -> int:
        """Id of the connected navigable region holding ``snap(point)``; -1 when nothing is navigable."""

    @abstractmethod
    def shortest_path(self, start: np.ndarray, end: np.ndarray) -> np.ndarray | None:
        """Geodesic shortest path from ``snap(start)`` to ``snap(end)`` as (K, 3) waypoints, or None."""

    @abstractmethod
    def topdown(self) -> TopDown:
        """A top-down raster of the navigable area (for pictures)."""

    def close(self) -> None:
        """Free backend resources (a simulator); the navigator is unusable afterwards."""

    def shortest_paths(self, start: np.ndarray, ends: Sequence[np.ndarray]) -> list[np.ndarray | None]:
        """Shortest paths from one start to many ends (backends may share the search)."""
        return [self.shortest_path(start, e) for e in ends]

    def geodesic_distance(self, start: np.ndarray, end: np.ndarray) -> float:
        """Length (m) of the shortest path, ``inf`` when unreachable."""
        path = self.shortest_path(start, end)
        return float("inf") if path is None else path_length(path)

    def reachable(self, start: np.ndarray, end: np.ndarray) -> bool:
        """Whether ``snap(end)`` can be reached from ``snap(start)``."""
        a, b = self.island(start), self.island(end)
        return a >= 0 and a == b


def path_length(points: np.ndarray) -> float:
    """Length (m) of the polyline through (K, 3) points."""
    p = np.asarray(points, dtype=np.float64)
    return float(np.linalg.norm(np.diff(p, axis=0), axis=1).sum()) if len(p) > 1 else 0.0


BACKENDS: MappingProxyType[str, str] = MappingProxyType({
    "grid": "vlm3r.datagen.navigation.grid:GridNavigator",
    "habitat": "vlm3r.datagen.navigation.habitat:HabitatNavigator",
})
"""Backend name -> ``module:Class`` of its :class:`Navigator` (imported on first use)."""


def backend_class(name: str) -> type[Navigator]:
    """The navigator class of a backend; unknown names raise KeyError listing the known ones."""
    if name not in BACKENDS:
        raise KeyError(f"unknown navigation backend {name!r}; known: {', '.join(sorted(BACKENDS))}")
    module, cls = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), cls)


def available_backends() -> list[str]:
    """Backends whose dependencies import here (``grid`` always)."""
    return [name for name in sorted(BACKENDS) if backend_class(name).available()]


def build_navigator(
    vertices: np.ndarray, faces: np.ndarray, backend: str = "grid", config: NavConfig = NavConfig()
) -> Navigator:
    """Build a backend's navigator from a z-up triangle mesh (see :meth:`Navigator.from_mesh`)."""
    return backend_class(backend).from_mesh(vertices, faces, config)


def check_mesh(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated float64 (V, 3) vertices and int64 (F, 3) faces; raises NavigationError otherwise."""
    v = np.asarray(vertices, dtype=np.float64)
    f = np.asarray(faces)
    if v.ndim != 2 or v.shape[1] != 3 or len(v) == 0:
        raise NavigationError(f"vertices must have shape (V, 3), got {v.shape}")
    if f.ndim != 2 or f.shape[1] != 3 or len(f) == 0:
        raise NavigationError(f"faces must have shape (F, 3), got {f.shape}")
    if not np.isfinite(v).all():
        raise NavigationError("vertices contain NaN or inf")
    f = f.astype(np.int64, copy=False)
    if f.min() < 0 or f.max() >= len(v):
        raise NavigationError(f"face indices out of range [0, {len(v)})")
    return v, f


def read_mesh(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(V, 3) float64 vertices and (F, 3) int64 triangles of a mesh file, in the file's frame.

    Triangle ``.ply`` files take plyfile's fixed-length fast path; other formats, and plys with
    polygons, go through trimesh (which triangulates). Raises :class:`NavigationError` naming the
    file when it is missing, unreadable or has no faces.
    """
    if not path.is_file():
        raise NavigationError(f"{path}: missing mesh")
    verts = faces = None
    try:
        if path.suffix.lower() == ".ply":
            from plyfile import PlyData

            ply = PlyData.read(str(path), known_list_len={"face": {"vertex_indices": 3}})
            v = ply["vertex"]
            verts = np.stack([np.asarray(v["x"]), np.asarray(v["y"]), np.asarray(v["z"])], axis=1).astype(np.float64)
            faces = np.asarray(ply["face"].data["vertex_indices"], dtype=np.int64).reshape(-1, 3)
    except Exception:  # polygons or an unusual ply: trimesh below says what is wrong
        verts = faces = None
    if faces is None:
        try:
            import trimesh

            mesh = trimesh.load(str(path), force="mesh", process=False)
            verts, faces = np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.faces, dtype=np.int64)
        except Exception as exc:
            raise NavigationError(f"{path}: unreadable mesh ({type(exc).__name__}: {exc})") from exc
    if len(faces) == 0:
        raise NavigationError(f"{path}: mesh has no faces")
    return verts, faces


def scene_mesh(scene: SceneMetadata) -> tuple[np.ndarray, np.ndarray] | None:
    """The scene mesh in the z-up world: ``Path(source_root) / mesh_file`` transformed by
    ``raw_to_world``; returns (V, 3) float64 vertices and (F, 3) int64 faces, or None when the scene
    graph names no mesh. Raises :class:`NavigationError` when the named file is missing or unreadable."""
    if not scene.mesh_file or not scene.source_root:
        return None
    verts, faces = read_mesh(Path(scene.source_root) / scene.mesh_file)
    m = np.asarray(scene.raw_to_world if scene.raw_to_world is not None else np.eye(4), dtype=np.float64)
    return verts @ m[:3, :3].T + m[:3, 3], faces
