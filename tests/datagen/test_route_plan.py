"""route_planning: action labels on hand-built paths, the templates, predicates, and whole questions
on corridors whose answers are known by construction and on the synthetic demo scans, re-derived
from the stored waypoints and anchors by an independent computation."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
import shapely
import trimesh

from vlm3r.schemas.rows import record_from_qa_row
from vlm3r.datagen import TASKS
from vlm3r.datagen.route_plan import (
    BACK,
    LEFT,
    REACH_M,
    RIGHT,
    Candidate,
    Landmarks,
    Route,
    RoutePlanning,
    action_choices,
    action_label,
    first_failure,
    long_legs,
    plan_routes,
    signed_turn_deg,
    straight_legs,
    template_text,
    unambiguous_bends,
    QUESTION_CHECKS,
)
from vlm3r.datagen.navigation import build_navigator


def polyline(*headings_and_lengths: tuple[float, float]) -> np.ndarray:
    """A path from the origin: legs of (heading in degrees counter-clockwise from +x, length m)."""
    pts = [np.zeros(3)]
    for heading, length in headings_and_lengths:
        t = math.radians(heading)
        pts.append(pts[-1] + length * np.array([math.cos(t), math.sin(t), 0.0]))
    return np.array(pts)


# -- actions from headings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("legs", "expected"),
    [
        (((0, 3), (90, 3)), [LEFT]),  # east then north: 90 degrees counter-clockwise
        (((0, 3), (-90, 3)), [RIGHT]),  # east then south
        (((0, 3), (180, 2.5)), [BACK]),  # east then back west
        (((0, 3), (20, 3)), []),  # a 20 degree bend is no turn
        (((90, 3), (180, 3), (90, 3)), [LEFT, RIGHT]),  # north, west, north
        (((45, 2), (-45, 2), (-135, 2), (135, 2)), [RIGHT, RIGHT, RIGHT]),
    ],
)
def test_turn_labels_on_hand_built_paths(legs, expected) -> None:
    route = Route.from_path(polyline(*legs))
    labels = [action_label(c) for c in route.changes_deg[route.turns]]
    assert labels == expected
    assert all(action_label(c) is None for k, c in enumerate(route.changes_deg) if k not in set(route.turns))


def test_signed_turn_and_thresholds() -> None:
    east, north = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    assert signed_turn_deg(east, north) == pytest.approx(90.0)
    assert signed_turn_deg(north, east) == pytest.approx(-90.0)
    assert signed_turn_deg(east, -east) == pytest.approx(180.0)
    assert signed_turn_deg(east, np.array([math.cos(2.0), math.sin(2.0)])) == pytest.approx(math.degrees(2.0))
    assert action_label(30.0) is None and action_label(30.5) == LEFT and action_label(-30.5) == RIGHT
    assert action_label(134.9) == LEFT and action_label(135.0) == BACK and action_label(-150.0) == BACK


def test_corner_waypoints_merge_into_one_turn() -> None:
    """Two waypoints 0.15 m apart that round one corner (45 + 45 degrees) are one 90 degree turn."""
    path = np.array([[0, 0, 0], [3.0, 0.0, 0], [3.1, 0.1, 0], [3.1, 3.0, 0]])
    route = Route.from_path(path)
    assert len(route.vertices) == 3 and len(route.turns) == 1
    assert route.changes_deg[route.turns[0]] == pytest.approx(90.0, abs=3.0)


def test_straight_route_midpoint_lies_on_the_path() -> None:
    """A straight route (a small wiggle dropped by the simplification) gets its MID vertex at half
    the path length, on the path itself."""
    path = np.array([[0.0, 0.0, 0], [2.0, 0.1, 0], [4.0, 0.0, 0]])
    route = Route.from_path(path)
    assert len(route.vertices) == 2 and len(route.turns) == 0
    mid_route, k = route.with_midpoint()
    half = 2 * np.hypot(2.0, 0.1) / 2
    assert k == 1 and mid_route.arclength[k] == pytest.approx(half)
    np.testing.assert_allclose(mid_route.vertices[k], [2.0, 0.1, 0.0], atol=1e-9)
    assert mid_route.length_m == pytest.approx(route.length_m)


def test_route_predicates() -> None:
    assert not unambiguous_bends(Route.from_path(polyline((0, 3), (33, 3))))  # near the 30 degree edge
    assert not unambiguous_bends(Route.from_path(polyline((0, 3), (140, 3))))  # near the 135 degree edge
    assert unambiguous_bends(Route.from_path(polyline((0, 3), (90, 3))))
    assert not long_legs(Route.from_path(polyline((0, 3), (90, 0.6), (0, 3))))
    assert long_legs(Route.from_path(polyline((0, 3), (90, 1.2), (0, 3))))
    assert not straight_legs(Route.from_path(polyline((0, 2), (15, 2), (30, 2))))  # 30 degrees in small bends
    assert straight_legs(Route.from_path(polyline((0, 2), (15, 2), (0, 2))))


def test_templates_are_the_design_text() -> None:
    assert template_text(1, ["bed", "sofa", "door"]) == (
        "You are a robot beginning at the bed facing the sofa. You want to navigate to the door. You will "
        "perform the following actions (Note: for each [please fill in], choose either 'turn back,' 'turn "
        "left,' or 'turn right.'): 1. Go forward until the sofa. 2. [please fill in] 3. Go forward until the "
        "door. You have reached the final destination."
    )
    assert template_text(2, ["bed", "sofa", "door"]) == (
        "You are a robot beginning at the sofa facing the door. You want to navigate to the bed. You will "
        "perform the following actions (Note: for each [please fill in], choose either 'turn back,' 'turn "
        "left,' or 'turn right.'): 1. [please fill in] 2. Go forward until the bed. You have reached the "
        "final destination."
    )
    two = template_text(1, ["bed", "sofa", "lamp", "door"])
    assert two.endswith(
        "1. Go forward until the sofa. 2. [please fill in] 3. Go forward until the lamp. 4. [please fill in] "
        "5. Go forward until the door. You have reached the final destination."
    )
    back = template_text(2, ["bed", "sofa", "lamp", "door"])
    assert back.startswith("You are a robot beginning at the lamp facing the door. You want to navigate to the bed.")
    assert back.endswith(
        "1. [please fill in] 2. Go forward until the sofa. 3. [please fill in] 4. Go forward until the bed. "
        "You have reached the final destination."
    )


def test_choices() -> None:
    rng = np.random.default_rng(0)
    for correct in ((LEFT,), (RIGHT,), (BACK,)):
        c = action_choices(correct, rng)
        assert c[0] == correct[0] and sorted(c) == sorted((LEFT, RIGHT, BACK))
    for correct in ((LEFT, BACK), (RIGHT, RIGHT, LEFT)):
        c = action_choices(correct, rng)
        assert len(c) == 4 == len(set(c)) and c[0] == ", ".join(correct)
        assert all(len(x.split(", ")) == len(correct) and set(x.split(", ")) <= {LEFT, RIGHT, BACK} for x in c)


# -- whole questions: an independent re-derivation -------------------------------------------------


def rederive(extra: dict) -> list[str]:
    """The fill-in actions of a stored question, from its ``waypoints`` and anchors' ``vertex``
    indices alone (x, y; counter-clockwise seen from above = left; >= 135 degrees = back)."""
    v = np.array(extra["waypoints"], dtype=float)[:, :2]
    idx = [a["vertex"] for a in extra["anchors"]]
    m = len(idx) - 2

    def turn(u: np.ndarray, w: np.ndarray) -> float:
        return math.degrees(math.atan2(u[0] * w[1] - u[1] * w[0], u[0] * w[0] + u[1] * w[1]))

    if extra["template"] == 1:  # forward along the route, turning at every MID
        angles = [turn(v[i] - v[i - 1], v[i + 1] - v[i]) for i in idx[1:-1]]
    else:  # at the last MID facing along the route, turn back towards SRC, then walk the route backwards
        i = idx[m]
        angles = [turn(v[i + 1] - v[i], v[i - 1] - v[i])] + [turn(v[j] - v[j + 1], v[j - 1] - v[j]) for j in idx[m - 1 : 0 : -1]]
    out = []
    for a in angles:
        assert abs(a) > 40.0 and not 125.0 < abs(a) < 145.0  # clear of both thresholds
        out.append("Turn Back" if abs(a) >= 135 else ("Turn Left" if a > 0 else "Turn Right"))
    return out


def check_question(question: str, answer: str, choices, extra: dict, scene) -> None:  # noqa: ANN001
    """Everything a stored route question promises, checked from its stored fields and the scene."""
    anchors = extra["anchors"]
    names = [a["category"] for a in anchors]
    assert answer == ", ".join(rederive(extra)) == ", ".join(extra["actions"])
    assert choices[0] == answer and len(set(choices)) == len(choices) == (3 if len(anchors) == 3 else 4)
    assert template_text(extra["template"], names) == question
    head = re.match(r"You are a robot beginning at the (.+?) facing the (.+?)\. You want to navigate to the (.+?)\. ", question)
    expected_head = (names[0], names[1], names[-1]) if extra["template"] == 1 else (names[-2], names[-1], names[0])
    assert head is not None and head.groups() == expected_head
    assert len(set(names)) == len(names)
    way = np.array(extra["waypoints"])
    assert anchors[0]["vertex"] == 0 and anchors[-1]["vertex"] == len(way) - 1
    length = np.linalg.norm(np.diff(np.array(extra["path"])[:, :2], axis=0), axis=1).sum()
    assert length >= 2.0 and extra["geodesic_m"] == pytest.approx(length, abs=1e-2)
    counts = {}
    for o in scene.objects:
        counts[o.category] = counts.get(o.category, 0) + 1
    for a in anchors:
        obj = next(o for o in scene.objects if o.instance_id == a["instance_id"])
        assert obj.category == a["category"] and counts[a["category"]] == 1
        hull = shapely.MultiPoint(obj.box.corners()[:, :2]).convex_hull
        d = hull.distance(shapely.Point(a["point"][:2]))
        assert d <= REACH_M + 1e-6 and d == pytest.approx(a["distance_m"], abs=1e-3)
        np.testing.assert_allclose(a["point"], way[a["vertex"]], atol=1e-6)
    # the route vertices lie on the navigator's path
    path = shapely.LineString(np.array(extra["path"])[:, :2])
    assert all(path.distance(shapely.Point(p[:2])) < 1e-3 for p in way)


def corridor_scene(tmp_path, outline, rects, landmarks, make_meta_scene):  # noqa: ANN001
    """A corridor mesh (floor rectangles, 2.5 m walls) written as ply, and a scene graph naming it
    with the given landmark boxes (metadata only: they are not in the mesh)."""
    parts = []
    for x0, y0, x1, y1 in rects:
        parts.append(trimesh.Trimesh([[x0, y0, 0], [x1, y0, 0], [x1, y1, 0], [x0, y1, 0]], [[0, 1, 2], [0, 2, 3]], process=False))
    for k in range(len(outline)):
        (ax, ay), (bx, by) = outline[k], outline[(k + 1) % len(outline)]
        parts.append(trimesh.Trimesh([[ax, ay, 0], [bx, by, 0], [bx, by, 2.5], [ax, ay, 2.5]], [[0, 1, 2], [0, 2, 3]], process=False))
    mesh = trimesh.util.concatenate(parts)
    mesh.export(tmp_path / "corridor.ply")
    scene = make_meta_scene(landmarks)
    scene.source_root, scene.mesh_file, scene.raw_to_world = str(tmp_path), "corridor.ply", np.eye(4).tolist()
    return scene, np.asarray(mesh.vertices), np.asarray(mesh.faces)


L_OUTLINE = [(0, 0), (6, 0), (6, 6), (4.5, 6), (4.5, 1.5), (0, 1.5)]
L_RECTS = [(0, 0, 6, 1.5), (4.5, 1.5, 6, 6)]
L_LANDMARKS = [
    ("sofa", [0.3, 0.75, 0.4], [0.4, 0.8, 0.8], 0),  # west end
    ("plant", [5.0, 1.0, 0.45], [0.3, 0.3, 0.9], 0),  # by the inner corner
    ("bed", [5.25, 5.8, 0.25], [1.0, 0.3, 0.5], 0),  # north end
]


def test_l_corridor_questions_turn_the_right_way(tmp_path, make_meta_scene) -> None:
    """East along the corridor then north is a left turn; asked backwards (Template 2: at the plant
    facing the bed, go to the sofa) it is a left turn too. From the bed to the sofa both are right."""
    scene, v, f = corridor_scene(tmp_path, L_OUTLINE, L_RECTS, L_LANDMARKS, make_meta_scene)
    nav = build_navigator(v, f)
    drafts, stats = plan_routes(scene, nav, np.random.default_rng(0), 4)
    assert len(drafts) >= 2, stats
    for d in drafts:
        check_question(d.question, d.answer, d.choices, d.extra, scene)
        assert d.categories in (("sofa", "plant", "bed"), ("bed", "plant", "sofa"))
        assert d.answer == (LEFT if d.categories[0] == "sofa" else RIGHT)
    assert {d.extra["template"] for d in drafts} == {1, 2}
    again, _ = plan_routes(scene, nav, np.random.default_rng(0), 4)
    assert [d.question for d in again] == [d.question for d in drafts]  # same rng, same questions


Z_OUTLINE = [(0, 0), (4, 0), (4, 5), (7, 5), (7, 6.5), (2.5, 6.5), (2.5, 1.5), (0, 1.5)]
Z_RECTS = [(0, 0, 4, 1.5), (2.5, 1.5, 4, 5), (2.5, 5, 7, 6.5)]
Z_LANDMARKS = [
    ("sofa", [0.3, 0.75, 0.4], [0.4, 0.8, 0.8], 0),  # west end of the first leg
    ("plant", [3.0, 1.0, 0.45], [0.3, 0.3, 0.9], 0),  # first bend (east -> north)
    ("lamp", [3.25, 5.5, 0.8], [0.3, 0.3, 1.6], 0),  # second bend (north -> east)
    ("bed", [6.75, 5.75, 0.25], [0.4, 1.0, 0.5], 0),  # east end of the last leg
]
# (SRC, template) -> answer, worked out by hand: sofa -> bed goes east, north (left), east (right);
# Template 2 starts at the lamp facing the bed (east), turns to go south (right), then at the plant
# turns from south to west (right). bed -> sofa mirrors it.
Z_ANSWERS = {
    ("sofa", 1): "Turn Left, Turn Right",
    ("sofa", 2): "Turn Right, Turn Right",
    ("bed", 1): "Turn Left, Turn Right",
    ("bed", 2): "Turn Right, Turn Right",
}


def test_two_turn_corridor_questions(tmp_path, make_meta_scene) -> None:
    scene, v, f = corridor_scene(tmp_path, Z_OUTLINE, Z_RECTS, Z_LANDMARKS, make_meta_scene)
    nav = build_navigator(v, f)
    drafts, stats = plan_routes(scene, nav, np.random.default_rng(1), 8)
    two_turn = [d for d in drafts if len(d.categories) == 4]
    assert two_turn, stats
    for d in drafts:
        check_question(d.question, d.answer, d.choices, d.extra, scene)
    for d in two_turn:
        assert d.categories in (("sofa", "plant", "lamp", "bed"), ("bed", "lamp", "plant", "sofa"))
        assert d.answer == Z_ANSWERS[(d.categories[0], d.extra["template"])]


def test_object_disagreement_is_rejected(make_meta_scene) -> None:
    """A route turning left at the MID, whose objects (seen from the SRC object) line up straight,
    is ambiguous for someone who only knows the objects: rejected by ``objects_agree``."""
    scene = make_meta_scene([
        ("sofa", [0.0, 0.0, 0.4], [0.4, 0.4, 0.8], 0),
        ("plant", [3.0, 0.0, 0.4], [0.3, 0.3, 0.8], 0),
        ("bed", [6.0, 0.0, 0.4], [0.4, 0.4, 0.8], 0),
    ])
    lm = Landmarks.of(scene)
    route = Route.from_path(np.array([[0.2, 0.5, 0], [3.0, 0.5, 0], [3.0, 3.5, 0]]))  # left turn at (3, 0.5)
    cand = Candidate(1, route, (0, 1, 2), (0, 1, 2), (0.3, 0.3, 0.3), lm)
    assert cand.path_changes() == pytest.approx([90.0])
    assert first_failure(cand, QUESTION_CHECKS) == "objects_agree"
    moved = Landmarks(lm.categories, lm.instance_ids, np.array([[0.0, 0.0], [3.0, 0.0], [3.0, 3.0]]), lm.footprints)
    assert first_failure(Candidate(1, route, (0, 1, 2), (0, 1, 2), (0.3, 0.3, 0.3), moved), QUESTION_CHECKS) is None
    assert first_failure(Candidate(1, route, (0, 1, 2), (0, -1, 2), (0.3, 2.0, 0.3), lm), QUESTION_CHECKS) == "anchors_described"
    assert first_failure(Candidate(1, route, (0, 1, 2), (0, 0, 2), (0.3, 0.3, 0.3), lm), QUESTION_CHECKS) == "anchors_distinct"


def test_route_planning_on_the_synthetic_demo_scans(scannet_root, tmp_path) -> None:
    """The task inside ``vlm3r-data build``: every question re-derived from its stored waypoints and
    anchors, against the scene graph the build wrote."""

    from vlm3r.pipelines.build import BuildConfig, build, load_scene_graph
    from vlm3r.scenes.base import AdapterConfig
    from vlm3r.scenes.scannet import ScanNetAdapter

    root, _ = scannet_root
    out = tmp_path / "out"
    summary = build(
        ScanNetAdapter(root),
        BuildConfig(out=out, adapter=AdapterConfig(num_frames=8), tasks=("route_planning",), write_video=False, answerable=False),
    )
    assert summary.scenes_ok == 3
    lines = (out / "qa" / "route_planning" / "scannet-00000.jsonl").read_text().splitlines()
    records = [record_from_qa_row(json.loads(line)) for line in lines]
    assert records and summary.qa_per_task["route_planning"] == len(records)
    for r in records:
        scene, _ = load_scene_graph(out, "scannet", r.scene_name)
        assert scene.mesh_file and scene.raw_to_world is not None
        options = [o.split(". ", 1)[1] for o in r.options]
        assert options[ord(r.mc_answer) - ord("A")] == r.ground_truth
        correct = [r.ground_truth] + [o for o in options if o != r.ground_truth]
        check_question(r.question, r.ground_truth, correct, r.extra, scene)
        assert r.question_type == "route_planning" and r.task_version == RoutePlanning.version
        assert list(r.categories) == [a["category"] for a in r.extra["anchors"]]
    per_scene = {}
    for r in records:
        per_scene[r.scene_name] = per_scene.get(r.scene_name, 0) + 1
    assert max(per_scene.values()) <= RoutePlanning.max_per_scene


def test_task_skips_scenes_without_a_usable_mesh(make_meta_scene) -> None:
    task = TASKS.get("route_planning")
    assert isinstance(task, RoutePlanning) and not task.needs_frames and task.max_per_scene == 5
    scene = make_meta_scene([(c, [i, 0, 0.4], [0.4, 0.4, 0.8], 0) for i, c in enumerate(["sofa", "bed", "lamp"])])
    assert task.generate(scene, None, np.random.default_rng(0)) == []
    scene.source_root, scene.mesh_file = "/nonexistent", "scene.ply"
    assert task.generate(scene, None, np.random.default_rng(0)) == []


def test_task_generate_on_a_mesh_file(tmp_path, make_meta_scene) -> None:
    scene, _, _ = corridor_scene(tmp_path, L_OUTLINE, L_RECTS, L_LANDMARKS, make_meta_scene)
    task = RoutePlanning()
    task.max_per_scene = 2
    drafts = task.generate(scene, None, np.random.default_rng(5))
    assert 1 <= len(drafts) <= 2
    assert all(d.answer == (LEFT if d.categories[0] == "sofa" else RIGHT) for d in drafts)
