"""Camera and box geometry of the VSTI-Bench tasks, in one place (DESIGN.md sections 3 and 5).

Conventions (the scene graph's):

* world frame: z-up, metres;
* a pose is camera-to-world, 4x4, OpenCV camera (x right, y down, z forward), so a camera point
  ``p_c`` maps to the world as ``R @ p_c + t``;
* the camera centre is the translation column ``t`` of camera-to-world. (The public reference
  scripts used ``-R^T t``, which is the centre only for a world-to-camera matrix; this module never
  does that, and a regression test pins it.)
* a box is solid: ``centroid + R @ u`` for ``|u_i| <= axes_lengths_i / 2``; ``R``'s columns are the
  box axes in world.

Everything is vectorised with numpy broadcasting over leading dimensions. The second half holds
array views of a scene graph (all boxes of a scene, the sampled frames ordered by rank) that the
task generators share.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from math import comb

import numpy as np

from vlm3r.datagen.box_geometry import box_corners_world, point_box_distance
from vlm3r.schemas.scene import FrameMetadata, SceneMetadata

"""(8, 3) corner signs, in the order of ``schemas.scene.box_corners``."""


# --------------------------------------------------------------------------------------------------
# Poses
# --------------------------------------------------------------------------------------------------


def camera_centers(camera_to_world: np.ndarray) -> np.ndarray:
    """Camera centres in world metres, shape (..., 3), from camera-to-world poses (..., 4, 4).

    The centre is the translation column ``t`` (the image of the camera origin), never ``-R^T t``.
    """
    pose = np.asarray(camera_to_world, dtype=np.float64)
    return pose[..., :3, 3].copy()


def world_to_camera(camera_to_world: np.ndarray) -> np.ndarray:
    """World-to-camera 4x4 transforms (..., 4, 4): ``[R^T, -R^T t; 0, 1]`` for rigid poses."""
    pose = np.asarray(camera_to_world, dtype=np.float64)
    rot, t = pose[..., :3, :3], pose[..., :3, 3]
    rot_t = np.swapaxes(rot, -1, -2)
    out = np.zeros(pose.shape, dtype=np.float64)
    out[..., :3, :3] = rot_t
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", rot_t, t)
    out[..., 3, 3] = 1.0
    return out


def world_points_to_camera(camera_to_world: np.ndarray, points: np.ndarray) -> np.ndarray:
    """World points (..., P, 3) in the camera frame of poses (..., 4, 4): ``R^T (p - t)``.

    Leading dimensions broadcast, e.g. poses (F, 1, 4, 4) with points (1, M, 8, 3) gives (F, M, 8, 3)
    camera coordinates (OpenCV: x right, y down, z forward; metres).
    """
    pose = np.asarray(camera_to_world, dtype=np.float64)
    pts = np.asarray(points, dtype=np.float64)
    rot, t = pose[..., :3, :3], pose[..., :3, 3]
    # Row vectors: (p - t)^T R == (R^T (p - t))^T.
    return (pts - t[..., None, :]) @ rot


def relative_translation(start_camera_to_world: np.ndarray, end_camera_to_world: np.ndarray) -> np.ndarray:
    """The move from start to end camera centre expressed in the START camera's axes, (..., 3):
    ``d = R_start^T (c_end - c_start)`` (x right, y down, z forward; metres)."""
    start = np.asarray(start_camera_to_world, dtype=np.float64)
    delta = camera_centers(end_camera_to_world) - camera_centers(start)
    return np.einsum("...ji,...j->...i", start[..., :3, :3], delta)


# --------------------------------------------------------------------------------------------------
# Boxes
# --------------------------------------------------------------------------------------------------


def box_corners_camera(
    camera_to_world: np.ndarray, centroids: np.ndarray, axes_lengths: np.ndarray, rotations: np.ndarray
) -> np.ndarray:
    """Box corners in camera coordinates (OpenCV x right, y down, z forward; metres).

    Poses (..., 4, 4) and boxes (..., 3) / (..., 3, 3) broadcast over their leading dimensions:
    poses (F, 1, 4, 4) with boxes (M, ...) give (F, M, 8, 3).
    """
    return world_points_to_camera(camera_to_world, box_corners_world(centroids, axes_lengths, rotations))


@dataclass(frozen=True)
class SceneBoxes:
    """All object boxes of a scene as arrays, in ``scene.objects`` order (M objects).

    instance_ids (M,), categories (M,), centroids (M, 3), axes_lengths (M, 3) full extents,
    rotations (M, 3, 3), corners (M, 8, 3); world metres.
    """

    instance_ids: np.ndarray
    categories: tuple[str, ...]
    centroids: np.ndarray
    axes_lengths: np.ndarray
    rotations: np.ndarray
    corners: np.ndarray
    index: dict[int, int]

    @classmethod
    def from_scene(cls, scene: SceneMetadata) -> SceneBoxes:
        objs = scene.objects
        centroids = np.array([o.box.centroid for o in objs], dtype=np.float64).reshape(-1, 3)
        lengths = np.array([o.box.axes_lengths for o in objs], dtype=np.float64).reshape(-1, 3)
        rotations = np.array([o.box.rotation for o in objs], dtype=np.float64).reshape(-1, 3, 3)
        ids = np.array([o.instance_id for o in objs], dtype=np.int64)
        return cls(
            instance_ids=ids,
            categories=tuple(o.category for o in objs),
            centroids=centroids,
            axes_lengths=lengths,
            rotations=rotations,
            corners=box_corners_world(centroids, lengths, rotations),
            index={int(i): k for k, i in enumerate(ids)},
        )

    def __len__(self) -> int:
        return len(self.instance_ids)


@dataclass(frozen=True)
class FrameView:
    """The sampled frames of a scene ordered by stream index: rank r (0-based) is "frame r+1 of N".

    frame_ids (N,) original stream indices; poses (N, 4, 4) camera-to-world; centers (N, 3) world
    metres; visible_once[r] maps each category with EXACTLY one visible instance in frame r (among
    the scene's objects) to the index of that instance in ``SceneBoxes``.
    """

    frame_ids: np.ndarray
    poses: np.ndarray
    centers: np.ndarray
    visible_once: tuple[dict[str, int], ...]

    @classmethod
    def build(cls, frames: FrameMetadata, boxes: SceneBoxes) -> FrameView:
        ordered = sorted(frames.frames, key=lambda f: f.frame_id)
        poses = np.array([f.camera_to_world for f in ordered], dtype=np.float64).reshape(-1, 4, 4)
        once: list[dict[str, int]] = []
        for fr in ordered:
            seen: dict[str, list[int]] = {}
            for v in fr.visible:
                k = boxes.index.get(v.instance_id)
                if k is not None:
                    seen.setdefault(boxes.categories[k], []).append(k)
            once.append({cat: ks[0] for cat, ks in sorted(seen.items()) if len(set(ks)) == 1})
        return cls(
            frame_ids=np.array([f.frame_id for f in ordered], dtype=np.int64),
            poses=poses,
            centers=camera_centers(poses),
            visible_once=tuple(once),
        )

    @property
    def num_frames(self) -> int:
        return len(self.frame_ids)

    def label(self, rank: int) -> str:
        """``"frame k of N"`` for 0-based rank ``rank`` (k = rank + 1)."""
        return f"frame {rank + 1} of {self.num_frames}"

    def camera_box_distances(self, boxes: SceneBoxes) -> np.ndarray:
        """(N, M) metres from every frame's camera centre to every solid box."""
        return point_box_distance(
            self.centers[:, None, :], boxes.centroids[None], boxes.axes_lengths[None], boxes.rotations[None]
        )

    def corners_in_camera(self, boxes: SceneBoxes) -> np.ndarray:
        """(N, M, 8, 3) box corners in each frame's camera coordinates (OpenCV, metres)."""
        return world_points_to_camera(self.poses[:, None], boxes.corners[None])


def sample_capped(n: int, cap: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of at most ``cap`` of ``n`` candidates, drawn without replacement by ``rng`` and
    returned in increasing order (so output order follows candidate order)."""
    if n <= cap:
        return np.arange(n)
    return np.sort(rng.choice(n, size=cap, replace=False))


def random_subsets(m: int, size: int, rng: np.random.Generator, limit: int = 4096) -> np.ndarray:
    """Subsets of ``size`` out of ``m`` items, shape (S, size), each row increasing.

    All ``C(m, size)`` subsets when there are at most ``limit`` of them, otherwise ``limit`` random
    ones drawn by ``rng`` (possibly repeated), so the cost stays bounded in crowded frames.
    """
    if size > m or size <= 0:
        return np.zeros((0, max(size, 0)), dtype=np.int64)
    if comb(m, size) <= limit:
        return np.array(list(combinations(range(m), size)), dtype=np.int64).reshape(-1, size)
    keys = rng.random((limit, m))
    return np.sort(np.argsort(keys, axis=1)[:, :size], axis=1)
