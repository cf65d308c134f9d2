"""Import and export of VSI-Bench's meta-info format.

The format is a JSON dict keyed by scene id::

    {scene_id: {room_size, room_center, object_counts, video_path, dataset,
                object_bbox: {category: [{centroid, axesLengths, normalizedAxes, min, max}, ...]}}}

``normalizedAxes`` is the box rotation transposed, row-major (each triple is one box axis in world).
The format has no instance ids: import numbers the boxes 0, 1, ... in file order (categories in
their order, boxes in theirs), which export follows back, so import -> export is lossless.
``object_counts`` is kept as the file gives it (in VSI-Bench's own file a few counts differ from
the number of boxes listed).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vlm3r.schemas.scene import ObjectInstance, OrientedBox, SceneMetadata


def box_from_meta(b: dict[str, Any]) -> OrientedBox:
    axes = np.asarray(b["normalizedAxes"], dtype=float).reshape(3, 3)  # row i = box axis i
    return OrientedBox(
        centroid=list(b["centroid"]),
        axes_lengths=list(b["axesLengths"]),
        rotation=axes.T.tolist(),
        min=list(b["min"]),
        max=list(b["max"]),
    )


def box_to_meta(box: OrientedBox) -> dict[str, Any]:
    return {
        "centroid": list(box.centroid),
        "axesLengths": list(box.axes_lengths),
        "normalizedAxes": np.asarray(box.rotation, dtype=float).T.reshape(9).tolist(),
        "min": list(box.min),
        "max": list(box.max),
    }


def scene_from_meta(scene_id: str, entry: dict[str, Any], dataset: str | None = None) -> SceneMetadata:
    """One meta-info entry -> scene graph (no frames)."""
    objects = []
    for category, boxes in entry.get("object_bbox", {}).items():
        for b in boxes:
            objects.append(
                ObjectInstance(instance_id=len(objects), category=category, raw_label=category, box=box_from_meta(b))
            )
    return SceneMetadata(
        scene_id=scene_id,
        dataset=dataset or entry.get("dataset") or "unknown",
        video_path=entry.get("video_path"),
        room_size=entry["room_size"],
        room_center=list(entry["room_center"]),
        object_counts=dict(entry["object_counts"]),
        objects=objects,
    )


def scene_to_meta(scene: SceneMetadata) -> dict[str, Any]:
    """Scene graph -> one meta-info entry (key order as in VSI-Bench's files)."""
    bbox: dict[str, list[dict[str, Any]]] = {}
    for o in sorted(scene.objects, key=lambda o: o.instance_id):
        bbox.setdefault(o.category, []).append(box_to_meta(o.box))
    return {
        "room_size": scene.room_size,
        "object_counts": dict(scene.object_counts),
        "object_bbox": bbox,
        "room_center": list(scene.room_center),
        "video_path": scene.video_path,
        "dataset": scene.dataset,
    }


def import_meta(data: dict[str, Any]) -> list[SceneMetadata]:
    return [scene_from_meta(sid, entry) for sid, entry in data.items()]


def export_meta(scenes: list[SceneMetadata]) -> dict[str, Any]:
    return {s.scene_id: scene_to_meta(s) for s in scenes}
