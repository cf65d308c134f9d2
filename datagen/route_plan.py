"""route_planning (DESIGN.md section 6): fill in the turns of a route between described objects.

Everything is metres in the z-up world, headings in the xy plane seen from above (+z).

1. **Routes.** Navigable points are sampled with the rng; those within ``REACH_M`` of a
   unique-category object (distance in xy to the object's box footprint) are route ends. A path from
   the navigator (:mod:`vlm3r.datagen.navigation`) is reduced by Douglas-Peucker
   (``SIMPLIFY_TOLERANCE_M``, so the two or three waypoints that round one obstacle corner become
   one vertex) to its *route vertices*.
2. **Turns.** The signed heading change at a vertex is the angle from the incoming to the outgoing
   segment, counter-clockwise positive (:func:`signed_turn_deg`). Above ``TURN_MIN_DEG`` (30) it is a
   turn; the action is :func:`action_label`: |change| >= ``TURN_BACK_DEG`` (135, the threshold
   VSI-Bench's direction questions use for "back") is "Turn Back", otherwise "Turn Left" for a
   positive change and "Turn Right" for a negative one.
3. **Anchors.** Start, every turn vertex and end, each described by the nearest unique-category
   object within ``REACH_M`` (SRC, MID / MID1..MID3, TGT; all distinct). A straight route gets one
   MID at half its length and is only asked with Template 2 (its answer is "Turn Back").
4. **Templates** (exactly DESIGN.md section 6 for one MID; more MIDs add "[please fill in]" and
   "Go forward until the MIDk." steps). Template 1: begin at SRC facing MID1, the fill-ins are the
   route's turns. Template 2: begin at the last MID facing TGT, go back to SRC; the first fill-in
   turns from facing TGT to the segment back towards SRC, the others are the route's turns walked
   backwards. Fill-ins are labelled from the actual headings of the route vertices.
5. **Multiple choice.** One fill-in: the three actions (VSI-Bench asks these with three options);
   two or three fill-ins: four action sequences ("Turn Left, Turn Back"), the distractors drawn by
   the rng from the other sequences. The correct option comes first in ``Draft.choices``.

A candidate must pass every predicate of ``ROUTE_CHECKS`` and ``QUESTION_CHECKS`` (named, in the
spirit of habitat-lab's ``is_compatible_episode``); the first one failing is counted in the planner's
rejection statistics. ``Draft.extra`` keeps what the answer was derived from: ``waypoints`` (route
vertices), ``anchors`` (role, category, instance id, vertex index into ``waypoints``), ``template``,
``turn_angles_deg`` and ``actions`` (one per fill-in), and the navigator's raw ``path``.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from itertools import product
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from vlm3r.datagen.base import Draft, Task
from vlm3r.datagen.registry import register_task
from vlm3r.datagen.scene_queries import unique_objects
from vlm3r.schemas.scene import FrameMetadata, SceneMetadata

if TYPE_CHECKING:  # navigation imports stay lazy for ``import vlm3r.datagen``
    from vlm3r.datagen.navigation import Navigator

log = logging.getLogger(__name__)

TURN_MIN_DEG = 30.0
"""A heading change above this is a turn."""
TURN_BACK_DEG = 135.0
"""A turn of at least this much is "Turn Back"."""
AMBIGUITY_MARGIN_DEG = 10.0
"""Reject routes and questions with a heading change within this of 30 or 135 degrees."""
TEMPLATE2_MIN_TURN_DEG = 45.0
"""Template 2 is used for turns over this (and for straight routes)."""
MIN_GEODESIC_M = 2.0
MIN_LEG_M = 1.0
"""Every "Go forward" leg between two anchors is at least this long (path length)."""
REACH_M = 1.0
"""An anchor is described by an object at most this far away (xy distance to its box footprint)."""
SIMPLIFY_TOLERANCE_M = 0.25
MAX_TURNS = 3
POOL_POINTS = 400
ENDS_PER_START = 16
STARTS_PER_QUESTION = 8
STRAIGHT_SHARE = 0.2
"""At most this share of a scene's questions (rounded up) come from straight routes."""

