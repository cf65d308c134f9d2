"""The ``habitat`` navigation backend: habitat-sim's Recast/Detour ``PathFinder``.

habitat-sim is not pip-installable on Linux (``conda install habitat-sim -c conda-forge -c aihabitat``),
so it is imported only inside this module's functions. The scene mesh (z-up world, metres) is
written as binary glTF in habitat's y-up frame, loaded as the stage of a renderer-less Simulator,
and the navmesh is recomputed with the agent's height, radius and climb (``NavConfig``).

Frames: habitat is y-up with -z forward; a z-up world point (x, y, z) is (x, z, -y) there
(:data:`Z_UP_TO_HABITAT`, a proper rotation), and every point crossing the interface is converted,
so callers only ever see the z-up world.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from vlm3r.datagen.navigation import (
    NavConfig,
    NavigationError,
    Navigator,
    TopDown,
    check_mesh,
)

Z_UP_TO_HABITAT = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
"""Rotation taking z-up world coordinates to habitat's y-up frame: (x, y, z) -> (x, z, -y)."""
INSTALL_HINT = "the habitat backend needs habitat-sim: conda install habitat-sim -c conda-forge -c aihabitat"
NAVIGABLE_DZ_M = 0.5
TOPDOWN_CELL_M = 0.05


def to_habitat(points: np.ndarray) -> np.ndarray:
    """(..., 3) z-up world points -> habitat y-up coordinates."""
    return np.asarray(points, dtype=np.float64) @ Z_UP_TO_HABITAT.T


def from_habitat(points: np.ndarray) -> np.ndarray:
    """(..., 3) habitat y-up coordinates -> z-up world points."""
    return np.asarray(points, dtype=np.float64) @ Z_UP_TO_HABITAT


def export_glb(vertices: np.ndarray, faces: np.ndarray, path: Path) -> Path:
    """Write a z-up mesh as y-up binary glTF at ``path``.

    With pyassimp importable, the y-up mesh goes through assimp's ``glb2`` exporter (as habitat's
    own conversion tools do); without it, or when assimp fails, trimesh writes the .glb.
    """
    import trimesh

    mesh = trimesh.Trimesh(vertices=to_habitat(vertices), faces=faces, process=False)
    try:
        import pyassimp

        ply = path.with_suffix(".ply")
        mesh.export(str(ply), file_type="ply")
        loaded = pyassimp.load(str(ply))
        if hasattr(loaded, "__enter__"):  # pyassimp >= 4.1: a context manager that releases the scene
            with loaded as scene:
                pyassimp.export(scene, str(path), file_type="glb2")
        else:
            try:
                pyassimp.export(loaded, str(path), file_type="glb2")
            finally:
                pyassimp.release(loaded)
        if path.is_file() and path.stat().st_size > 0:
            return path
    except Exception:  # not installed, its native library missing, or an old pyassimp without export
        pass
    mesh.export(str(path), file_type="glb")
    return path


def _vec(p: np.ndarray) -> np.ndarray:
    """(3,) float32, the form habitat-sim's bindings accept for a ``magnum.Vector3``."""
    return np.asarray(p, dtype=np.float32)


