import hashlib

import numpy as np

from vlm3r.scenes.video import write_mp4


def test_mp4_is_byte_identical_and_decodes_close_to_input(tmp_path):
    import av

    rng = np.random.default_rng(0)
    base = np.zeros((48, 64, 3), np.uint8)
    base[:, :32] = [200, 40, 40]
    base[:, 32:] = [30, 160, 90]
    frames = [np.clip(base.astype(int) + rng.integers(-5, 5, base.shape), 0, 255).astype(np.uint8) for _ in range(5)]
    digests = set()
    for k in range(3):
        write_mp4(frames, tmp_path / f"{k}.mp4")
        digests.add(hashlib.sha256((tmp_path / f"{k}.mp4").read_bytes()).hexdigest())
    assert len(digests) == 1
    with av.open(str(tmp_path / "0.mp4")) as c:
        decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(decoded) == 5
    assert np.abs(decoded[0][:, 4:28].astype(int) - [200, 40, 40]).mean() < 12


def test_mp4_is_h264_yuv420p_with_the_index_first(tmp_path):
    """What browsers play: H.264 in yuv420p, the moov atom before the media data (faststart)."""
    import av

    frames = [np.full((30, 41, 3), 20 * k, np.uint8) for k in range(4)]  # odd width: cropped to 40
    path = tmp_path / "v.mp4"
    write_mp4(frames, path)
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.format.name) == ("h264", "yuv420p")
        assert (stream.codec_context.width, stream.codec_context.height) == (40, 30)
        assert len([f for f in c.decode(video=0)]) == 4
    data = path.read_bytes()
    assert 0 < data.index(b"moov") < data.index(b"mdat")


def test_mp4_bytes_are_the_same_in_another_process(tmp_path):
    import subprocess
    import sys

    code = ("import numpy as np, sys\nfrom vlm3r.scenes.video import write_mp4\n"
            "write_mp4([np.full((32, 48, 3), 30 * k, np.uint8) for k in range(6)], sys.argv[1])\n")
    for name in ("a.mp4", "b.mp4"):
        subprocess.run([sys.executable, "-c", code, str(tmp_path / name)], check=True, timeout=60)
    write_mp4([np.full((32, 48, 3), 30 * k, np.uint8) for k in range(6)], tmp_path / "c.mp4")
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes() == (tmp_path / "c.mp4").read_bytes()



def test_frames_too_small_to_encode_are_named(tmp_path):
    import pytest

    with pytest.raises(ValueError, match=r"tiny\.mp4: frames of 1x1 pixels are too small"):
        write_mp4([np.zeros((1, 1, 3), np.uint8)] * 3, tmp_path / "tiny.mp4")
