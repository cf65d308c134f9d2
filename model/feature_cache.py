"""Disk cache of CUT3R tokens: one safetensors file (fp16) per (video, frame indices, encoder tag).

CUT3R is frozen, so its tokens for a given video and frame selection never change; computing them
once saves the 0.8 B-parameter recurrent pass at every epoch. A cache entry holds ``tokens``
(T, 1 + P, D) float16 (camera token first) and metadata (video path, frame indices, tag). The file
name is the SHA-256 of the resolved video path, the frame indices and the tag (e.g. a name of the
CUT3R checkpoint and input size), so changing any of them misses the cache instead of returning
stale tokens.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Callable, Sequence

import torch


def cache_key(video_path: str | Path, frame_indices: Sequence[int], tag: str = "") -> str:
    """Hex SHA-256 identifying (resolved video path, frame indices, tag)."""
    payload = json.dumps(
        {"video": str(Path(video_path).resolve()), "frames": [int(i) for i in frame_indices], "tag": tag},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


class SpatialFeatureCache:
    """CUT3R token cache under ``root`` (two-level fan-out: ``root/ab/abcdef....safetensors``)."""

    def __init__(self, root: Path, tag: str = "") -> None:
        self.root = Path(root)
        self.tag = tag

    def path(self, video_path: str | Path, frame_indices: Sequence[int]) -> Path:
        key = cache_key(video_path, frame_indices, self.tag)
        return self.root / key[:2] / f"{key}.safetensors"

    def get(self, video_path: str | Path, frame_indices: Sequence[int]) -> torch.Tensor | None:
        """Cached tokens (T, 1 + P, D) float16, or ``None``. Raises ``ValueError`` on a corrupt or foreign entry."""
        from safetensors import safe_open

        path = self.path(video_path, frame_indices)
        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                tokens = f.get_tensor("tokens")
        except Exception as e:
            raise ValueError(f"{path}: unreadable spatial-feature cache entry ({e})") from e
        frames = json.loads(meta.get("frames", "null"))
        if frames != [int(i) for i in frame_indices] or tokens.shape[0] != len(frames):
            raise ValueError(f"{path}: cache entry does not match the requested frames")
        return tokens

    def put(self, video_path: str | Path, frame_indices: Sequence[int], tokens: torch.Tensor) -> Path:
        """Store tokens (T, 1 + P, D) as float16 (atomically: temp file + rename)."""
        from safetensors.torch import save_file

        if tokens.ndim != 3 or tokens.shape[0] != len(frame_indices):
            raise ValueError(f"tokens {tuple(tokens.shape)} do not match {len(frame_indices)} frames")
        path = self.path(video_path, frame_indices)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "video": str(Path(video_path).resolve()),
            "frames": json.dumps([int(i) for i in frame_indices]),
            "tag": self.tag,
        }
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        try:
            save_file({"tokens": tokens.detach().to("cpu", torch.float16).contiguous()}, tmp, metadata=meta)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return path

    def get_or_compute(
        self, video_path: str | Path, frame_indices: Sequence[int], compute: Callable[[], torch.Tensor]
    ) -> torch.Tensor:
        """Cached tokens, or ``compute()`` (T, 1 + P, D) stored then returned as stored (float16)."""
        cached = self.get(video_path, frame_indices)
        if cached is not None:
            return cached
        self.put(video_path, frame_indices, compute())
        cached = self.get(video_path, frame_indices)
        assert cached is not None
        return cached
