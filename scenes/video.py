"""mp4 encoding of a scene's sampled frames (PyAV, imported lazily)."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

def rgb_to_yuv420(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> planar limited-range BT.601 YUV 4:2:0, shape (H * 3 / 2, W), H, W even.

    Pillow's full-range YCbCr, rescaled to video range; chroma averaged over 2x2 blocks. Done here,
    not by FFmpeg's swscale, so that the same frames always give the same bytes.
    """
    h, w = rgb.shape[:2]
    ycc = np.asarray(Image.fromarray(rgb).convert("YCbCr"), dtype=np.float32)
    y = 16.0 + ycc[..., 0] * (219.0 / 255.0)
    c = 128.0 + (ycc[..., 1:] - 128.0) * (224.0 / 255.0)
    c = c.reshape(h // 2, 2, w // 2, 2, 2).mean(axis=(1, 3))
    planes = [y.reshape(-1), c[..., 0].reshape(-1), c[..., 1].reshape(-1)]
    return np.clip(np.round(np.concatenate(planes)), 0, 255).astype(np.uint8).reshape(h * 3 // 2, w)


X264_PARAMS = "threads=1:lookahead-threads=1:sliced-threads=0:sync-lookahead=0:no-mbtree=1"
"""One thread in every x264 stage, and no macroblock-tree rate control: its floating-point
propagation gave different bytes (even from run to run) in processes that had loaded torch."""


def write_mp4(frames: Sequence[np.ndarray], path: Path, fps: float = 2.0, crf: int = 18) -> None:
    """Encode (H, W, 3) uint8 RGB frames as H.264 (High profile, yuv420p) in an mp4 with the index
    first (``movflags=+faststart``), so that browsers play it and stream it at once; odd sizes are
    cropped to even.

    libx264 at a constant quality (``crf``) with ``X264_PARAMS`` and explicit timestamps: the same
    frames give the same bytes, in any process and with any number of build workers.
    """
    try:
        import av
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("writing videos needs PyAV: pip install av") from exc
    if not frames:
        raise ValueError("no frames to encode")
    h, w = (frames[0].shape[0] // 2) * 2, (frames[0].shape[1] // 2) * 2
    if h < 2 or w < 2:
        raise ValueError(f"{path}: frames of {frames[0].shape[1]}x{frames[0].shape[0]} pixels are too small to encode a video")
    rate = Fraction(fps).limit_denominator(1000)
    with av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=rate, options={
            "preset": "medium", "crf": str(crf), "threads": "1",
            "x264-params": X264_PARAMS,
        })  # fmt: skip
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        stream.time_base = 1 / rate
        stream.codec_context.thread_count = 1
        stream.codec_context.thread_type = "NONE"
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb_to_yuv420(np.ascontiguousarray(rgb[:h, :w])), format="yuv420p")
            frame.pts, frame.time_base = i, 1 / rate
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
