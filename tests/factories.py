"""Scene graphs and frames built in code for tests (importable as ``factories``: pytest puts
tests/ on sys.path). Metres, z-up world; poses camera-to-world, OpenCV."""

from __future__ import annotations

from collections import Counter

import numpy as np

from vlm3r.scenes.demo.synthetic import look_rotation
from vlm3r.schemas.scene import (
    Frame,
    FrameMetadata,
    Intrinsics,
    ObjectInstance,
    OrientedBox,
    SceneMetadata,
    VisibleInstance,
)


def pose(center, yaw_deg: float = 0.0, pitch_deg: float = 0.0) -> np.ndarray:
    """Camera-to-world of a camera at ``center`` looking along yaw/pitch (the synthetic camera rig)."""
    m = np.eye(4)
    m[:3, :3] = look_rotation(np.radians([yaw_deg]), np.radians([pitch_deg]))[0]
    m[:3, 3] = center
    return m


def make_scene(boxes=(), scene_id: str = "s0", room_size: float = 20.0) -> SceneMetadata:
    """boxes: (instance_id, category, centroid, axes_lengths[, rotation 3x3])."""
    objs = [
        ObjectInstance(
            instance_id=b[0], category=b[1], raw_label=b[1],
            box=OrientedBox.from_arrays(b[2], b[3], b[4] if len(b) > 4 else np.eye(3)),
        )
        for b in boxes
    ]
    return SceneMetadata(
        scene_id=scene_id, dataset="test", room_size=room_size, room_center=[0, 0, 1],
        object_counts=dict(Counter(o.category for o in objs)), objects=objs,
    )


def meta_scene(boxes, scene_id: str = "s0", room_size: float = 20.0, dataset: str = "test") -> SceneMetadata:
    """From ``[(category, centroid, extent, yaw_deg), ...]``; instance ids follow list order."""
    objects = []
    for i, (category, centroid, extent, yaw) in enumerate(boxes):
        t = np.radians(yaw)
        rot = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
        box = OrientedBox.from_arrays(np.asarray(centroid, float), np.asarray(extent, float), rot)
        objects.append(ObjectInstance(instance_id=i, category=category, raw_label=category, box=box))
    return SceneMetadata(
        scene_id=scene_id, dataset=dataset, room_size=room_size, room_center=[0, 0, 1],
        object_counts=dict(Counter(c for c, *_ in boxes)), objects=objects,
    )


def make_frames(frame_ids, poses, visible, timestamps=None) -> FrameMetadata:
    """Frames with the given ids, poses and visible instance ids (30 fps timestamps by default)."""
    times = timestamps if timestamps is not None else [f / 30 for f in frame_ids]
    frames = [
        Frame(
            frame_id=f, timestamp_s=t, camera_to_world=np.asarray(p).tolist(),
            visible=[VisibleInstance(instance_id=i, bbox_2d=[0, 0, 1, 1], pixel_count=50) for i in vis],
        )
        for f, t, p, vis in zip(frame_ids, times, poses, visible)
    ]
    return FrameMetadata(
        scene_id="s0", dataset="test", intrinsics=Intrinsics(fx=100, fy=100, cx=80, cy=60, width=160, height=120),
        fps=30, num_stream_frames=1000, num_valid_frames=1000, visibility_source="instance_masks", frames=frames,
    )