LEFT, RIGHT, BACK = "Turn Left", "Turn Right", "Turn Back"
ACTIONS = (LEFT, RIGHT, BACK)
FILL = "[please fill in]"
INSTRUCTIONS = (
    "You will perform the following actions (Note: for each [please fill in], choose either "
    "'turn back,' 'turn left,' or 'turn right.'): "
)


# --------------------------------------------------------------------------------------------------
# Headings and actions
# --------------------------------------------------------------------------------------------------


def signed_turn_deg(d_in: np.ndarray, d_out: np.ndarray) -> float:
    """Signed heading change (degrees, (-180, 180]) from direction ``d_in`` to ``d_out`` (xy of
    the given vectors), counter-clockwise seen from +z positive: positive = left, negative = right."""
    cross = float(d_in[0] * d_out[1] - d_in[1] * d_out[0])
    dot = float(d_in[0] * d_out[0] + d_in[1] * d_out[1])
    angle = float(np.degrees(np.arctan2(cross, dot)))
    return 180.0 if angle <= -180.0 else angle


def action_label(change_deg: float) -> str | None:
    """The action for a signed heading change, or None when it is no turn (|change| <= 30)."""
    a = abs(change_deg)
    if a >= TURN_BACK_DEG:
        return BACK
    if a > TURN_MIN_DEG:
        return LEFT if change_deg > 0 else RIGHT
    return None


def near_threshold(change_deg: float, margin: float = AMBIGUITY_MARGIN_DEG) -> bool:
    """Whether |change| is within ``margin`` of the turn (30) or turn-back (135) threshold."""
    a = abs(change_deg)
    return abs(a - TURN_MIN_DEG) < margin or abs(a - TURN_BACK_DEG) < margin


def option_text(actions: tuple[str, ...]) -> str:
    return ", ".join(actions)


def action_choices(correct: tuple[str, ...], rng: np.random.Generator) -> tuple[str, ...]:
    """Option texts, correct first: one fill-in -> the three actions; more -> four sequences."""
    if len(correct) == 1:
        others = [a for a in ACTIONS if a != correct[0]]
        return (correct[0], *[others[i] for i in rng.permutation(len(others))])
    wrong = [seq for seq in product(ACTIONS, repeat=len(correct)) if seq != correct]
    picks = rng.choice(len(wrong), size=3, replace=False)
    return (option_text(correct), *[option_text(wrong[i]) for i in picks])


# --------------------------------------------------------------------------------------------------
# Routes
# --------------------------------------------------------------------------------------------------


def simplify_indices(xy: np.ndarray, tolerance: float) -> np.ndarray:
    """Douglas-Peucker on an (N, 2) polyline: indices of the kept points (ends always kept); a
    point is kept when it lies more than ``tolerance`` metres from the segment joining its kept
    neighbours."""
    n = len(xy)
    keep = np.zeros(n, dtype=bool)
    keep[[0, n - 1]] = True
    stack = [(0, n - 1)]
    while stack:
        i, j = stack.pop()
        if j <= i + 1:
            continue
        a, d, pts = xy[i], xy[j] - xy[i], xy[i + 1 : j]
        t = np.clip((pts - a) @ d / max(float(d @ d), 1e-24), 0.0, 1.0)
        dist = np.linalg.norm(pts - (a + t[:, None] * d), axis=1)
        k = int(np.argmax(dist))
        if dist[k] > tolerance:
            keep[i + 1 + k] = True
            stack += [(i, i + 1 + k), (i + 1 + k, j)]
    return np.flatnonzero(keep)


def vertex_changes(vertices: np.ndarray) -> np.ndarray:
    """(M,) signed heading change at every vertex of an (M, 3) polyline (0 at both ends)."""
    out = np.zeros(len(vertices))
    for k in range(1, len(vertices) - 1):
        out[k] = signed_turn_deg(vertices[k] - vertices[k - 1], vertices[k + 1] - vertices[k])
    return out


def cumulative_length(points: np.ndarray) -> np.ndarray:
    """(K,) path length (m) from the first point to each point of a (K, 3) polyline."""
    return np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(points[:, :2], axis=0), axis=1))])


