import numpy as np
import pytest

from vlm3r.scenes.sens import SensError, SensFrame, SensHeader, SensReader, encode_depth_zlib, encode_jpeg, write_sens


def make_header(n, w=16, h=12):
    k = np.array([[10.0, 0, 8, 0], [0, 10.0, 6, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    return SensHeader(4, "test", k, np.eye(4), k, np.eye(4), 2, 1, w, h, w, h, 1000.0, n)


def make_frames(n, w=16, h=12, bad=()):
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        pose = np.eye(4)
        pose[:3, 3] = [i, 2 * i, 0.5]
        if i in bad:
            pose[:] = -np.inf
        rgb = np.full((h, w, 3), 10 * i, dtype=np.uint8)
        depth = rng.integers(0, 5000, size=(h, w)).astype(np.uint16)
        out.append((pose, rgb, depth))
    return out


def write(path, frames, w=16, h=12):
    write_sens(path, make_header(len(frames), w, h), (
        SensFrame(p, encode_jpeg(rgb), encode_depth_zlib(d), i * 33333, i * 33333) for i, (p, rgb, d) in enumerate(frames)
    ))


def test_round_trip(tmp_path):
    frames = make_frames(5, bad={2})
    write(tmp_path / "a.sens", frames)
    with SensReader(tmp_path / "a.sens") as r:
        assert r.num_frames == 5 and r.header.depth_width == 16
        assert r.valid_mask().tolist() == [True, True, False, True, True]
        np.testing.assert_array_equal(r.poses[3][:3, 3], [3, 6, 0.5])
        np.testing.assert_array_equal(r.read_depth(4), frames[4][2])
        assert abs(int(r.read_color(1).mean()) - 10) <= 1
        assert r.color_timestamps[2] == 66666


def test_truncated_file_names_file_and_frame(tmp_path):
    write(tmp_path / "a.sens", make_frames(4))
    data = (tmp_path / "a.sens").read_bytes()
    (tmp_path / "t.sens").write_bytes(data[: len(data) - 50])
    with pytest.raises(SensError, match=r"t\.sens: truncated .*frame 3 of 4"):
        SensReader(tmp_path / "t.sens")
    (tmp_path / "e.sens").write_bytes(b"")
    with pytest.raises(SensError, match="e.sens: empty"):
        SensReader(tmp_path / "e.sens")
    (tmp_path / "v.sens").write_bytes(b"\x03\x00\x00\x00" + data[4:])
    with pytest.raises(SensError, match="version 3"):
        SensReader(tmp_path / "v.sens")


def test_corrupt_depth_is_reported(tmp_path):
    frames = make_frames(2)
    write_sens(tmp_path / "c.sens", make_header(2), (
        SensFrame(p, encode_jpeg(rgb), b"not zlib", 0, 0) for p, rgb, _ in frames
    ))
    with SensReader(tmp_path / "c.sens") as r:
        with pytest.raises(SensError, match="frame 1: corrupt zlib"):
            r.read_depth(1)
