"""ScanNet ``.sens`` RGB-D streams (version 4): a memory-mapped reader and a streaming writer.

Byte layout (little-endian), see DESIGN.md section 4::

    uint32 version (=4); uint64 n; n bytes sensor name
    float32[16] x 4   colour intrinsics, colour extrinsics, depth intrinsics, depth extrinsics (row-major)
    int32 colour compression (-1 unknown, 0 raw, 1 png, 2 jpeg); int32 depth compression (0 raw, 1 zlib, 2 occi)
    uint32 colour width, colour height, depth width, depth height; float32 depth shift; uint64 frames
    per frame: float32[16] camera_to_world, uint64 colour ts, uint64 depth ts, uint64 colour bytes,
               uint64 depth bytes, colour bytes, depth bytes

Poses are camera-to-world in the scan's own (not axis-aligned) frame; invalid poses hold -inf/NaN.
Only the frame headers are read up front (one small read per frame, seeking past the images);
colour and depth are read and decoded on demand for the frames asked for.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vlm3r.schemas.io import MAX_IMAGE_PIXELS

COMPRESSION_COLOR = {-1: "unknown", 0: "raw", 1: "png", 2: "jpeg"}
COMPRESSION_DEPTH = {-1: "unknown", 0: "raw_ushort", 1: "zlib_ushort", 2: "occi_ushort"}

_FRAME_HEADER = np.dtype(
    [("pose", "<f4", (16,)), ("color_ts", "<u8"), ("depth_ts", "<u8"), ("color_size", "<u8"), ("depth_size", "<u8")]
)


class SensError(ValueError):
    """A malformed or truncated .sens file; the message names the file."""


@dataclass(frozen=True)
class SensHeader:
    version: int
    sensor_name: str
    color_intrinsics: np.ndarray  # (4, 4)
    color_extrinsics: np.ndarray
    depth_intrinsics: np.ndarray
    depth_extrinsics: np.ndarray
    color_compression: int
    depth_compression: int
    color_width: int
    color_height: int
    depth_width: int
    depth_height: int
    depth_shift: float
    num_frames: int


class SensReader:
    """Random access to the frames of a ``.sens`` file.

    Attributes after opening: ``header``, ``poses`` (N, 4, 4) float64 camera-to-world (scan frame),
    ``color_timestamps`` / ``depth_timestamps`` (N,) uint64 as stored (microseconds in ScanNet).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._file = open(self.path, "rb")
        except OSError as exc:
            raise SensError(f"{self.path}: cannot open ({exc.strerror})") from exc
        try:
            self._parse()
        except Exception:
            self._file.close()
            raise

    def _fail(self, what: str) -> SensError:
        return SensError(f"{self.path}: {what}")

    def _read(self, offset: int, n: int) -> bytes:
        self._file.seek(offset)
        data = self._file.read(n)
        if len(data) != n:
            raise self._fail(f"truncated at byte {offset + len(data)}")
        return data

    def _parse(self) -> None:
        size = self.path.stat().st_size
        if size == 0:
            raise self._fail("empty file")
        try:
            head = self._file.read(12)
            version, name_len = struct.unpack("<IQ", head)
            if version != 4:
                raise self._fail(f"unsupported .sens version {version} (expected 4)")
            if name_len > 4096:
                raise self._fail(f"implausible sensor-name length {name_len}")
            name = self._file.read(name_len).decode("utf-8", errors="replace")
            rest = self._file.read(256 + 8 + 16 + 4 + 8)
            mats = np.frombuffer(rest[:256], dtype="<f4").astype(np.float64).reshape(4, 4, 4)
            ccomp, dcomp, cw, ch, dw, dh, shift, n = struct.unpack("<iiIIIIfQ", rest[256:])
        except SensError:
            raise
        except (struct.error, ValueError) as exc:
            raise self._fail("truncated header") from exc
        off = 12 + name_len + 292
        for what, w, h in (("colour", cw, ch), ("depth", dw, dh)):
            if w * h > MAX_IMAGE_PIXELS:
                raise self._fail(f"header claims {w}x{h} {what} images, more than {MAX_IMAGE_PIXELS:,} pixels")
        if n > size // _FRAME_HEADER.itemsize:
            raise self._fail(f"header claims {n} frames, more than the file can hold")
        self.header = SensHeader(
            version, name, mats[0], mats[1], mats[2], mats[3], ccomp, dcomp, cw, ch, dw, dh, float(shift), int(n)
        )
        # Walk the frame headers: one fixed-size struct per frame, payload sizes give the next offset.
        headers = np.empty(n, dtype=_FRAME_HEADER)
        offsets = np.empty(n, dtype=np.int64)
        hsize = _FRAME_HEADER.itemsize
        for i in range(n):
            if off + hsize > size:
                raise self._fail(f"truncated at frame {i} of {n}")
            headers[i] = np.frombuffer(self._read(off, hsize), dtype=_FRAME_HEADER)[0]
            off += hsize
            offsets[i] = off
            for what, claimed, limit in (("colour", int(headers[i]["color_size"]), 4 * cw * ch + (1 << 20)),
                                         ("depth", int(headers[i]["depth_size"]), 4 * dw * dh + (1 << 20))):
                if claimed > limit:  # even uncompressed it would fit in less
                    raise self._fail(f"frame {i}: claims {claimed:,} {what} bytes, more than {limit:,} for its image size")
            off += int(headers[i]["color_size"]) + int(headers[i]["depth_size"])
            if off > size:
                raise self._fail(f"truncated in the image data of frame {i} of {n}")
        self._offsets = offsets
        self._color_size = headers["color_size"].astype(np.int64)
        self._depth_size = headers["depth_size"].astype(np.int64)
        self.poses = headers["pose"].astype(np.float64).reshape(n, 4, 4)
        self.color_timestamps = headers["color_ts"].copy()
        self.depth_timestamps = headers["depth_ts"].copy()

    @property
    def num_frames(self) -> int:
        return self.header.num_frames

    def valid_mask(self) -> np.ndarray:
        """(N,) bool: frames whose pose is finite everywhere."""
        return np.isfinite(self.poses).all(axis=(1, 2))

    def color_bytes(self, i: int) -> bytes:
        return self._read(int(self._offsets[i]), int(self._color_size[i]))

    def depth_bytes(self, i: int) -> bytes:
        return self._read(int(self._offsets[i]) + int(self._color_size[i]), int(self._depth_size[i]))

    def read_color(self, i: int) -> np.ndarray:
        """Colour image (H, W, 3) uint8 RGB of frame ``i``."""
        from PIL import Image

        comp = self.header.color_compression
        data = self.color_bytes(i)
        if comp in (1, 2):
            try:
                with Image.open(io.BytesIO(data)) as im:
                    if im.size != (self.header.color_width, self.header.color_height):  # from the image header
                        raise self._fail(f"frame {i}: colour image is {im.size[0]}x{im.size[1]}, the header says "
                                         f"{self.header.color_width}x{self.header.color_height}")
                    return np.asarray(im.convert("RGB"))
            except SensError:
                raise
            except Exception as exc:
                raise self._fail(f"frame {i}: undecodable colour image ({exc})") from exc
        if comp == 0:
            h, w = self.header.color_height, self.header.color_width
            if len(data) != h * w * 3:
                raise self._fail(f"frame {i}: raw colour has {len(data)} bytes, expected {h * w * 3}")
            return np.frombuffer(data, dtype=np.uint8).reshape(h, w, 3)
        raise self._fail(f"unsupported colour compression {COMPRESSION_COLOR.get(comp, comp)}")

    def read_depth(self, i: int) -> np.ndarray:
        """Depth image (H, W) uint16 in stored units (divide by ``header.depth_shift`` for metres)."""
        comp = self.header.depth_compression
        data = self.depth_bytes(i)
        h, w = self.header.depth_height, self.header.depth_width
        if comp == 1:
            try:  # inflate at most one byte more than the frame can hold: a zlib bomb stops there
                inflater = zlib.decompressobj()
                data = inflater.decompress(data, h * w * 2 + 1)
            except zlib.error as exc:
                raise self._fail(f"frame {i}: corrupt zlib depth ({exc})") from exc
        elif comp != 0:
            raise self._fail(f"unsupported depth compression {COMPRESSION_DEPTH.get(comp, comp)}")
        if len(data) != h * w * 2:
            raise self._fail(f"frame {i}: depth has {len(data)} bytes, expected {h * w * 2}")
        return np.frombuffer(data, dtype="<u2").reshape(h, w)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> SensReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass(frozen=True)