@dataclass(frozen=True)
class Route:
    """A navigator path and its route vertices (metres, z-up world).

    path: (K, 3) the navigator's waypoints; vertices: (M, 3) points of the path (the Douglas-Peucker
    subset: start, bends, end; plus a midpoint for straight routes); arclength: (M,) distance along
    the path from its start to each vertex; changes_deg: (M,) signed heading change at each vertex
    between the route segments (0 at the ends).
    """

    path: np.ndarray
    vertices: np.ndarray
    arclength: np.ndarray
    changes_deg: np.ndarray

    @classmethod
    def from_path(cls, path: np.ndarray) -> Route:
        p = np.asarray(path, dtype=np.float64)
        step = np.linalg.norm(np.diff(p[:, :2], axis=0), axis=1)
        p = p[np.concatenate([[True], step > 1e-6])]
        if len(p) < 2:
            p = np.vstack([p, p])
        keep = simplify_indices(p[:, :2], SIMPLIFY_TOLERANCE_M)
        vertices = p[keep]
        return cls(path=p, vertices=vertices, arclength=cumulative_length(p)[keep], changes_deg=vertex_changes(vertices))

    @property
    def length_m(self) -> float:
        """The geodesic length: the navigator's path length."""
        return float(self.arclength[-1])

    @property
    def turns(self) -> np.ndarray:
        """Indices of the vertices where the route turns (|change| > 30 degrees)."""
        return np.flatnonzero(np.abs(self.changes_deg) > TURN_MIN_DEG)

    def with_midpoint(self) -> tuple[Route, int]:
        """This route with the path's point at half its length inserted as a vertex, and that
        vertex's index."""
        cum = cumulative_length(self.path)
        half = cum[-1] / 2
        k = min(int(np.searchsorted(cum, half, side="right")), len(cum) - 1)  # on path segment k-1 -> k
        t = (half - cum[k - 1]) / max(cum[k] - cum[k - 1], 1e-12)
        mid = self.path[k - 1] + t * (self.path[k] - self.path[k - 1])
        at = int(np.searchsorted(self.arclength, half, side="right"))
        if half - self.arclength[at - 1] < 1e-6:  # a vertex is already there
            return self, at - 1
        verts = np.vstack([self.vertices[:at], mid, self.vertices[at:]])
        arc = np.concatenate([self.arclength[:at], [half], self.arclength[at:]])
        return Route(self.path, verts, arc, vertex_changes(verts)), at


# Route predicates: True = the route may be used.
def long_enough(route: Route) -> bool:
    """Geodesic length of at least ``MIN_GEODESIC_M``."""
    return route.length_m >= MIN_GEODESIC_M


def at_most_three_turns(route: Route) -> bool:
    return len(route.turns) <= MAX_TURNS


def unambiguous_bends(route: Route) -> bool:
    """No heading change within the margin of 30 or 135 degrees (so every bend is clearly a turn or
    clearly straight, and every turn clearly back or not)."""
    return not any(near_threshold(c) for c in route.changes_deg[1:-1])


def straight_legs(route: Route) -> bool:
    """Between consecutive anchors the small bends add up to less than 30 - margin degrees."""
    bounds = [0, *route.turns.tolist(), len(route.vertices) - 1]
    limit = TURN_MIN_DEG - AMBIGUITY_MARGIN_DEG
    return all(abs(float(route.changes_deg[a + 1 : b].sum())) < limit for a, b in zip(bounds, bounds[1:]))


def long_legs(route: Route) -> bool:
    """Every leg between consecutive anchors (start, turns, end) is at least ``MIN_LEG_M`` long
    along the path."""
    bounds = [0, *route.turns.tolist(), len(route.vertices) - 1]
    return bool(np.all(np.diff(route.arclength[bounds]) >= MIN_LEG_M))


ROUTE_CHECKS: tuple[tuple[str, Callable[[Route], bool]], ...] = (
    ("geodesic_at_least_2m", long_enough),
    ("at_most_three_turns", at_most_three_turns),
    ("unambiguous_bends", unambiguous_bends),
    ("straight_legs", straight_legs),
    ("legs_at_least_1m", long_legs),
)


