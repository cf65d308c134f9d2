"""object_rel_direction_hard / _medium / _easy: where a querying object lies for an observer
standing by a positioning object and facing an orienting object.

In the xy plane (z-up world, seen from above), forward = orienting centroid - positioning centroid;
the querying centroid's angle is measured counter-clockwise from forward, in degrees [0, 360).
Rejected: triples whose pairwise box distances leave [0.3, 5.0] m, angles within 10 degrees of ANY
bin edge (both edges of every bin, the 0/360 seam included), and querying boxes with more than 2 of
their 8 corners in another bin than their centroid. easy has medium's bins but never asks about the
back sector [135, 225) (left [0, 135), right [225, 360)).
"""

from __future__ import annotations

from itertools import permutations
from typing import ClassVar

import numpy as np

from vlm3r.datagen.base import Draft, Task
from vlm3r.datagen.box_geometry import pairwise_box_distances
from vlm3r.datagen.registry import register_task
from vlm3r.datagen.scene_queries import unique_objects
from vlm3r.schemas.scene import FrameMetadata, SceneMetadata

PAIR_DISTANCE_RANGE_M = (0.3, 5.0)
EDGE_MARGIN_DEG = 10.0
MAX_CORNERS_OFF = 2

PREFIX = "If I am standing by the {p} and facing the {o}, "
QUESTIONS = {
    "hard": PREFIX
    + "is the {q} to my front-left, front-right, back-left, or back-right? The directions refer to the "
    "quadrants of a Cartesian plane (if I am standing at the origin and facing along the positive y-axis).",
    "medium": PREFIX
    + "is the {q} to my left, right, or back? An object is to my back if I would have to turn at least 135 "
    "degrees in order to face it.",
    "easy": PREFIX + "is the {q} to the left or the right of the {o}?",
}
# (lower edge in degrees, label) of each bin, counter-clockwise from forward; bins end at the next edge.
BINS: dict[str, list[tuple[float, str]]] = {
    "hard": [(0, "front-left"), (90, "back-left"), (180, "back-right"), (270, "front-right")],
    "medium": [(0, "left"), (135, "back"), (225, "right")],
    "easy": [(0, "left"), (135, "back"), (225, "right")],
}
NEVER_ASKED: dict[str, frozenset[str]] = {"hard": frozenset(), "medium": frozenset(), "easy": frozenset({"back"})}
"""Bins a level never asks about: easy uses medium's bins but skips the back sector [135, 225), as
VSI-Bench's generator does, so the 10-degree margin applies at 135 and 225 and never at 180."""


def ccw_angle_deg(origin: np.ndarray, forward_to: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Angle (degrees, [0, 360)) of ``points - origin`` counter-clockwise from ``forward_to - origin``,
    in the xy plane. origin, forward_to: (2,); points: (..., 2)."""
    f = forward_to - origin
    v = points - origin
    cross = f[0] * v[..., 1] - f[1] * v[..., 0]
    dot = f[0] * v[..., 0] + f[1] * v[..., 1]
    return np.degrees(np.arctan2(cross, dot)) % 360.0


def bin_index(angle: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.searchsorted(edges, angle, side="right") - 1


def near_edge(angle: float, edges: np.ndarray, margin: float = EDGE_MARGIN_DEG) -> bool:
    """Within ``margin`` of any bin edge, circularly (so 355 degrees is 5 from the 0/360 edge)."""
    diff = np.abs((angle - edges + 180.0) % 360.0 - 180.0)
    return bool(diff.min() < margin)


def direction_label(p_xy, o_xy, q_centroid_xy, q_corners_xy, level: str) -> str | None:  # noqa: ANN001
    """The bin label of the querying object, or None when the triple is ambiguous."""
    edges = np.array([e for e, _ in BINS[level]], dtype=float)
    angle = float(ccw_angle_deg(p_xy, o_xy, q_centroid_xy))
    if near_edge(angle, edges):
        return None
    b = bin_index(np.array(angle), edges)
    corner_bins = bin_index(ccw_angle_deg(p_xy, o_xy, q_corners_xy), edges)
    if int(np.sum(corner_bins != b)) > MAX_CORNERS_OFF:
        return None
    label = BINS[level][int(b)][1]
    return None if label in NEVER_ASKED[level] else label


class _ObjectRelDirection(Task):
    level: ClassVar[str]
    version = 2  # 2: categories from each source's own vocabulary
    max_per_scene: ClassVar[int] = 10

    def generate(self, scene: SceneMetadata, frames: FrameMetadata | None, rng: np.random.Generator) -> list[Draft]:
        unique = unique_objects(scene)
        cats = list(unique)
        if len(cats) < 3:
            return []
        dist = pairwise_box_distances([unique[c].box for c in cats])
        lo, hi = PAIR_DISTANCE_RANGE_M
        ok = (dist >= lo) & (dist <= hi)
        triples = [t for t in permutations(range(len(cats)), 3) if ok[t[0], t[1]] and ok[t[0], t[2]] and ok[t[1], t[2]]]
        centroid = np.array([unique[c].box.centroid for c in cats])[:, :2]
        corners = np.array([unique[c].box.corners() for c in cats])[:, :, :2]
        labels = [label for _, label in BINS[self.level] if label not in NEVER_ASKED[self.level]]
        drafts = []
        for k in rng.permutation(len(triples)):
            if len(drafts) >= self.max_per_scene:
                break
            p, o, q = triples[k]
            label = direction_label(centroid[p], centroid[o], centroid[q], corners[q], self.level)
            if label is None:
                continue
            others = [labels[i] for i in rng.permutation(len(labels)) if labels[i] != label]
            drafts.append(
                Draft(
                    question=QUESTIONS[self.level].format(p=cats[p], o=cats[o], q=cats[q]),
                    answer=label,
                    choices=(label, *others),
                    categories=(cats[p], cats[o], cats[q]),
                    extra={"angle_deg": float(ccw_angle_deg(centroid[p], centroid[o], centroid[q]))},
                )
            )
        return drafts


@register_task
class ObjectRelDirectionHard(_ObjectRelDirection):
    name = "object_rel_direction_hard"
    level = "hard"


@register_task
class ObjectRelDirectionMedium(_ObjectRelDirection):
    name = "object_rel_direction_medium"
    level = "medium"


@register_task
class ObjectRelDirectionEasy(_ObjectRelDirection):
    name = "object_rel_direction_easy"
    level = "easy"
    version = 3  # 3: the back sector [135, 225) is never asked (margins at 135 and 225, not 180)
