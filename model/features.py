"""``vlm3r-data features``: precompute the CUT3R token cache for every video of a build.

CUT3R is frozen, so its tokens for a video's frames never change; computing them once here lets
training and prediction skip the recurrent 3D pass (:class:`vlm3r.model.feature_cache.SpatialFeatureCache`).
The frames are chosen and preprocessed exactly as training reads them
(:class:`vlm3r.model.data.VideoEncoder`: ``num_frames`` linspace frames from the frames folder or the
mp4), and entries are keyed by (video, frame ids, checkpoint tag), so a training run with the same
checkpoint and frame count finds them. Resumable: videos already in the cache are skipped; every
entry is written atomically.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

log = logging.getLogger("vlm3r.features")


@dataclass
class FeatureSummary:
    """What a precomputation did (videos = scene folders / mp4s found in the build)."""

    cache_dir: str
    tag: str
    videos: int = 0
    computed: int = 0
    cached: int = 0
    failed: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def line(self) -> str:
        failed = sum(self.failed.values())
        return (
            f"{self.videos} videos: {self.computed} encoded, {self.cached} already cached, {failed} unreadable; "
            f"{self.seconds:.1f} s -> {self.cache_dir} (tag {self.tag})"
        )


def build_videos(root: Path) -> list:
    """Every video of a build output: the scene folders ``scenes/<source>/<scene>`` holding
    ``frame_metadata.json`` or ``video.mp4``, sorted (:class:`vlm3r.model.data.VideoSource`)."""
    from .data import VideoSource

    scenes = Path(root) / "scenes"
    if not scenes.is_dir():
        raise FileNotFoundError(f"{scenes}: no scenes (is {root} the output folder of `vlm3r-data build`?)")
    out = []
    for d in sorted(p for p in scenes.glob("*/*") if p.is_dir() and not p.name.startswith(".")):
        has_frames = (d / "frame_metadata.json").is_file()
        mp4 = d / "video.mp4"
        if has_frames or mp4.is_file():
            out.append(VideoSource(d if has_frames else None, mp4 if mp4.is_file() else None))
    return out


def precompute_features(
    data: Path,
    spatial_checkpoint: Path | None,
    *,
    cache_dir: Path | None = None,
    preset: str = "paper",
    num_frames: int | None = None,
    device: str | None = None,
    dtype: str | None = None,
    seed: int = 0,
    on_video: Callable[[int, int], None] = lambda done, total: None,
) -> FeatureSummary:
    """Encode every video of the build ``data`` with CUT3R and store the tokens (float16) in
    ``cache_dir`` (default ``data/features``). ``spatial_checkpoint=None`` uses seeded random
    weights (``seed`` as in training). ``on_video(done, total)`` reports progress."""
    from .config import get_config
    from .data import SampleError, VideoEncoder, cut3r_input, spatial_cache_tag
    from .feature_cache import SpatialFeatureCache
    from .vlm import build_cut3r_encoder

    t0 = time.perf_counter()
    cfg = get_config(preset)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    from .vlm import cut3r_dtype

    dt = cut3r_dtype(cfg, dev) if dtype is None else getattr(torch, dtype, None)
    if not isinstance(dt, torch.dtype):
        raise ValueError(f"unknown dtype {dtype!r} (float32, bfloat16 or float16)")
    if spatial_checkpoint is not None and not Path(spatial_checkpoint).is_file():
        raise FileNotFoundError(f"{spatial_checkpoint}: no such CUT3R checkpoint")
    videos = build_videos(Path(data))
    root = Path(cache_dir) if cache_dir is not None else Path(data) / "features"
    tag = spatial_cache_tag(cfg, spatial_checkpoint, seed)
    cache = SpatialFeatureCache(root, tag)
    reader = VideoEncoder(cfg, num_frames)
    summary = FeatureSummary(str(root), tag, videos=len(videos))
    failed: Counter = Counter()
    encoder = None
    for k, src in enumerate(videos):
        try:
            loaded = reader.frames(src)
        except SampleError as e:
            failed[e.kind] += 1
            log.warning("skipping %s: %s", src.key, e)
            on_video(k + 1, len(videos))
            continue
        if cache.path(src.key, loaded.frame_ids).is_file():
            summary.cached += 1
        else:
            if encoder is None:  # only load CUT3R when there is work
                encoder = build_cut3r_encoder(cfg, spatial_checkpoint, dtype=dt, seed=seed + 1).to(dev)
            frames = cut3r_input(loaded.frames, cfg.cut3r.img_size, cfg.vision.image_size)[None].to(dev, dt)
            cache.put(src.key, loaded.frame_ids, encoder(frames)[0])
            summary.computed += 1
        on_video(k + 1, len(videos))
    summary.failed = dict(failed)
    summary.seconds = time.perf_counter() - t0
    return summary