# --------------------------------------------------------------------------------------------------
# Anchors and questions
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Landmarks:
    """The scene's unique-category objects, as box footprints in the xy plane (metres)."""

    categories: tuple[str, ...]
    instance_ids: tuple[int, ...]
    centroids_xy: np.ndarray  # (L, 2)
    footprints: np.ndarray  # (L,) shapely polygons: convex hull of the box corners in xy

    @classmethod
    def of(cls, scene: SceneMetadata) -> Landmarks:
        import shapely

        objs = list(unique_objects(scene).values())
        hulls = [shapely.MultiPoint(o.box.corners()[:, :2]).convex_hull for o in objs]
        return cls(
            categories=tuple(o.category for o in objs),
            instance_ids=tuple(o.instance_id for o in objs),
            centroids_xy=np.array([o.box.centroid[:2] for o in objs], dtype=np.float64).reshape(-1, 2),
            footprints=np.array(hulls, dtype=object),
        )

    def __len__(self) -> int:
        return len(self.categories)

    def distances(self, points_xy: np.ndarray) -> np.ndarray:
        """(P, L) xy distance (m) from each point to each footprint (0 inside)."""
        import shapely

        pts = shapely.points(np.asarray(points_xy, dtype=np.float64).reshape(-1, 2))
        return shapely.distance(self.footprints[None, :], pts[:, None])

    def nearest(self, points_xy: np.ndarray, reach: float = REACH_M) -> tuple[np.ndarray, np.ndarray]:
        """For (P, 2) points: index of the nearest landmark (-1 when none is within ``reach``) and
        its distance."""
        d = self.distances(points_xy)
        k = np.argmin(d, axis=1)
        dist = d[np.arange(len(d)), k]
        return np.where(dist <= reach, k, -1), dist


def template_text(template: int, names: list[str]) -> str:
    """The question for anchor names [SRC, MID1..MIDm, TGT] (DESIGN.md section 6 when m = 1)."""
    m = len(names) - 2
    if template == 1:
        head = f"You are a robot beginning at the {names[0]} facing the {names[1]}. You want to navigate to the {names[-1]}. "
        steps = [f"Go forward until the {names[1]}."]
        for k in range(1, m + 1):
            steps += [FILL, f"Go forward until the {names[k + 1]}."]
    else:
        head = f"You are a robot beginning at the {names[m]} facing the {names[-1]}. You want to navigate to the {names[0]}. "
        steps = []
        for k in range(m, 0, -1):
            steps += [FILL, f"Go forward until the {names[k - 1]}."]
    body = " ".join(f"{i}. {s}" for i, s in enumerate(steps, 1))
    return f"{head}{INSTRUCTIONS}{body} You have reached the final destination."


def fill_in_changes(template: int, at: np.ndarray, before: np.ndarray, after: np.ndarray) -> list[float]:
    """Signed heading change of every fill-in, in question order.

    ``at[k]`` is anchor k (k = 0 SRC, 1..m MIDs, m+1 TGT) in xy; ``before[k]`` / ``after[k]`` the
    points the walker comes from / goes to around it on the forward route (neighbouring route
    vertices for the path's own headings, neighbouring anchors for the objects' headings).
    Template 1 turns at MID1..MIDm going forward; Template 2 starts at MIDm facing after[m] (TGT),
    turns towards before[m], then turns at MID(m-1)..MID1 walking backwards.
    """
    m = len(at) - 2
    if template == 1:
        return [signed_turn_deg(at[k] - before[k], after[k] - at[k]) for k in range(1, m + 1)]
    first = signed_turn_deg(after[m] - at[m], before[m] - at[m])
    return [first] + [signed_turn_deg(at[k] - after[k], before[k] - at[k]) for k in range(m - 1, 0, -1)]


@dataclass(frozen=True)
class Candidate:
    """One route asked with one template: anchors as route-vertex indices and landmark indices."""

    template: int
    route: Route
    anchor_vertices: tuple[int, ...]
    anchor_objects: tuple[int, ...]
    anchor_distances: tuple[float, ...]
    landmarks: Landmarks

    def path_changes(self) -> list[float]:
        v = self.route.vertices[:, :2]
        idx = np.array(self.anchor_vertices)
        before, after = v[np.maximum(idx - 1, 0)], v[np.minimum(idx + 1, len(v) - 1)]
        return fill_in_changes(self.template, v[idx], before, after)

    def object_changes(self) -> list[float]:
        o = self.landmarks.centroids_xy[np.array(self.anchor_objects)]
        before, after = np.vstack([o[:1], o[:-1]]), np.vstack([o[1:], o[-1:]])
        return fill_in_changes(self.template, o, before, after)


