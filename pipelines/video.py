"""mp4 encoding of a scene's sampled frames (PyAV, imported lazily)."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np


def write_mp4(frames: Sequence[np.ndarray], path: Path, fps: float = 2.0) -> None:
    """Encode (H, W, 3) uint8 RGB frames as H.264 (yuv420p; odd sizes cropped to even)."""
    try:
        import av
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("writing videos needs PyAV: pip install 'vlm3r[video]'") from exc
    if not frames:
        raise ValueError("no frames to encode")
    h, w = (frames[0].shape[0] // 2) * 2, (frames[0].shape[1] // 2) * 2
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast", "threads": "1"}
        for rgb in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:h, :w]), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
