"""What every dataset adapter shares: its config, its output, its error type, frame sampling."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from vlm3r.schemas.scene import FrameMetadata, Intrinsics, SceneMetadata

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
    fps_subsample: when set (Hz), sample the valid frames nearest to a regular time grid at this
        rate instead of ``num_frames`` frames (training-scale exports); see :func:`select_frames`.
    """

    num_frames: int = 32
    seed: int = 0
    min_visible_pixels: int = 20
    fps_subsample: float | None = None

    def __post_init__(self) -> None:
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")
        if self.fps_subsample is not None and not (self.fps_subsample > 0 and np.isfinite(self.fps_subsample)):
            raise ValueError(f"fps_subsample must be a positive number of Hz, got {self.fps_subsample}")


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


_WINDOWS_RESERVED = re.compile(r"^(CON|PRN|AUX|NUL|COM[0-9]|LPT[0-9])(\..*)?$", re.I)


def check_scene_id(scene_id: str) -> str:
    """Scene ids become directory names on any file system: allow only
    ``[A-Za-z0-9][A-Za-z0-9_.-]*`` (the whole string: no trailing newline), without ``..``, not
    ending in '.', and not a Windows device name (``CON``, ``nul.txt``, ``COM1``, ...)."""
    if not _SAFE_ID.fullmatch(scene_id) or ".." in scene_id:
        raise ValueError(f"unsafe scene id {scene_id!r}: only letters, digits, '_', '-', '.' are allowed")
    if scene_id.endswith(".") or _WINDOWS_RESERVED.match(scene_id):
        raise ValueError(f"unsafe scene id {scene_id!r}: not a portable folder name (trailing dot or Windows device name)")
    return scene_id


def case_collisions(scene_ids: Sequence[str]) -> dict[str, str]:
    """Ids that name the same folder on a case-insensitive file system (macOS and Windows defaults,
    exFAT) as an earlier id in sorted order: {later id: the id it collides with}."""
    first: dict[str, str] = {}
    out: dict[str, str] = {}
    for sid in sorted(scene_ids):
        key = sid.casefold()
        if key in first:
            out[sid] = first[key]
        else:
            first[key] = sid
    return out


def sample_frame_ids(valid_frame_ids: np.ndarray, num_frames: int) -> np.ndarray:
    """``num_frames`` frame ids at ``linspace(0, N-1, num_frames)`` (floored) over the N valid ones;
    all of them when N <= num_frames."""
    valid = np.asarray(valid_frame_ids)
    if len(valid) <= num_frames:
        return valid.copy()
    return valid[np.linspace(0, len(valid) - 1, num_frames, dtype=np.int64)]


def subsample_by_rate(valid_frame_ids: np.ndarray, timestamps_s: np.ndarray, fps: float) -> np.ndarray:
    """Valid frame ids at about ``fps`` Hz: for every time ``t0 + k / fps`` from the first to the last
    valid frame, the valid frame nearest to it (ties to the earlier one), without repeats.

    valid_frame_ids: (N,) stream indices of the valid frames, increasing; timestamps_s: (N,) their
    timestamps in seconds, non-decreasing.
    """
    ids = np.asarray(valid_frame_ids)
    ts = np.asarray(timestamps_s, dtype=np.float64)
    if ids.shape != ts.shape:
        raise ValueError(f"{len(ids)} frame ids but {len(ts)} timestamps")
    if len(ids) == 0:
        return ids.copy()
    if np.any(np.diff(ts) < 0):
        raise ValueError("timestamps must be non-decreasing")
    n = int(np.floor((ts[-1] - ts[0]) * fps + 1e-9)) + 1
    grid = ts[0] + np.arange(n) / fps
    right = np.clip(np.searchsorted(ts, grid, side="left"), 0, len(ts) - 1)
    left = np.clip(right - 1, 0, len(ts) - 1)
    nearest = np.where(np.abs(ts[left] - grid) <= np.abs(ts[right] - grid), left, right)
    return ids[np.unique(nearest)]


def select_frames(valid_frame_ids: np.ndarray, timestamps_s: np.ndarray, config: AdapterConfig) -> np.ndarray:
    """The frame sampling every adapter uses: ``config.fps_subsample`` Hz when set
    (:func:`subsample_by_rate`), else ``config.num_frames`` frames by :func:`sample_frame_ids`.

    valid_frame_ids: (N,) increasing stream indices of the valid frames; timestamps_s: (N,) seconds.
    """
    if config.fps_subsample is not None:
        return subsample_by_rate(valid_frame_ids, timestamps_s, config.fps_subsample)
    return sample_frame_ids(valid_frame_ids, config.num_frames)


def median_intrinsics(ks: list[np.ndarray], size: tuple[int, int]) -> Intrinsics:
    """Per-element median of 3x3 intrinsics (ARKit refines them per frame) for images of ``size``."""
    k = np.median(np.stack(ks), axis=0)
    return Intrinsics(fx=k[0, 0], fy=k[1, 1], cx=k[0, 2], cy=k[1, 2], width=size[0], height=size[1])


def stream_fps(timestamps_s: np.ndarray, default: float) -> float:
    """Frame rate (Hz) of a stream from its (N,) timestamps: (N - 1) / duration; ``default`` if unknown."""
    ts = np.asarray(timestamps_s, dtype=np.float64)
    if len(ts) < 2 or not np.isfinite(ts).all() or ts[-1] <= ts[0]:
        return default
    return float((len(ts) - 1) / (ts[-1] - ts[0]))