# Question predicates: True = the candidate may be asked.
def anchors_described(c: Candidate) -> bool:
    """Every anchor has a unique-category object within ``REACH_M``."""
    return all(k >= 0 for k in c.anchor_objects)


def anchors_distinct(c: Candidate) -> bool:
    return len(set(c.anchor_objects)) == len(c.anchor_objects)


def fill_ins_are_clear_turns(c: Candidate) -> bool:
    """Every fill-in is a turn (|change| > 30) and not within the margin of 30 or 135."""
    return all(action_label(x) is not None and not near_threshold(x) for x in c.path_changes())


def template2_sharp_turns(c: Candidate) -> bool:
    """Template 2 only for routes whose turns all exceed 45 degrees (or straight routes)."""
    return c.template == 1 or bool(np.all(np.abs(c.route.changes_deg[c.route.turns]) > TEMPLATE2_MIN_TURN_DEG))


def objects_agree(c: Candidate) -> bool:
    """Someone who only knows the objects gets the same, clear actions: the fill-ins computed from
    the anchor objects' centroids are unambiguous and equal the route's."""
    obj = c.object_changes()
    return all(not near_threshold(x) for x in obj) and [action_label(x) for x in obj] == [
        action_label(x) for x in c.path_changes()
    ]


QUESTION_CHECKS: tuple[tuple[str, Callable[[Candidate], bool]], ...] = (
    ("anchors_described", anchors_described),
    ("anchors_distinct", anchors_distinct),
    ("fill_ins_are_clear_turns", fill_ins_are_clear_turns),
    ("template2_sharp_turns", template2_sharp_turns),
    ("objects_agree", objects_agree),
)


def first_failure(item: Any, checks: tuple[tuple[str, Callable[[Any], bool]], ...]) -> str | None:
    """Name of the first predicate ``item`` fails, None when it passes them all."""
    for name, check in checks:
        if not check(item):
            return name
    return None


def role_names(m: int) -> list[str]:
    return ["SRC", *(["MID"] if m == 1 else [f"MID{k}" for k in range(1, m + 1)]), "TGT"]


def candidate_draft(c: Candidate, rng: np.random.Generator, backend: str) -> Draft:
    """The question of a candidate that passed every check."""
    lm = c.landmarks
    names = [lm.categories[k] for k in c.anchor_objects]
    changes = c.path_changes()
    actions = tuple(action_label(x) for x in changes)
    choices = action_choices(actions, rng)  # type: ignore[arg-type]
    roles = role_names(len(names) - 2)
    anchors = [
        {
            "role": role,
            "category": lm.categories[k],
            "instance_id": int(lm.instance_ids[k]),
            "vertex": int(v),
            "point": np.round(c.route.vertices[v], 4).tolist(),
            "distance_m": round(float(d), 4),
        }
        for role, k, v, d in zip(roles, c.anchor_objects, c.anchor_vertices, c.anchor_distances)
    ]
    return Draft(
        question=template_text(c.template, names),
        answer=choices[0],
        choices=choices,
        categories=tuple(names),
        extra={
            "template": c.template,
            "actions": list(actions),
            "turn_angles_deg": [round(x, 2) for x in changes],
            "waypoints": np.round(c.route.vertices, 4).tolist(),
            "anchors": anchors,
            "geodesic_m": round(c.route.length_m, 3),
            "path": np.round(c.route.path, 4).tolist(),
            "nav_backend": backend,
        },
    )


def candidates_for(route: Route, landmarks: Landmarks, rng: np.random.Generator) -> list[Candidate]:
    """The template candidates of a route, in rng order (straight routes: Template 2 only)."""
    turns = route.turns
    if len(turns) == 0:
        route, mid = route.with_midpoint()
        verts, templates = (0, mid, len(route.vertices) - 1), [2]
    else:
        verts, templates = (0, *turns.tolist(), len(route.vertices) - 1), [[1, 2], [2, 1]][int(rng.integers(2))]
    objs, dist = landmarks.nearest(route.vertices[list(verts), :2])
    return [
        Candidate(t, route, tuple(int(v) for v in verts), tuple(int(k) for k in objs), tuple(float(d) for d in dist), landmarks)
        for t in templates
    ]


