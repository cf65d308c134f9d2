"""Raw-file readers every adapter shares: JSON and image files with errors naming the file, and the
resizing of images with their intrinsics (scaled as ``c' = c * s``, the ScanNet++ toolkit's way)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from vlm3r.scenes.base import SceneError
from vlm3r.schemas.io import MAX_IMAGE_PIXELS


MAX_JSON_BYTES = 1 << 30
"""Largest JSON file a scene may have (ScanNet's segs.json of a large scan is ~50 MB); a bigger
one (or a link to one) is refused before it is read."""


def read_json(path: Path, what: str = "file") -> object:
    """Parsed JSON, or SceneError naming the file (missing, larger than ``MAX_JSON_BYTES``, not
    UTF-8, not JSON, or nested too deeply)."""
    if not path.is_file():
        raise SceneError(path, f"missing {what}")
    size = path.stat().st_size  # of the target when the path is a link
    if size > MAX_JSON_BYTES:
        raise SceneError(path, f"{size:,} bytes, more than a {what} can be ({MAX_JSON_BYTES:,})")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise SceneError(path, f"invalid JSON (nested too deeply for a {what})") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SceneError(path, f"invalid JSON ({exc})") from exc


def scale_intrinsics_to(k: np.ndarray, src_size: tuple[int, int], dst_size: tuple[int, int]) -> np.ndarray:
    """3x3 intrinsics of an image of ``src_size`` (w, h) resized to ``dst_size``, scaled as the
    ScanNet++ toolkit scales them: ``f' = f * s`` and ``c' = c * s`` per axis."""
    sx, sy = dst_size[0] / src_size[0], dst_size[1] / src_size[1]
    out = np.array(k, dtype=np.float64, copy=True)
    out[0, 0] *= sx
    out[1, 1] *= sy
    out[0, 2] *= sx
    out[1, 2] *= sy
    return out


def resize_rgb(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 resized bilinearly to ``size`` = (w, h); unchanged when already that size."""
    from PIL import Image

    if (rgb.shape[1], rgb.shape[0]) == tuple(size):
        return rgb
    return np.asarray(Image.fromarray(rgb).resize(size, Image.BILINEAR))


def read_image(path: Path, what: str = "image") -> np.ndarray:
    """An image file as an array ((H, W, 3) uint8 colour or (H, W) integer depth); SceneError if bad."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise SceneError(path, f"missing {what}")
    try:
        with Image.open(path) as im:
            if im.size[0] * im.size[1] > MAX_IMAGE_PIXELS:  # from the header, before decoding
                raise SceneError(path, f"{im.size[0]}x{im.size[1]} {what}, more than {MAX_IMAGE_PIXELS:,} pixels")
            if im.mode in ("RGB", "L", "I;16", "I;16B", "I;16L", "I"):
                return np.asarray(im)
            return np.asarray(im.convert("RGB"))
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as exc:
        raise SceneError(path, f"unreadable {what} ({exc})") from exc