class HabitatNavigator(Navigator):
    """habitat-sim ``PathFinder`` behind the :class:`Navigator` interface (z-up in, z-up out).

    Holds a renderer-less ``habitat_sim.Simulator`` (its stage is the scene mesh); call
    :meth:`close` (or use it as a context manager) to free it.
    """

    backend = "habitat"

    def __init__(self, sim, tmpdir: tempfile.TemporaryDirectory, config: NavConfig) -> None:  # noqa: ANN001
        super().__init__(config)
        self._sim = sim
        self._tmpdir = tmpdir
        self.pathfinder = sim.pathfinder

    @staticmethod
    def available() -> bool:
        import importlib

        try:
            importlib.import_module("habitat_sim")
        except Exception:
            return False
        return True

    @classmethod
    def from_mesh(cls, vertices: np.ndarray, faces: np.ndarray, config: NavConfig = NavConfig()) -> HabitatNavigator:
        try:
            import habitat_sim
        except ImportError as exc:
            raise ImportError(INSTALL_HINT) from exc
        v, f = check_mesh(vertices, faces)
        tmpdir = tempfile.TemporaryDirectory(prefix="vlm3r-nav-")
        glb = export_glb(v, f, Path(tmpdir.name) / "scene.glb")
        backend_cfg = habitat_sim.SimulatorConfiguration()
        backend_cfg.scene_id = str(glb)
        backend_cfg.enable_physics = False
        for name, value in (("create_renderer", False), ("load_semantic_mesh", False)):
            if hasattr(backend_cfg, name):
                setattr(backend_cfg, name, value)
        agent_cfg = habitat_sim.agent.AgentConfiguration()
        agent_cfg.height = config.agent_height
        agent_cfg.radius = config.agent_radius
        agent_cfg.sensor_specifications = []
        sim = habitat_sim.Simulator(habitat_sim.Configuration(backend_cfg, [agent_cfg]))
        settings = habitat_sim.NavMeshSettings()
        settings.set_defaults()
        settings.agent_height = config.agent_height
        settings.agent_radius = config.agent_radius
        settings.agent_max_climb = config.max_climb
        settings.cell_size = config.cell_size
        settings.cell_height = min(settings.cell_height, config.max_climb / 2)  # keep max_climb > 0 cells
        if hasattr(settings, "include_static_objects"):
            settings.include_static_objects = True
        ok = sim.recompute_navmesh(sim.pathfinder, settings)
        if ok is False or not sim.pathfinder.is_loaded:
            sim.close()
            tmpdir.cleanup()
            raise NavigationError("habitat-sim could not build a navmesh from the scene mesh")
        return cls(sim, tmpdir, config)

    def close(self) -> None:
        """Free the simulator and its temporary .glb."""
        if self._sim is not None:
            self._sim.close()
            self._sim = None
        self._tmpdir.cleanup()

    def __enter__(self) -> HabitatNavigator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the interface ---------------------------------------------------------------------------

    def _snap_h(self, point: np.ndarray) -> np.ndarray | None:
        q = np.asarray(self.pathfinder.snap_point(_vec(to_habitat(point))), dtype=np.float64)
        return q if np.isfinite(q).all() else None

    def snap(self, point: np.ndarray) -> np.ndarray | None:
        q = self._snap_h(point)
        return None if q is None else from_habitat(q)

    def is_navigable(self, point: np.ndarray) -> bool:
        return bool(self.pathfinder.is_navigable(_vec(to_habitat(point)), max_y_delta=NAVIGABLE_DZ_M))

    def sample_points(self, n: int, rng: np.random.Generator) -> np.ndarray:
        self.pathfinder.seed(int(rng.integers(0, 2**31 - 1)))
        pts = [np.asarray(self.pathfinder.get_random_navigable_point(), dtype=np.float64) for _ in range(n)]
        return from_habitat(np.array(pts).reshape(n, 3))

    def island(self, point: np.ndarray) -> int:
        q = self._snap_h(point)
        if q is None:
            return -1
        if hasattr(self.pathfinder, "get_island"):
            return int(self.pathfinder.get_island(_vec(q)))
        return 0  # older habitat-sim: one island id; reachability falls back to find_path

    def reachable(self, start: np.ndarray, end: np.ndarray) -> bool:
        if hasattr(self.pathfinder, "get_island"):
            return super().reachable(start, end)
        return self.shortest_path(start, end) is not None

    def shortest_path(self, start: np.ndarray, end: np.ndarray) -> np.ndarray | None:
        import habitat_sim

        s, e = self._snap_h(start), self._snap_h(end)
        if s is None or e is None:
            return None
        path = habitat_sim.ShortestPath()
        path.requested_start = _vec(s)
        path.requested_end = _vec(e)
        if not self.pathfinder.find_path(path) or not np.isfinite(path.geodesic_distance):
            return None
        pts = np.array([np.asarray(p, dtype=np.float64) for p in path.points]).reshape(-1, 3)
        if len(pts) == 1:
            pts = np.vstack([pts, pts])
        return from_habitat(pts)

    def shortest_paths(self, start: np.ndarray, ends: Sequence[np.ndarray]) -> list[np.ndarray | None]:
        return [self.shortest_path(start, e) for e in ends]

    def topdown(self) -> TopDown:
        lower, upper = (np.asarray(b, dtype=np.float64) for b in self.pathfinder.get_bounds())
        view = np.asarray(self.pathfinder.get_topdown_view(TOPDOWN_CELL_M, float(lower[1])), dtype=bool)
        # habitat rows run along +z_h = -y (z-up); flip so that row i runs along +y
        rows = view.shape[0]
        origin = np.array([lower[0], -lower[2] - rows * TOPDOWN_CELL_M])
        free = view[::-1].copy()
        return TopDown(free=free, obstacle=np.zeros_like(free), origin_xy=origin, cell=TOPDOWN_CELL_M)
