"""Answerability: a question is kept only when the sampled frames show what it names.

Visibility comes from the frame metadata (``Frame.visible``: instance id and pixel count at the
frame metadata's resolution, ``intrinsics.width x height``). An instance is *seen* in a frame when
its pixel count is at least ``min_area`` of the frame area (and at least one pixel). Each task says
which rule its questions follow (``Task.answerability``), as a named predicate:

* ``"scene"``: every instance of every category the question names is seen in at least one sampled
  frame. For counting that is every instance counted; for the unique-category tasks (size,
  distances, directions, route landmarks) the one instance; for relative-distance choices with
  several instances, all of them (the closest one decides the answer).
* ``"frame"``: the question is about one frame (VSTI-Bench object tasks): each named category has
  an instance seen in that frame.
* ``"first_sight"``: appearance order: each named category is seen in the first frame where any of
  its instances is visible at all (the frame that dates its first appearance).
* ``"none"``: the question names no object (camera motion); always answerable.

Questions that fail are dropped after generation (per-scene caps count before the filter); the
reason of each drop is one of ``REASONS``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from vlm3r.datagen.base import AnswerabilityRule as Rule
from vlm3r.datagen.base import Draft
from vlm3r.schemas.scene import FrameMetadata, SceneMetadata

DEFAULT_MIN_AREA = 0.001
"""Default share of the frame area an instance must cover to count as seen (0.1%: 307 pixels at
ScanNet's 640x480, 49 at ARKitScenes' and ScanNet++'s 256x192)."""

REASONS: dict[str, str] = {
    "unseen": "an instance of a named category is seen in no sampled frame",
    "unseen_in_frame": "a named category is not seen in the question's frame",
    "first_sight_too_small": "a named category's first appearance is below the pixel threshold",
}


@dataclass(frozen=True)
class Visibility:
    """What the sampled frames of one scene show, at a pixel threshold.

    ``seen``: instance ids seen in some frame; ``seen_in``: frame id -> instance ids seen in it;
    ``first_frame_seen``: category -> whether its first visible frame (any pixel) shows it seen;
    ``instances``: category -> its instance ids in the scene.
    """

    seen: frozenset[int]
    seen_in: dict[int, frozenset[int]]
    first_frame_seen: dict[str, bool]
    instances: dict[str, tuple[int, ...]]

    @classmethod
    def of(cls, scene: SceneMetadata, frames: FrameMetadata, min_area: float = DEFAULT_MIN_AREA) -> Visibility:
        min_pixels = max(1, math.ceil(min_area * frames.intrinsics.width * frames.intrinsics.height))
        category_of = {o.instance_id: o.category for o in scene.objects}
        instances: dict[str, list[int]] = defaultdict(list)
        for o in scene.objects:
            instances[o.category].append(o.instance_id)
        seen_in: dict[int, frozenset[int]] = {}
        first: dict[str, bool] = {}
        for f in sorted(frames.frames, key=lambda f: (f.timestamp_s, f.frame_id)):
            big = frozenset(v.instance_id for v in f.visible if v.pixel_count >= min_pixels)
            seen_in[f.frame_id] = seen_in.get(f.frame_id, frozenset()) | big
            for v in f.visible:
                c = category_of.get(v.instance_id)
                if c is not None and c not in first:
                    first[c] = any(category_of.get(i) == c for i in big)
        seen = frozenset().union(*seen_in.values()) if seen_in else frozenset()
        return cls(seen, seen_in, first, {c: tuple(ids) for c, ids in instances.items()})


def _all_instances_seen(draft: Draft, vis: Visibility) -> bool:
    return all(i in vis.seen for c in draft.categories for i in vis.instances.get(c, (-1,)))


def _seen_in_its_frame(draft: Draft, vis: Visibility) -> bool:
    for fid in draft.frame_ids:
        shown = vis.seen_in.get(fid, frozenset())
        if not all(any(i in shown for i in vis.instances.get(c, ())) for c in draft.categories):
            return False
    return True


def _first_sight_seen(draft: Draft, vis: Visibility) -> bool:
    return all(vis.first_frame_seen.get(c, False) for c in draft.categories)


PREDICATES = {
    "scene": ("unseen", _all_instances_seen),
    "frame": ("unseen_in_frame", _seen_in_its_frame),
    "first_sight": ("first_sight_too_small", _first_sight_seen),
}


def unanswerable_reason(rule: Rule, draft: Draft, vis: Visibility) -> str | None:
    """The key of ``REASONS`` why ``draft`` is not answerable from the frames, or None when it is."""
    if rule == "none" or not draft.categories:
        return None
    reason, predicate = PREDICATES[rule]
    return None if predicate(draft, vis) else reason


def keep_answerable(rule: Rule, drafts: Sequence[Draft], vis: Visibility) -> tuple[list[Draft], dict[str, int]]:
    """``drafts`` without the unanswerable ones, and the count of drops per reason."""
    kept: list[Draft] = []
    dropped: dict[str, int] = {}
    for d in drafts:
        reason = unanswerable_reason(rule, d, vis)
        if reason is None:
            kept.append(d)
        else:
            dropped[reason] = dropped.get(reason, 0) + 1
    return kept, dropped
