"""What every dataset adapter shares: its config, its output, its error type, frame sampling."""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from vlm3r.schemas.scene import FrameMetadata, SceneMetadata

_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class SceneError(Exception):
    """A scene that cannot be adapted. The message is one line and names the offending file."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem


@dataclass(frozen=True)
class AdapterConfig:
    """Options every adapter honours.

    num_frames: frames sampled per video, ``linspace(0, N-1, num_frames)`` over the valid frames.
    seed: global seed; per-scene randomness (the room-size point sample) derives from it.
    min_visible_pixels: an instance counts as visible in a frame from this many pixels on.
    """

    num_frames: int = 32
    seed: int = 0
    min_visible_pixels: int = 20


@dataclass
class AdaptedScene:
    """An adapter's result: the scene graph and the RGB images (H, W, 3) uint8 of the sampled
    frames, keyed by frame id, at the size given by ``frames.intrinsics``."""

    scene: SceneMetadata
    frames: FrameMetadata | None
    images: dict[int, np.ndarray] = field(default_factory=dict)


class SceneAdapter(Protocol):
    """One raw dataset layout -> scene graphs."""

    dataset: str

    def list_scenes(self) -> list[str]: ...

    def load(self, scene_id: str, config: AdapterConfig) -> AdaptedScene: ...


def check_scene_id(scene_id: str) -> str:
    """Scene ids become directory names: allow only ``[A-Za-z0-9][A-Za-z0-9_.-]*`` without ``..``."""
    if not _SAFE_ID.match(scene_id) or ".." in scene_id:
        raise ValueError(f"unsafe scene id {scene_id!r}: only letters, digits, '_', '-', '.' are allowed")
    return scene_id


def stable_hash(text: str) -> int:
    """A process-independent 32-bit hash (Python's ``hash`` is salted per process)."""
    return zlib.crc32(text.encode("utf-8"))


def scene_rng(seed: int, purpose: str, dataset: str, scene_id: str) -> np.random.Generator:
    """The rng for one (seed, purpose, scene): the same whatever process or order runs it."""
    return np.random.default_rng([seed, stable_hash(purpose), stable_hash(f"{dataset}/{scene_id}")])


def sample_frame_ids(valid_frame_ids: np.ndarray, num_frames: int) -> np.ndarray:
    """``num_frames`` frame ids at ``linspace(0, N-1, num_frames)`` (floored) over the N valid ones;
    all of them when N <= num_frames."""
    valid = np.asarray(valid_frame_ids)
    if len(valid) <= num_frames:
        return valid.copy()
    return valid[np.linspace(0, len(valid) - 1, num_frames, dtype=np.int64)]
