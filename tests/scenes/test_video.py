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
