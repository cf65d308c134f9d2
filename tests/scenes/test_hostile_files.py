"""Small hostile raw files that would take gigabytes: headers claiming huge images, zlib and zip
bombs, absurd frame keys. Each is refused from its header (or inflation stops at the frame's size)
with a reason naming the file, and a build's peak memory stays near a clean build's (measured in a
subprocess with ``resource.getrusage``)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from vlm3r.scenes.base import SceneError
from vlm3r.schemas.io import MAX_IMAGE_PIXELS
from vlm3r.scenes.sens import SensError, SensFrame, SensReader, write_sens

SID = "scene0001_00"


def png_header_only(width: int, height: int, mode: int = 2) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (a decompression bomb's header), nearly no data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, mode, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def zeros_zlib(n_bytes: int) -> bytes:
    c = zlib.compressobj(9)
    block = bytes(1 << 20)
    parts = [c.compress(block) for _ in range(n_bytes >> 20)]
    return b"".join(parts) + c.flush()


def copy_scan(scannet_root, dst: Path) -> Path:
    src, _ = scannet_root
    shutil.copytree(src / "scans" / SID, dst / "scans" / SID)
    shutil.copy(src / "scannetv2-labels.combined.tsv", dst)
    return dst


def rewrite_sens(path: Path, header_change: dict | None = None, depth_of=None) -> None:  # noqa: ANN001
    """Rewrite a .sens with another header and/or a frame's depth bytes replaced."""
    with SensReader(path) as r:
        header = dataclasses.replace(r.header, **(header_change or {}))
        frames = [SensFrame(r.poses[i], r.color_bytes(i), r.depth_bytes(i), int(r.color_timestamps[i]), int(r.depth_timestamps[i]))
                  for i in range(r.num_frames)]
    if depth_of is not None:
        frames = [dataclasses.replace(f, depth=depth_of(i, f.depth)) for i, f in enumerate(frames)]
    write_sens(path, header, frames)


BUILD = (
    "import json, resource, sys\n"
    "from pathlib import Path\n"
    "from vlm3r.pipelines.build import BuildConfig, build\n"
    "from vlm3r.scenes.base import AdapterConfig\n"
    "from vlm3r.scenes.scannet import ScanNetAdapter\n"
    "s = build(ScanNetAdapter(Path(sys.argv[1])), BuildConfig(out=Path(sys.argv[2]), adapter=AdapterConfig(num_frames=8),\n"
    "          tasks=('room_size_estimation',), write_video=False))\n"
    "print(json.dumps({'ok': s.scenes_ok, 'skipped': s.skipped, 'peak_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
)


