"""The navigation backend contract, run on every importable backend, on meshes built in code whose
free space is known exactly (shapely polygons of the floor minus walls)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
import trimesh

from vlm3r.datagen.navigation.grid import detect_floor_z, sample_triangles, triangle_normals
from vlm3r.datagen.navigation import (
    BACKENDS,
    NavConfig,
    NavigationError,
    available_backends,
    backend_class,
    build_navigator,
    path_length,
    read_mesh,
    scene_mesh,
)

RADIUS = NavConfig().agent_radius
BACKEND_PARAMS = [
    pytest.param(name, marks=pytest.mark.skipif(name not in available_backends(), reason=f"{name} backend not importable"))
    for name in sorted(BACKENDS)
]


# -- meshes built in code (metres, z-up; floor at z = z0, walls 2.5 m high) ------------------------


def _quad(a, b, z0: float, z1: float) -> trimesh.Trimesh:
    v = np.array([[*a, z0], [*b, z0], [*b, z1], [*a, z1]], dtype=float)
    return trimesh.Trimesh(v, [[0, 1, 2], [0, 2, 3]], process=False)


def _floor(x0: float, y0: float, x1: float, y1: float, z: float) -> trimesh.Trimesh:
    v = np.array([[x0, y0, z], [x1, y0, z], [x1, y1, z], [x0, y1, z]], dtype=float)
    return trimesh.Trimesh(v, [[0, 1, 2], [0, 2, 3]], process=False)


def _wall_box(x0: float, y0: float, x1: float, y1: float, z0: float, height: float = 2.5) -> trimesh.Trimesh:
    box = trimesh.creation.box(extents=[x1 - x0, y1 - y0, height])
    box.apply_translation([(x0 + x1) / 2, (y0 + y1) / 2, z0 + height / 2])
    return box


def room_mesh(outline, floor_rects, extra=(), z0: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Floor rectangles, a wall along every edge of the closed ``outline``, and extra parts."""
    parts = [_floor(*r, z=z0) for r in floor_rects]
    parts += [_quad(outline[k], outline[(k + 1) % len(outline)], z0, z0 + 2.5) for k in range(len(outline))]
    parts += list(extra)
    mesh = trimesh.util.concatenate(parts)
    return np.asarray(mesh.vertices), np.asarray(mesh.faces)


L_OUTLINE = [(0, 0), (6, 0), (6, 6), (4.5, 6), (4.5, 1.5), (0, 1.5)]
L_FLOOR = [(0, 0, 6, 1.5), (4.5, 1.5, 6, 6)]
L_INNER_CORNER = np.array([4.5, 1.5])


def l_corridor(z0: float = 0.0):
    """An L-shaped corridor 1.5 m wide: east along y in [0, 1.5], then north along x in [4.5, 6]."""
    return room_mesh(L_OUTLINE, L_FLOOR, z0=z0)


def room_with_wall(gap: float = 1.0):
    """A 6 x 4 m room; a 0.1 m thick wall at x = 3 from y = 0 up to y = 4 - gap."""
    outline = [(0, 0), (6, 0), (6, 4), (0, 4)]
    return room_mesh(outline, [(0, 0, 6, 4)], extra=[_wall_box(2.95, 0.0, 3.05, 4.0 - gap, 0.0)])


def two_rooms():
    """Two 3 x 3 m rooms side by side (x in [0, 3] and [3.2, 6.2]) with no door between them."""
    parts = room_mesh([(0, 0), (3, 0), (3, 3), (0, 3)], [(0, 0, 3, 3)])
    other = room_mesh([(3.2, 0), (6.2, 0), (6.2, 3), (3.2, 3)], [(3.2, 0, 6.2, 3)])
    return np.vstack([parts[0], other[0]]), np.vstack([parts[1], other[1] + len(parts[0])])


def headings_deg(path: np.ndarray) -> np.ndarray:
    """Signed heading changes (degrees, counter-clockwise positive) at the interior waypoints."""
    d = np.diff(path[:, :2], axis=0)
    a = np.degrees(np.arctan2(d[:, 1], d[:, 0]))
    return (np.diff(a) + 180.0) % 360.0 - 180.0


def clear_of(path: np.ndarray, free: shapely.Geometry, tol: float = 0.02) -> bool:
    """Whether the path's polyline stays inside ``free`` (a polygon the agent centre may cross)."""
    return bool(free.buffer(tol).covers(shapely.LineString(path[:, :2])))


