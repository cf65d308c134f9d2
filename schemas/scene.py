"""The per-scene scene graph: ``scene_metadata`` and ``frame_metadata`` (DESIGN.md section 3).

Units are metres; the world frame is z-up (ScanNet / ScanNet++ after axis alignment, ARKitScenes as
is). Camera poses are camera-to-world 4x4 in the OpenCV convention (x right, y down, z forward); the
camera centre is the translation column of camera-to-world.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, field_validator

SCHEMA_VERSION = "1.0"
MAX_EXTENT_M = 500.0  # no indoor object or room is larger: bigger boxes mean broken input
MAX_ROOM_SIZE_M2 = 10_000.0  # a floor larger than a hectare is not an indoor scan
MAX_COORD_M = 10_000.0  # |coordinate| of any centre: scans are metres around their origin
MAX_OBJECTS = 1_000  # instances per scene (real scans: up to a few hundred)

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Vec3 = Annotated[list[FiniteFloat], Field(min_length=3, max_length=3)]
Mat3 = Annotated[list[Vec3], Field(min_length=3, max_length=3)]
Row4 = Annotated[list[FiniteFloat], Field(min_length=4, max_length=4)]
Mat4 = Annotated[list[Row4], Field(min_length=4, max_length=4)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


ROTATION_TOL = 1e-3
"""How far from orthonormal a rotation may be (max entry of ``R^T R - I``): float32 poses and boxes
are within 1e-6; an all-zero, scaled or sheared matrix is far outside."""


def orthonormality_error(r: np.ndarray) -> float:
    """max |R^T R - I| of a 3x3 matrix (0 for a rotation or a reflection)."""
    return float(np.abs(r.T @ r - np.eye(3)).max())


def is_rigid(m: np.ndarray) -> bool:
    """Whether a 4x4 matrix is a rigid transform: a rotation (det +1) within ``ROTATION_TOL``, any
    translation, last row [0, 0, 0, 1]."""
    r = m[:3, :3]
    return orthonormality_error(r) <= ROTATION_TOL and abs(np.linalg.det(r) - 1.0) <= ROTATION_TOL and bool(np.allclose(m[3], [0, 0, 0, 1]))


class OrientedBox(_Model):
    """A solid oriented box in world coordinates (metres, z-up).

    ``rotation`` columns are the box axes in world; ``axes_lengths`` are full extents along those
    axes (open3d ``OrientedBoundingBox`` convention: center, extent, R). ``min``/``max`` are the
    axis-aligned bounds of the box's eight corners.
    """

    centroid: Vec3
    axes_lengths: Vec3
    rotation: Mat3
    min: Vec3
    max: Vec3

    @field_validator("centroid", "min", "max")
    @classmethod
    def _plausible_position(cls, v: list[float]) -> list[float]:
        if any(abs(x) > MAX_COORD_M for x in v):
            raise ValueError(f"coordinates must lie within {MAX_COORD_M} m of the origin, got {v}")
        return v

    @field_validator("axes_lengths")
    @classmethod
    def _plausible_extent(cls, v: list[float]) -> list[float]:
        if any(x < 0 or x > MAX_EXTENT_M for x in v):
            raise ValueError(f"axes_lengths must lie in [0, {MAX_EXTENT_M}] m, got {v}")
        return v

    @field_validator("rotation")
    @classmethod
    def _is_rotation(cls, v: list[list[float]]) -> list[list[float]]:
        off = orthonormality_error(np.asarray(v, dtype=float))
        if off > ROTATION_TOL:
            raise ValueError(f"rotation is not a rotation (max |R^T R - I| = {off:.3g}): all-zero or sheared box axes")
        return v

    @classmethod
    def from_arrays(cls, centroid: np.ndarray, axes_lengths: np.ndarray, rotation: np.ndarray) -> OrientedBox:
        """Build a box and derive its axis-aligned bounds from the corners."""
        c = np.asarray(centroid, dtype=float)
        e = np.asarray(axes_lengths, dtype=float)
        r = np.asarray(rotation, dtype=float)
        corners = box_corners(c, e, r)
        return cls(
            centroid=c.tolist(),
            axes_lengths=e.tolist(),
            rotation=r.tolist(),
            min=corners.min(axis=0).tolist(),
            max=corners.max(axis=0).tolist(),
        )

    def corners(self) -> np.ndarray:
        """The eight corners, shape (8, 3), world metres."""
        return box_corners(np.array(self.centroid), np.array(self.axes_lengths), np.array(self.rotation))

    @property
    def longest_side(self) -> float:
        return float(max(self.axes_lengths))


def box_corners(centroid: np.ndarray, axes_lengths: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    """Corners (8, 3) of the box ``centroid + R @ (s * extent / 2)`` for signs s in {-1, 1}^3."""
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=float)
    return centroid[None, :] + (signs * (axes_lengths / 2.0)[None, :]) @ rotation.T


class ObjectInstance(_Model):
    """One annotated object. ``instance_id`` is unique within its scene for every dataset."""

    instance_id: NonNegativeInt
    category: str = Field(min_length=1)
    raw_label: str
    box: OrientedBox
    num_points: NonNegativeInt | None = None


class SceneMetadata(_Model):
    """Static description of one scene (DESIGN.md section 3)."""

    schema_version: str = SCHEMA_VERSION
    scene_id: str = Field(min_length=1)
    dataset: str = Field(min_length=1)
    split: str | None = None
    video_path: str | None = Field(None, description="relative to the build output (or dataset root)")
    room_size: FiniteFloat = Field(ge=0, le=MAX_ROOM_SIZE_M2, description="floor area in square metres")
    room_center: Vec3
    object_counts: dict[str, NonNegativeInt]
    objects: list[ObjectInstance] = Field(max_length=MAX_OBJECTS)
    source_root: str | None = Field(None, description="absolute path of the dataset root the scene was read from")
    source_files: list[str] = Field(default_factory=list, description="relative to source_root")
    mesh_file: str | None = Field(None, description="the scene mesh, relative to source_root (raw frame)")
    raw_to_world: Mat4 | None = Field(None, description="4x4 taking mesh_file coordinates to this z-up world")

    @field_validator("objects")
    @classmethod
    def _unique_ids(cls, objects: list[ObjectInstance]) -> list[ObjectInstance]:
        ids = [o.instance_id for o in objects]
        if len(ids) != len(set(ids)):
            raise ValueError("duplicate instance_id in objects")
        return objects

    def instances_of(self, category: str) -> list[ObjectInstance]:
        return [o for o in self.objects if o.category == category]


class Intrinsics(_Model):
    """Pinhole intrinsics in pixels for images of ``width`` x ``height``."""

    fx: FiniteFloat = Field(gt=0)
    fy: FiniteFloat = Field(gt=0)
    cx: FiniteFloat
    cy: FiniteFloat
    width: int = Field(gt=0)
    height: int = Field(gt=0)

    def matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])


class VisibleInstance(_Model):
    """An instance seen in a frame: 2D box [xmin, ymin, xmax, ymax] in pixels (inclusive)."""

    instance_id: NonNegativeInt
    bbox_2d: Annotated[list[int], Field(min_length=4, max_length=4)]
    pixel_count: NonNegativeInt


class Frame(_Model):
    """One sampled frame. ``frame_id`` is the index in the original stream."""

    frame_id: NonNegativeInt
    timestamp_s: FiniteFloat
    color_path: str | None = Field(None, description="relative to the build output")
    depth_path: str | None = None
    camera_to_world: Mat4 = Field(description="4x4, OpenCV camera, z-up world, metres")
    visible: list[VisibleInstance] = Field(default_factory=list)

    @field_validator("camera_to_world")
    @classmethod
    def _is_rigid(cls, v: list[list[float]]) -> list[list[float]]:
        m = np.asarray(v, dtype=float)
        if not is_rigid(m):
            raise ValueError(f"camera_to_world is not a rigid pose (rotation off by {orthonormality_error(m[:3, :3]):.3g}, "
                             f"det {np.linalg.det(m[:3, :3]):.3g}, last row {m[3].tolist()})")
        return v

    def pose(self) -> np.ndarray:
        return np.asarray(self.camera_to_world, dtype=float)

    @property
    def camera_center(self) -> np.ndarray:
        """Camera centre in world (metres): the translation column of camera-to-world."""
        return self.pose()[:3, 3]


class FrameMetadata(_Model):
    """The sampled frames of one scene's video with poses and per-frame visibility."""

    schema_version: str = SCHEMA_VERSION
    scene_id: str = Field(min_length=1)
    dataset: str = Field(min_length=1)
    intrinsics: Intrinsics
    fps: FiniteFloat = Field(gt=0, description="frame rate of the original stream")
    num_stream_frames: NonNegativeInt = Field(description="frames in the original stream, valid or not")
    num_valid_frames: NonNegativeInt = Field(description="stream frames with a finite pose")
    visibility_source: str = Field(description="'instance_masks' or 'depth_projection'")
    frames: list[Frame]