def build_in_subprocess(root: Path, out: Path) -> dict:
    res = subprocess.run([sys.executable, "-c", BUILD, str(root), str(out)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def clean_peak(scannet_root, tmp_path_factory):
    root = copy_scan(scannet_root, tmp_path_factory.mktemp("clean"))
    result = build_in_subprocess(root, tmp_path_factory.mktemp("clean_out"))
    assert result["ok"] == 1
    return result["peak_mb"]


def hostile_sens_header(root: Path) -> str:
    rewrite_sens(root / "scans" / SID / f"{SID}.sens", {"depth_width": 40_000, "depth_height": 40_000})
    return "header claims 40000x40000 depth images"


def hostile_zip_member(root: Path) -> str:
    zpath = root / "scans" / SID / f"{SID}_2d-instance-filt.zip"
    with zipfile.ZipFile(zpath, "a", compression=zipfile.ZIP_DEFLATED) as zf, zf.open("instance-filt/0.png", "w", force_zip64=True) as f:
        block = bytes(1 << 20)
        for _ in range(1024):  # a 1 GiB member, ~1 MB compressed
            f.write(block)
    return "instance-filt/0.png: 1,073,741,824 bytes inflated"


def hostile_huge_mask(root: Path) -> str:
    zpath = root / "scans" / SID / f"{SID}_2d-instance-filt.zip"
    names = zipfile.ZipFile(zpath).namelist()
    tmp = zpath.with_suffix(".new")
    with zipfile.ZipFile(zpath) as src, zipfile.ZipFile(tmp, "w") as dst:
        for n in names:
            dst.writestr(n, png_header_only(13_000, 13_000, mode=0) if Path(n).stem == "0" else src.read(n))
    tmp.replace(zpath)
    return "13000x13000 mask, more than"


@pytest.mark.parametrize("make_hostile", [hostile_sens_header, hostile_zip_member, hostile_huge_mask])
def test_hostile_scan_is_refused_within_the_memory_of_a_clean_build(scannet_root, tmp_path, clean_peak, make_hostile):
    root = copy_scan(scannet_root, tmp_path / "raw")
    reason = make_hostile(root)
    result = build_in_subprocess(root, tmp_path / "out")
    assert result["ok"] == 0 and reason in result["skipped"][SID], result["skipped"]
    assert result["peak_mb"] < clean_peak + 300, (result["peak_mb"], clean_peak)
    print(f"{make_hostile.__name__}: peak {result['peak_mb']:.0f} MB, clean build {clean_peak:.0f} MB")


def test_zlib_depth_inflates_no_further_than_its_frame(scannet_root, tmp_path):
    """(A build with instance masks never reads depth; the reader itself is held to the bound.)"""
    root = copy_scan(scannet_root, tmp_path / "raw")
    sens = root / "scans" / SID / f"{SID}.sens"
    bomb = zeros_zlib(64 << 20)
    rewrite_sens(sens, depth_of=lambda i, d: bomb if i == 1 else d)
    with SensReader(sens) as r:
        expected = r.header.depth_width * r.header.depth_height * 2
        assert r.read_depth(0).shape == (r.header.depth_height, r.header.depth_width)
        with pytest.raises(SensError, match=f"frame 1: depth has {expected + 1} bytes, expected {expected}"):
            r.read_depth(1)
    # a frame claiming more bytes than its image could ever need is refused when the file is opened
    rewrite_sens(sens, depth_of=lambda i, d: bytes(2 * expected + (2 << 20)) if i == 2 else d)
    with pytest.raises(SensError, match="frame 2: claims"):
        SensReader(sens)


def test_image_headers_above_the_limit_are_refused_before_decoding(tmp_path):
    from vlm3r.scenes.readers import read_image

    big = tmp_path / "frame.png"
    big.write_bytes(png_header_only(12_000, 12_000))  # an ARKitScenes-style frame of 144 M pixels
    with pytest.raises(SceneError, match=r"frame\.png: 12000x12000 colour frame, more than 16,777,216 pixels"):
        read_image(big, "colour frame")
    assert 12_000 * 12_000 > MAX_IMAGE_PIXELS


def test_scannetpp_pose_keys_far_beyond_any_capture_are_refused(tmp_path):
    from vlm3r.scenes.scannetpp import read_pose_intrinsic_imu

    entry = {"aligned_pose": np.eye(4).tolist(), "intrinsic": np.eye(3).tolist(), "timestamp": 0.0}
    path = tmp_path / "pose_intrinsic_imu.json"
    path.write_text(json.dumps({"frame_000000": entry, "frame_1000000000": entry}))
    with pytest.raises(SceneError, match=r"pose_intrinsic_imu\.json: frame_1000000000: frame index 1,000,000,000 is implausible"):
        read_pose_intrinsic_imu(path)


def test_json_files_too_big_or_too_deep_are_refused(tmp_path, monkeypatch):
    import vlm3r.scenes.readers as readers

    deep = tmp_path / "segs.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(SceneError, match=r"segs\.json: invalid JSON \(nested too deeply for a segments file\)"):
        readers.read_json(deep, "segments file")
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as f:  # sparse: 2 GiB claimed, nothing written
        f.truncate(2 << 30)
    link = tmp_path / "link.json"
    link.symlink_to(huge)
    with pytest.raises(SceneError, match=r"link\.json: 2,147,483,648 bytes, more than a segments file can be"):
        readers.read_json(link, "segments file")