# -- the contract -----------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_l_corridor_path_turns_once_the_right_way(backend: str) -> None:
    nav = build_navigator(*l_corridor(), backend=backend)
    try:
        west, north = np.array([0.5, 0.75, 0.0]), np.array([5.25, 5.5, 0.0])
        corridor = shapely.Polygon(L_OUTLINE).buffer(-RADIUS + 0.05)  # the agent centre's space, loosely
        for start, end, sign in ((west, north, +1.0), (north, west, -1.0)):
            path = nav.shortest_path(start, end)
            assert path is not None and len(path) >= 3
            np.testing.assert_allclose(path[0, :2], start[:2], atol=0.05)
            np.testing.assert_allclose(path[-1, :2], end[:2], atol=0.05)
            turns = headings_deg(path)
            # the shortest path bends once, round the inner corner inflated by the agent radius (a
            # quarter circle; it touches it near the bisector point K); the turn may be split over
            # the few waypoints that round the corner, all turning the same way: left (+) going
            # east then north, right (-) coming back
            k = L_INNER_CORNER + RADIUS * np.array([1.0, -1.0]) / np.sqrt(2.0)
            d_in, d_out = k - start[:2], end[:2] - k
            expected = np.degrees(np.arctan2(d_out[1], d_out[0]) - np.arctan2(d_in[1], d_in[0]))
            expected = (expected + 180.0) % 360.0 - 180.0
            assert np.sign(expected) == sign and 60.0 < abs(expected) < 100.0
            assert abs(turns.sum() - expected) < 8.0
            assert np.all(sign * turns > -1.0)
            corner = np.linalg.norm(path[1:-1, :2] - L_INNER_CORNER, axis=1)
            assert np.all(corner < 0.8), corner
            assert clear_of(path, corridor)
            assert nav.geodesic_distance(start, end) == pytest.approx(path_length(path), rel=1e-6)
    finally:
        nav.close()


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_path_goes_around_a_wall_segment(backend: str) -> None:
    nav = build_navigator(*room_with_wall(gap=1.0), backend=backend)
    try:
        start, end = np.array([1.0, 1.0, 0.0]), np.array([5.0, 1.0, 0.0])
        path = nav.shortest_path(start, end)
        assert path is not None
        length = path_length(path)
        straight = float(np.linalg.norm(end - start))
        # the only way round is through the gap y in [3, 4]; the agent centre keeps RADIUS off the
        # wall end (3, 3), so the path is at least the two segments via (3, 3 + RADIUS)
        via = np.array([3.0, 3.0 + RADIUS])
        lower = np.linalg.norm(via - start[:2]) + np.linalg.norm(end[:2] - via)
        assert length > straight + 1.5
        assert lower - 0.05 <= length <= lower + 0.5
        crossing = path[:, :2]
        left, right = crossing[crossing[:, 0] < 3.0], crossing[crossing[:, 0] > 3.0]
        assert len(left) and len(right)
        wall = shapely.box(2.95, 0.0, 3.05, 3.0)
        assert shapely.LineString(path[:, :2]).distance(wall) >= RADIUS - 0.05
        assert nav.reachable(start, end)
    finally:
        nav.close()


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_unreachable_target_is_reported(backend: str) -> None:
    nav = build_navigator(*two_rooms(), backend=backend)
    try:
        a, b, a2 = np.array([1.5, 1.5, 0.0]), np.array([4.7, 1.5, 0.0]), np.array([0.6, 2.4, 0.0])
        assert nav.shortest_path(a, b) is None
        assert nav.geodesic_distance(a, b) == float("inf")
        assert not nav.reachable(a, b)
        assert nav.island(a) != nav.island(b)
        assert nav.reachable(a, a2) and nav.shortest_path(a, a2) is not None
        paths = nav.shortest_paths(a, [b, a2])
        assert paths[0] is None and paths[1] is not None
    finally:
        nav.close()


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_a_gap_narrower_than_the_agent_blocks_it(backend: str) -> None:
    """A 0.2 m gap is closed to an agent of diameter 0.3 m; a 1 m gap is open."""
    narrow = build_navigator(*room_with_wall(gap=0.2), backend=backend)
    wide = build_navigator(*room_with_wall(gap=1.0), backend=backend)
    try:
        start, end = np.array([1.0, 1.0, 0.0]), np.array([5.0, 1.0, 0.0])
        assert narrow.shortest_path(start, end) is None and not narrow.reachable(start, end)
        assert wide.shortest_path(start, end) is not None
    finally:
        narrow.close()
        wide.close()


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_snap_sample_and_navigability(backend: str) -> None:
    nav = build_navigator(*room_with_wall(gap=1.0), backend=backend)
    try:
        free = shapely.box(0, 0, 6, 4).buffer(-RADIUS + 0.06).difference(shapely.box(2.95, 0, 3.05, 3).buffer(RADIUS - 0.06))
        inside = np.array([1.0, 2.0, 0.0])
        snapped = nav.snap(inside)
        assert snapped is not None and np.linalg.norm(snapped[:2] - inside[:2]) < 0.05 and abs(snapped[2]) < 0.1
        assert nav.is_navigable(snapped)
        on_wall = np.array([3.0, 1.0, 0.0])
        assert not nav.is_navigable(on_wall)
        moved = nav.snap(on_wall)
        assert moved is not None and nav.is_navigable(moved)
        assert 0.1 < np.linalg.norm(moved[:2] - on_wall[:2]) < 0.5
        outside = nav.snap(np.array([9.0, 2.0, 0.0]))
        assert outside is not None and outside[0] < 6.0 - RADIUS + 0.06
        pts = nav.sample_points(200, np.random.default_rng(3))
        again = nav.sample_points(200, np.random.default_rng(3))
        np.testing.assert_array_equal(pts, again)
        assert pts.shape == (200, 3) and np.all(np.abs(pts[:, 2]) < 0.1)
        assert all(free.covers(shapely.Point(p[:2])) for p in pts)
        assert all(nav.is_navigable(p) for p in pts[:20])
        # both sides of the wall are sampled (uniform over the area)
        assert (pts[:, 0] < 3).sum() > 50 and (pts[:, 0] > 3).sum() > 50
        top = nav.topdown()
        assert top.free.shape == top.obstacle.shape and top.free.any()
    finally:
        nav.close()


