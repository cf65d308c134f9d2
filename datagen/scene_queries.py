"""Queries over a scene graph shared by the metadata-driven tasks."""

from __future__ import annotations

import numpy as np

from vlm3r.datagen.box_geometry import pairwise_box_distances
from vlm3r.schemas.scene import ObjectInstance, SceneMetadata


def unique_objects(scene: SceneMetadata) -> dict[str, ObjectInstance]:
    """Categories with exactly one instance in the scene (by count AND by listed boxes), sorted."""
    by_cat: dict[str, list[ObjectInstance]] = {}
    for o in scene.objects:
        by_cat.setdefault(o.category, []).append(o)
    return {
        c: objs[0] for c, objs in sorted(by_cat.items()) if len(objs) == 1 and scene.object_counts.get(c, 1) == 1
    }


def instance_distances(objects: list[ObjectInstance]) -> np.ndarray:
    """(N, N) exact box distances between the given objects, one vectorised computation."""
    return pairwise_box_distances([o.box for o in objects])


def category_distances(
    anchor_index: int, objects: list[ObjectInstance], distances: np.ndarray
) -> dict[str, float]:
    """Distance (m) from object ``anchor_index`` to the closest instance of every other category,
    given the (N, N) ``distances`` between ``objects``."""
    anchor = objects[anchor_index].category
    out: dict[str, float] = {}
    for j, o in enumerate(objects):
        if o.category != anchor:
            out[o.category] = min(out.get(o.category, np.inf), float(distances[anchor_index, j]))
    return dict(sorted(out.items()))