def plan_routes(
    scene: SceneMetadata, navigator: Navigator, rng: np.random.Generator, max_questions: int
) -> tuple[list[Draft], Counter]:
    """Up to ``max_questions`` route questions for one scene, and a Counter of why candidates were
    rejected (predicate names; "unreachable" for pairs without a path). All randomness from ``rng``."""
    stats: Counter = Counter()
    landmarks = Landmarks.of(scene)
    if len(landmarks) < 3 or max_questions <= 0:
        stats["fewer_than_3_unique_objects" if len(landmarks) < 3 else "no_quota"] += 1
        return [], stats
    pool = navigator.sample_points(POOL_POINTS, rng)
    islands = np.array([navigator.island(p) for p in pool])
    main = np.bincount(islands[islands >= 0]).argmax() if (islands >= 0).any() else -1
    label, _ = landmarks.nearest(pool[:, :2])
    keep = (label >= 0) & (islands == main)  # route ends on the island holding most of the floor
    pool, label = pool[keep], label[keep]
    if len(np.unique(label)) < 2:
        stats["too_few_described_points"] += 1
        return [], stats
    max_straight = int(np.ceil(STRAIGHT_SHARE * max_questions))
    drafts: list[Draft] = []
    seen: set[tuple] = set()
    straight = 0
    for _ in range(STARTS_PER_QUESTION * max_questions):
        if len(drafts) >= max_questions:
            break
        s = int(rng.integers(len(pool)))
        # other landmarks, at least MIN_GEODESIC_M away in a straight line (geodesic >= straight)
        far = np.linalg.norm(pool[:, :2] - pool[s, :2], axis=1) >= MIN_GEODESIC_M
        others = np.flatnonzero((label != label[s]) & far)
        if len(others) == 0:
            stats["no_far_end"] += 1
            continue
        ends = others[rng.choice(len(others), size=min(ENDS_PER_START, len(others)), replace=False)]
        for path in navigator.shortest_paths(pool[s], list(pool[ends])):
            if path is None:
                stats["unreachable"] += 1
                continue
            route = Route.from_path(path)
            fail = first_failure(route, ROUTE_CHECKS)
            if fail is None and len(route.turns) == 0 and straight >= max_straight:
                fail = "straight_quota"
            if fail:
                stats[fail] += 1
                continue
            chosen = None
            for cand in candidates_for(route, landmarks, rng):
                fail = first_failure(cand, QUESTION_CHECKS)
                key = (cand.template, cand.anchor_objects)
                if fail is None and key in seen:
                    fail = "duplicate"
                if fail:
                    stats[fail] += 1
                    continue
                chosen = cand
                break
            if chosen is None:
                continue
            seen.add((chosen.template, chosen.anchor_objects))
            straight += len(route.turns) == 0
            drafts.append(candidate_draft(chosen, rng, navigator.backend))
            break  # one question per start point
    stats["questions"] = len(drafts)
    return drafts, stats


# --------------------------------------------------------------------------------------------------
# The task
# --------------------------------------------------------------------------------------------------


@register_task
class RoutePlanning(Task):
    """Route planning on the scene mesh with the grid navigator (skips scenes without a mesh)."""

    name = "route_planning"
    version = 2  # 2: categories from each source's own vocabulary
    needs_frames = False
    max_per_scene: ClassVar[int] = 5

    def generate(self, scene: SceneMetadata, frames: FrameMetadata | None, rng: np.random.Generator) -> list[Draft]:
        from vlm3r.datagen.navigation import NavigationError, build_navigator, scene_mesh

        try:
            mesh = scene_mesh(scene)
            if mesh is None:
                return []
            navigator = build_navigator(*mesh, backend="grid")
        except NavigationError as exc:
            log.warning("route_planning skips %s/%s: %s", scene.dataset, scene.scene_id, exc)
            return []
        drafts, _ = plan_routes(scene, navigator, rng, self.max_per_scene)
        return drafts