@pytest.mark.parametrize("backend", BACKEND_PARAMS)
def test_floor_height_is_found(backend: str) -> None:
    nav = build_navigator(*l_corridor(z0=0.7), backend=backend)
    try:
        path = nav.shortest_path(np.array([0.5, 0.75, 0.7]), np.array([5.25, 5.5, 0.7]))
        assert path is not None and np.all(np.abs(path[:, 2] - 0.7) < 0.1)
    finally:
        nav.close()


# -- grid internals and helpers ------------------------------------------------------------------


def test_floor_is_the_lowest_large_horizontal_surface() -> None:
    """A ceiling as large as the floor and a table top do not fool the floor detection."""
    v, f = room_mesh([(0, 0), (4, 0), (4, 4), (0, 4)], [(0, 0, 4, 4)], extra=[_floor(0, 0, 4, 4, 2.5), _floor(1, 1, 2, 2, 0.75)], z0=0.0)
    tri = (v + [0, 0, -0.3])[f]
    normals, areas = triangle_normals(tri)
    assert detect_floor_z(tri, normals, areas) == pytest.approx(-0.3)


def test_triangle_lattice_covers_the_triangle() -> None:
    tri = np.array([[[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
    pts = sample_triangles(tri, 0.1)
    assert len(pts) == 11 * 12 // 2  # legs of 1 m from the right angle, 10 steps each
    # a long thin strip (a wall seen from above) costs about its area over step^2, not length^2
    strip = np.array([[[0.0, 0.0, 0.0], [20.0, 0.0, 0.0], [0.0, 0.0, 2.0]]])
    assert len(sample_triangles(strip, 0.1)) < 201 * 21
    assert np.all(pts[:, 0] + pts[:, 1] <= 1.0 + 1e-9) and np.all(pts >= -1e-12)
    # every point of the triangle is within one step of a lattice point
    probe = np.random.default_rng(0).random((500, 2))
    probe = probe[probe.sum(axis=1) <= 1]
    nearest = np.min(np.linalg.norm(probe[:, None, :] - pts[None, :, :2], axis=2), axis=1)
    assert nearest.max() <= 0.1


def test_mesh_without_floor_or_free_space_is_an_error() -> None:
    wall = _quad((0, 0), (3, 0), 0.0, 2.5)
    with pytest.raises(NavigationError, match="horizontal"):
        build_navigator(np.asarray(wall.vertices), np.asarray(wall.faces))
    tiny = room_mesh([(0, 0), (0.25, 0), (0.25, 0.25), (0, 0.25)], [(0, 0, 0.25, 0.25)])
    with pytest.raises(NavigationError, match="radius"):
        build_navigator(*tiny)
    with pytest.raises(NavigationError, match="faces"):
        build_navigator(np.zeros((3, 3)), np.zeros((0, 3), dtype=int))


def test_registry_and_config() -> None:
    assert "grid" in available_backends()
    assert backend_class("grid").backend == "grid"
    with pytest.raises(KeyError, match="known: grid, habitat"):
        backend_class("recast")
    with pytest.raises(ValueError, match="agent_radius"):
        NavConfig(agent_radius=0.0)
    with pytest.raises(ValueError, match="cell_size"):
        NavConfig(cell_size=5.0)


def test_grid_agent_radius_sets_the_clearance() -> None:
    """Free cells keep at least the agent radius from the walls, and not much more."""
    outline = [(0, 0), (4, 0), (4, 4), (0, 4)]
    for radius in (0.1, 0.2):
        nav = build_navigator(*room_mesh(outline, [(0, 0, 4, 4)]), config=NavConfig(agent_radius=radius))
        pts = nav.sample_points(2000, np.random.default_rng(0))
        margin = np.minimum(np.minimum(pts[:, 0], 4 - pts[:, 0]), np.minimum(pts[:, 1], 4 - pts[:, 1]))
        assert margin.min() >= radius - 1e-9
        assert margin.min() <= radius + 2 * nav.grid.cell


def test_scene_mesh_applies_raw_to_world(tmp_path, make_meta_scene) -> None:
    v, f = l_corridor()
    raw_to_world = np.array([[0, -1, 0, 2.0], [1, 0, 0, -1.0], [0, 0, 1, 0.5], [0, 0, 0, 1]], dtype=float)
    raw = (v - raw_to_world[:3, 3]) @ raw_to_world[:3, :3]  # inverse of the rotation + translation
    (tmp_path / "scans").mkdir()
    trimesh.Trimesh(raw, f, process=False).export(tmp_path / "scans" / "m.ply")
    scene = make_meta_scene([("chair", [1, 1, 0.4], [0.5, 0.5, 0.8], 0)])
    assert scene_mesh(scene) is None  # no mesh named
    scene.source_root, scene.mesh_file, scene.raw_to_world = str(tmp_path), "scans/m.ply", raw_to_world.tolist()
    verts, faces = scene_mesh(scene)
    np.testing.assert_allclose(verts, v, atol=1e-5)
    np.testing.assert_array_equal(faces, f)
    scene.mesh_file = "scans/missing.ply"
    with pytest.raises(NavigationError, match="missing.ply: missing mesh"):
        scene_mesh(scene)
    (tmp_path / "bad.ply").write_bytes(b"ply\nformat nonsense\n")
    with pytest.raises(NavigationError, match="bad.ply: unreadable mesh"):
        read_mesh(tmp_path / "bad.ply")


def test_habitat_frame_conversion_is_a_proper_rotation() -> None:
    """z-up (x, y, z) -> habitat y-up (x, z, -y) and back (importable without habitat-sim)."""
    from vlm3r.datagen.navigation.habitat import Z_UP_TO_HABITAT, from_habitat, to_habitat

    assert np.linalg.det(Z_UP_TO_HABITAT) == pytest.approx(1.0)
    np.testing.assert_allclose(to_habitat(np.array([1.0, 2.0, 3.0])), [1.0, 3.0, -2.0])
    np.testing.assert_allclose(to_habitat(np.array([0.0, 0.0, 1.0])), [0.0, 1.0, 0.0])  # up is up
    p = np.random.default_rng(0).normal(size=(5, 3))
    np.testing.assert_allclose(from_habitat(to_habitat(p)), p)


def test_habitat_glb_export_is_y_up(tmp_path) -> None:
    """The .glb handed to habitat-sim holds the mesh in habitat's y-up frame."""
    from vlm3r.datagen.navigation.habitat import export_glb, to_habitat

    v, f = l_corridor(z0=0.7)
    path = export_glb(v, f, tmp_path / "scene.glb")
    back = trimesh.load(path, force="mesh", process=False)
    np.testing.assert_allclose(np.asarray(back.vertices), to_habitat(v), atol=1e-5)
    assert len(back.faces) == len(f)
    assert np.asarray(back.vertices)[:, 1].min() == pytest.approx(0.7, abs=1e-5)  # the floor is at y = 0.7
