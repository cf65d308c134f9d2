"""CUT3R token cache: fp16 round trip, keys, corruption, compute-once."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from vlm3r.model.feature_cache import SpatialFeatureCache  # noqa: E402


def test_roundtrip_and_keys(tmp_path):
    cache = SpatialFeatureCache(tmp_path / "c", tag="cut3r-432")
    tokens = torch.randn(3, 5, 8)
    assert cache.get("scans/v1.mp4", [0, 4, 8]) is None
    cache.put("scans/v1.mp4", [0, 4, 8], tokens)
    got = cache.get("scans/v1.mp4", [0, 4, 8])
    assert got.dtype == torch.float16 and torch.equal(got, tokens.half())
    assert cache.get("scans/v1.mp4", [0, 4, 9]) is None  # other frames
    assert cache.get("scans/v2.mp4", [0, 4, 8]) is None  # other video
    assert SpatialFeatureCache(tmp_path / "c", tag="other").get("scans/v1.mp4", [0, 4, 8]) is None
    assert not list((tmp_path / "c").rglob("*.tmp"))
    with pytest.raises(ValueError, match="do not match 2 frames"):
        cache.put("scans/v1.mp4", [0, 1], tokens)


def test_corrupt_entry_names_the_file(tmp_path):
    cache = SpatialFeatureCache(tmp_path)
    path = cache.path("v.mp4", [1, 2])
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match=f"{path.name}: unreadable"):
        cache.get("v.mp4", [1, 2])


def test_get_or_compute_computes_once(tmp_path):
    cache = SpatialFeatureCache(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return torch.ones(2, 3, 4)

    a = cache.get_or_compute("v.mp4", [0, 1], compute)
    b = cache.get_or_compute("v.mp4", [0, 1], compute)
    assert len(calls) == 1 and torch.equal(a, b) and a.dtype == torch.float16
