"""mp4 encoding of a scene's sampled frames (PyAV, imported lazily)."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image


def rgb_to_yuvj420(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> planar full-range YUV 4:2:0, shape (H * 3 / 2, W), H and W even.

    The colour conversion is Pillow's (JPEG / BT.601 full range); chroma is averaged over 2x2
    blocks. Done here rather than by FFmpeg's swscale, whose SIMD path gave different bytes for the
    same input from one call to the next, which broke byte-identical outputs.
    """
    h, w = rgb.shape[:2]
    ycc = np.asarray(Image.fromarray(rgb).convert("YCbCr"), dtype=np.float32)
    chroma = ycc[..., 1:].reshape(h // 2, 2, w // 2, 2, 2).mean(axis=(1, 3))
    planes = [ycc[..., 0].reshape(-1), chroma[..., 0].reshape(-1), chroma[..., 1].reshape(-1)]
    return np.clip(np.round(np.concatenate(planes)), 0, 255).astype(np.uint8).reshape(h * 3 // 2, w)


def write_mp4(frames: Sequence[np.ndarray], path: Path, fps: float = 2.0) -> None:
    """Encode (H, W, 3) uint8 RGB frames as H.264 (full-range 4:2:0; odd sizes cropped to even).

    Deterministic: the same frames give the same bytes (single-threaded x264, explicit timestamps).
    """
    try:
        import av
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("writing videos needs PyAV: pip install 'vlm3r[video]'") from exc
    if not frames:
        raise ValueError("no frames to encode")
    h, w = (frames[0].shape[0] // 2) * 2, (frames[0].shape[1] // 2) * 2
    rate = Fraction(fps).limit_denominator(1000)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuvj420p"
        stream.time_base = 1 / rate
        stream.options = {"crf": "23", "preset": "veryfast", "threads": "1"}
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb_to_yuvj420(np.ascontiguousarray(rgb[:h, :w])), format="yuvj420p")
            frame.pts, frame.time_base = i, 1 / rate
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