class SensFrame:
    """One frame to write: camera-to-world (4, 4), encoded colour, encoded depth, timestamps (us)."""

    camera_to_world: np.ndarray
    color: bytes
    depth: bytes
    color_timestamp: int
    depth_timestamp: int


def write_sens(path: str | Path, header: SensHeader, frames: Iterable[SensFrame]) -> None:
    """Write a version-4 ``.sens`` file. ``header.num_frames`` must equal the number of frames."""
    path = Path(path)
    count = 0
    with open(path, "wb") as f:
        name = header.sensor_name.encode("utf-8")
        f.write(struct.pack("<IQ", 4, len(name)))
        f.write(name)
        for m in (header.color_intrinsics, header.color_extrinsics, header.depth_intrinsics, header.depth_extrinsics):
            f.write(np.asarray(m, dtype="<f4").reshape(16).tobytes())
        f.write(struct.pack("<ii", header.color_compression, header.depth_compression))
        f.write(struct.pack("<IIII", header.color_width, header.color_height, header.depth_width, header.depth_height))
        f.write(struct.pack("<fQ", header.depth_shift, header.num_frames))
        for fr in frames:
            f.write(np.asarray(fr.camera_to_world, dtype="<f4").reshape(16).tobytes())
            f.write(struct.pack("<QQQQ", fr.color_timestamp, fr.depth_timestamp, len(fr.color), len(fr.depth)))
            f.write(fr.color)
            f.write(fr.depth)
            count += 1
    if count != header.num_frames:
        raise ValueError(f"{path}: header says {header.num_frames} frames, wrote {count}")


def encode_depth_zlib(depth_mm: np.ndarray) -> bytes:
    """zlib-compressed little-endian uint16 depth, as ScanNet stores it."""
    return zlib.compress(np.ascontiguousarray(depth_mm, dtype="<u2").tobytes(), 1)


def encode_jpeg(rgb: np.ndarray, quality: int = 90) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()
