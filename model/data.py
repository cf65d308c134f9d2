"""Training data for VLM-3R from the LLaVA-format shards a build writes (``OUT/train/<task>/<source>-<k>.jsonl``).

One sample = one conversation line ``{"id", "video", "dataset", "scene_name", "question_type",
"conversations": [{"from": "human", "value": "<image>\\n..."}, {"from": "gpt", "value": ...}, ...]}``
(see :func:`vlm3r.schemas.conversation.conversation`) turned into model inputs:

* frames: ``num_frames`` frames chosen by ``linspace(0, n - 1, num_frames)`` (floored, as LLaVA-Video
  does; frames repeat when a video has fewer than ``num_frames``) over the sampled frames of the
  scene, read from ``OUT/scenes/<source>/<scene>/frames/`` as listed by ``frame_metadata.json``
  (preferred) or decoded from the scene's mp4 with PyAV;
* ``pixel_values_videos`` (T, 3, S, S): SigLIP input (bicubic resize to S = the vision tower's
  image size, ``(x - 0.5) / 0.5``) via :func:`vlm3r.model.vlm.siglip_pixels`;
* ``spatial_tokens`` (T, 1 + P, D) float16 from the CUT3R feature cache when an entry exists, else
  ``cut3r_frames`` (T, 3, C, C) RGB in [0, 1]: the SigLIP input upsampled bilinearly to CUT3R's
  input size C, as VLM-3R feeds CUT3R (:func:`cut3r_from_siglip`);
* ``input_ids`` / ``labels`` (L,): the tokenizer's (Qwen2) chat template, the LLaVA ``<image>``
  placeholder replaced by ``T * tokens_per_frame`` ``<video>`` tokens, labels = -100 everywhere
  except the assistant turns (their text and the closing ``<|im_end|>``).

A sample whose video is missing or unreadable, or whose frames are missing, is skipped with a
counted warning (``ShardDataset.skipped``) and the next readable sample is served in its place, so
a training run never stops on bad data.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vlm3r.schemas.io import MAX_IMAGE_PIXELS, read_jsonl, train_shard_files

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from transformers import PreTrainedTokenizerBase

    from .config import ModelConfig
    from .feature_cache import SpatialFeatureCache

log = logging.getLogger("vlm3r.train")

IGNORE_INDEX = -100
LLAVA_IMAGE = "<image>"
ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


class SampleError(Exception):
    """A sample that cannot be turned into model inputs (one line naming the file and the problem)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


# --------------------------------------------------------------------------------------------------
# Shards
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainSample:
    """One training conversation and where its video lives.

    ``root`` is the build output the shard came from (for a mix of builds, ``pipelines.mix``, the
    build the line names in its ``build`` field, relative to the mix folder); ``source`` the adapter name that keys its
    paths (the shard's file name ``<source>-<k>.jsonl``); ``video`` the path relative to ``root``
    (or ``None``); ``turns`` the (role, text) pairs with roles ``user`` / ``assistant`` / ``system``.
    """

    id: str
    root: Path
    source: str
    task: str
    video: str | None
    dataset: str
    scene_name: str
    turns: tuple[tuple[str, str], ...]


def _sample_from_line(row: Any, root: Path, source: str, task: str, where: str) -> TrainSample:
    if not isinstance(row, dict) or not isinstance(row.get("conversations"), list) or not row["conversations"]:
        raise ValueError(f"{where}: not a LLaVA conversation (needs a non-empty 'conversations' list)")
    turns = []
    for turn in row["conversations"]:
        if not isinstance(turn, dict) or "from" not in turn or "value" not in turn:
            raise ValueError(f"{where}: a conversation turn needs 'from' and 'value'")
        role = ROLES.get(str(turn["from"]))
        if role is None:
            raise ValueError(f"{where}: unknown speaker {turn['from']!r} (expected human/gpt)")
        turns.append((role, str(turn["value"])))
    if not any(r == "assistant" for r, _ in turns):
        raise ValueError(f"{where}: conversation without an assistant ('gpt') turn")
    first = next(r for r, _ in turns if r != "system")
    if first != "user":
        raise ValueError(f"{where}: the conversation must start with a human turn")
    if row.get("video") is not None and not isinstance(row["video"], str):
        raise ValueError(f"{where}: 'video' must be a path (text) or null, got {type(row['video']).__name__}")
    build = row.get("build")
    if build is not None and not isinstance(build, str):
        raise ValueError(f"{where}: 'build' must be a path relative to the shard's folder")
    return TrainSample(
        id=str(row.get("id", where)),
        root=Path(os.path.normpath(root / build)) if build else root,
        source=source,
        task=str(row.get("question_type") or task),
        video=row.get("video") or None,
        dataset=str(row.get("dataset") or source),
        scene_name=str(row.get("scene_name") or ""),
        turns=tuple(turns),
    )


def read_samples(roots: Sequence[Path], tasks: Sequence[str] | None = None) -> list[TrainSample]:
    """Every conversation of the training shards of the build outputs ``roots`` (only ``tasks`` when given)."""
    samples: list[TrainSample] = []
    for root in roots:
        root = Path(root)
        for task, source, path in train_shard_files(root, tasks):
            for row, where in read_jsonl(path):
                samples.append(_sample_from_line(row, root, source, task, where))
    if not samples:
        raise ValueError(f"no training conversations in {', '.join(str(r) for r in roots)}")
    return samples


def mix_samples(samples: Sequence[TrainSample], weights: Mapping[str, float], seed: int = 0) -> list[TrainSample]:
    """Apply per-source sampling weights: a source (adapter name, e.g. ``scannet``) of weight w keeps
    ``round(w * n)`` of its n samples per epoch: every sample ``floor(w)`` times, plus a seeded random
    subset for the fraction. Sources without a weight keep weight 1; order is kept otherwise."""
    known = {s.source for s in samples}
    unknown = sorted(set(weights) - known)
    if unknown:
        raise ValueError(
            f"sampling weights for unknown source(s) {', '.join(unknown)}; sources: {', '.join(sorted(known))}"
        )
    for name, w in weights.items():
        if not (w >= 0 and math.isfinite(w)):
            raise ValueError(f"sampling weight of {name} must be a finite number >= 0, got {w}")
    rng = np.random.default_rng(seed)
    out: list[TrainSample] = []
    for source in sorted(known):
        group = [s for s in samples if s.source == source]
        w = float(weights.get(source, 1.0))
        whole, frac = int(math.floor(w)), w - math.floor(w)
        out += group * whole
        extra = int(round(frac * len(group)))
        if extra:
            pick = np.sort(rng.choice(len(group), size=extra, replace=False))
            out += [group[i] for i in pick]
    if not out:
        raise ValueError("the sampling weights leave no training samples")
    return out


# --------------------------------------------------------------------------------------------------
# Frames
# --------------------------------------------------------------------------------------------------


def linspace_positions(n_available: int, num_frames: int) -> np.ndarray:
    """(num_frames,) int positions ``floor(linspace(0, n - 1, num_frames))`` into n available frames."""
    if n_available < 1:
        raise ValueError("no frames to sample from")
    return np.linspace(0, n_available - 1, num_frames, dtype=np.int64)


@dataclass(frozen=True)
class VideoSource:
    """Where one video's frames come from: the scene folder of a build (``frame_metadata.json`` +
    ``frames/``) and/or an mp4. ``key`` identifies the video in the feature cache."""

    scene_dir: Path | None
    mp4: Path | None

    @property
    def key(self) -> Path:
        if self.scene_dir is not None:
            return self.scene_dir / "video.mp4"
        assert self.mp4 is not None
        return self.mp4


def locate_video(root: Path, video: str | None, source: str, dataset: str, scene_name: str) -> VideoSource | None:
    """Find a sample's frames under a build output ``root``: the folder holding ``video`` (the
    build layout ``scenes/<source>/<scene>/video.mp4``), else ``scenes/<source or dataset>/<scene>``,
    else an mp4 at ``video`` or ``<dataset>/<scene>.mp4`` (the VSI-Bench layout). ``None`` when
    nothing exists."""
    root = Path(root)
    candidates: list[Path] = []
    if video:
        candidates.append((root / video).parent)
    if scene_name:
        candidates += [root / "scenes" / source / scene_name, root / "scenes" / dataset / scene_name]
    scene_dir = next((d for d in candidates if (d / "frame_metadata.json").is_file()), None)
    mp4s = [root / video] if video else []
    if scene_dir is not None:
        mp4s.insert(0, scene_dir / "video.mp4")
    if scene_name:
        mp4s.append(root / dataset / f"{scene_name}.mp4")
    mp4 = next((p for p in mp4s if p.suffix == ".mp4" and p.is_file()), None)
    if scene_dir is None and mp4 is None:
        return None
    return VideoSource(scene_dir, mp4)


def read_mp4(path: Path) -> tuple[list[np.ndarray], float | None]:
    """Every frame of an mp4 as (H, W, 3) uint8 RGB (PyAV), and the stream's average frame rate
    (None when the file gives none)."""
    try:
        import av
    except ImportError as e:  # pragma: no cover - av is a core dependency
        raise ImportError("reading videos needs PyAV: pip install av") from e
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if stream.codec_context.width * stream.codec_context.height > MAX_IMAGE_PIXELS:
                raise SampleError("frame too large", f"{path}: {stream.codec_context.width}x{stream.codec_context.height} "
                                  f"video, more than {MAX_IMAGE_PIXELS:,} pixels a frame")
            rate = float(stream.average_rate) if stream.average_rate else None
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    except SampleError:
        raise
    except Exception as e:  # PyAV raises many types (InvalidDataError, OSError, ...)
        raise SampleError("unreadable video", f"{path}: unreadable video ({type(e).__name__}: {e})") from None
    if not frames:
        raise SampleError("unreadable video", f"{path}: no frames decoded")
    return frames, rate


@dataclass(frozen=True)
class LoadedFrames:
    """``frames`` (T, H, W, 3) uint8 RGB; ``frame_ids`` the T ids (stream frame ids from the frame
    metadata, or mp4 positions) that key the feature cache together with ``source.key``."""

    frames: np.ndarray
    frame_ids: tuple[int, ...]
    source: VideoSource
    video_s: float | None = None  # the whole video's length (seconds)
    times_s: tuple[float, ...] | None = None  # the T frames' times in it (seconds)

    def time_instruction(self) -> str | None:
        """VLM-3R's time instruction for these frames (None when the times are unknown)."""
        from vlm3r.schemas.conversation import time_instruction

        if self.video_s is None or self.times_s is None:
            return None
        return time_instruction(self.video_s, self.times_s)


MAX_FRAME_METADATA_BYTES = 64 * 2**20
"""A frame_metadata.json above this size is refused (a real one of 32 frames is tens of kB)."""


class FrameReader:
    """Reads ``num_frames`` linspace frames of a video (frames folder first, mp4 second).

    Keeps the frame list of each scene folder it has seen (per instance; small)."""

    def __init__(self, num_frames: int) -> None:
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        self.num_frames = num_frames
        self._lists: dict[Path, list[tuple[int, Path]]] = {}
        self._times: dict[Path, tuple[float | None, list[float] | None]] = {}

    def frame_list(self, scene_dir: Path) -> list[tuple[int, Path]]:
        """(frame_id, image path) of the sampled frames listed in ``scene_dir/frame_metadata.json``."""
        if scene_dir not in self._lists:
            meta = scene_dir / "frame_metadata.json"
            try:
                if meta.stat().st_size > MAX_FRAME_METADATA_BYTES:
                    raise ValueError(f"larger than {MAX_FRAME_METADATA_BYTES:,} bytes")
                data = json.loads(meta.read_text(encoding="utf-8"))
                frames = data["frames"]
                ids = [int(f["frame_id"]) for f in frames]
            except (OSError, ValueError, KeyError, TypeError, RecursionError) as e:
                what = "nested too deeply" if isinstance(e, RecursionError) else str(e)[:200]
                raise SampleError("bad frame metadata", f"{meta}: unreadable frame metadata ({what})") from None
            self._lists[scene_dir] = [(fid, scene_dir / "frames" / f"{fid:06d}.jpg") for fid in ids]
            try:  # the stream's length and the frames' timestamps, for the time instruction
                fps, n = float(data["fps"]), int(data["num_stream_frames"])
                self._times[scene_dir] = (n / fps if fps > 0 else None, [float(f["timestamp_s"]) for f in frames])
            except (KeyError, TypeError, ValueError):
                self._times[scene_dir] = (None, None)
        return self._lists[scene_dir]

    def _folder_times(self, scene_dir: Path, pos: np.ndarray) -> tuple[float | None, tuple[float, ...] | None]:
        video_s, stamps = self._times.get(scene_dir, (None, None))
        if video_s is None or stamps is None:
            return None, None
        first = stamps[0] if stamps else 0.0
        return video_s, tuple(stamps[int(p)] - first for p in pos)

    def read(self, source: VideoSource) -> LoadedFrames:
        """The linspace frames; the mp4 is the fallback when the frames folder is incomplete. Raises
        :class:`SampleError` when neither can be read."""
        problem: SampleError | None = None
        if source.scene_dir is not None:
            try:
                return self._read_folder(source)
            except SampleError as e:
                problem = e
        if source.mp4 is None:
            assert problem is not None
            raise problem
        if problem is not None:
            log.warning("%s; reading %s instead", problem, source.mp4)
        frames, rate = read_mp4(source.mp4)
        pos = linspace_positions(len(frames), self.num_frames)
        ids = tuple(int(p) for p in pos)
        # decord's view of a video's times, as VLM-3R reads it
        video_s, times = (len(frames) / rate, tuple(int(p) / rate for p in pos)) if rate else (None, None)
        if source.scene_dir is not None:
            # A build's mp4 holds exactly the listed frames, in order: keep the frames folder's cache key.
            try:
                listed = self.frame_list(source.scene_dir)
            except SampleError:
                listed = []
            if len(listed) == len(frames):
                ids = tuple(listed[int(p)][0] for p in pos)
                video_s, times = self._folder_times(source.scene_dir, pos)
        return LoadedFrames(_stack([frames[int(p)] for p in pos], source), ids, source, video_s, times)

    def _read_folder(self, source: VideoSource) -> LoadedFrames:
        from PIL import Image

        assert source.scene_dir is not None
        listed = self.frame_list(source.scene_dir)
        if not listed:
            raise SampleError("missing frames", f"{source.scene_dir / 'frame_metadata.json'}: no frames listed")
        pos = linspace_positions(len(listed), self.num_frames)
        images = []
        for p in pos:
            path = listed[int(p)][1]
            if path.exists() and not path.is_file():  # a FIFO or a folder would block or fail the read
                raise SampleError("missing frames", f"{path}: not a regular file")
            try:
                with Image.open(path) as im:
                    w, h = im.size  # from the header: refuse before decoding
                    if w * h > MAX_IMAGE_PIXELS:
                        raise SampleError("frame too large", f"{path}: {w}x{h} frame, more than {MAX_IMAGE_PIXELS:,} pixels")
                    images.append(np.asarray(im.convert("RGB")))
            except (OSError, ValueError, Image.DecompressionBombError) as e:
                raise SampleError(
                    "missing frames", f"{path}: missing or unreadable frame ({type(e).__name__})"
                ) from None
        video_s, times = self._folder_times(source.scene_dir, pos)
        return LoadedFrames(_stack(images, source), tuple(listed[int(p)][0] for p in pos), source, video_s, times)


def _stack(images: list[np.ndarray], source: VideoSource) -> np.ndarray:
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise SampleError("missing frames", f"{source.key}: frames of different sizes {sorted(shapes)}")
    return np.stack(images)


def siglip_input(frames: np.ndarray, size: int) -> "torch.Tensor":
    """(T, H, W, 3) uint8 -> SigLIP input (T, 3, size, size) float32 (see :func:`vlm3r.model.vlm.siglip_pixels`)."""
    import torch

    from .vlm import siglip_pixels

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255.0)
    return siglip_pixels(x[None], size)[0]


def cut3r_input(frames: np.ndarray, size: int, siglip_size: int) -> "torch.Tensor":
    """(T, H, W, 3) uint8 -> CUT3R frames (T, 3, size, size) RGB in [0, 1], made as VLM-3R makes
    them: from the SigLIP input (``siglip_input``, LLaVA's image processor), see ``cut3r_from_siglip``."""
    return cut3r_from_siglip(siglip_input(frames, siglip_size), size)


def cut3r_from_siglip(pixels: "torch.Tensor", size: int) -> "torch.Tensor":
    """SigLIP input (T, 3, S, S) in [-1, 1] -> CUT3R frames (T, 3, size, size) in [0, 1]: upsampled
    bilinearly to ``size`` as VLM-3R's ``cut3r_spatial_encoder.prepare_input`` does
    (``interpolate(pixel_values, size=(432, 432), mode="bilinear")``, no antialiasing), then mapped
    to [0, 1] (``Cut3rEncoder`` maps it back to [-1, 1]). VLM-3R's released weights were trained
    on these inputs."""
    import torch.nn.functional as F

    x = pixels
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x * 0.5 + 0.5


def spatial_cache_tag(cfg: "ModelConfig", checkpoint: Path | None, seed: int = 0) -> str:
    """Feature-cache tag of a CUT3R encoder: checkpoint file name and size (or the random-weights
    seed) and the input size, so another checkpoint or size misses the cache."""
    if checkpoint is not None:
        p = Path(checkpoint)
        ident = f"{p.name}:{p.stat().st_size if p.is_file() else 0}"
    else:
        ident = f"random-seed{seed + 1}"  # build_vlm3r seeds CUT3R with seed + 1
    return f"cut3r/{ident}/{cfg.cut3r.img_size}px-from-siglip{cfg.vision.image_size}"  # see cut3r_input


# --------------------------------------------------------------------------------------------------
# Conversations -> token ids
# --------------------------------------------------------------------------------------------------


def with_time_instruction_turns(turns: Sequence[tuple[str, str]], instruction: str) -> tuple[tuple[str, str], ...]:
    """``turns`` with VLM-3R's time instruction put into the first user turn
    (:func:`vlm3r.schemas.conversation.with_time_instruction`)."""
    from vlm3r.schemas.conversation import with_time_instruction

    out, done = [], False
    for role, text in turns:
        if role == "user" and not done:
            text, done = with_time_instruction(text, instruction), True
        out.append((role, text))
    return tuple(out)


class ConversationEncoder:
    """Token ids and labels of a conversation under the tokenizer's chat template.

    The first user turn's LLaVA ``<image>`` placeholder (or, without one, the turn's start) becomes
    one ``<video>`` line, expanded to ``num_video_tokens`` ``<video>`` ids after tokenisation.
    Labels are the ids on the assistant turns (text + end-of-turn token), -100 elsewhere.
    """

    def __init__(
        self, tokenizer: "PreTrainedTokenizerBase", num_video_tokens: int, video_token: str = "<video>"
    ) -> None:
        if not getattr(tokenizer, "chat_template", None):
            raise ValueError("the tokenizer has no chat template (use vlm3r.model.tokenizer.load_qwen2_tokenizer)")
        self.tokenizer = tokenizer
        self.num_video_tokens = num_video_tokens
        self.video_token = video_token
        vid = tokenizer.convert_tokens_to_ids(video_token)
        if vid is None or vid == tokenizer.unk_token_id:
            raise ValueError(f"the tokenizer has no {video_token} token")
        self.video_token_id = int(vid)
        self.end_of_turn = tokenizer.eos_token or "<|im_end|>"

    def _messages(self, turns: Sequence[tuple[str, str]]) -> list[dict[str, str]]:
        msgs, placed = [], False
        for role, text in turns:
            if role == "user" and not placed:
                body = text.replace(LLAVA_IMAGE, "", 1).lstrip("\n") if LLAVA_IMAGE in text else text
                text, placed = f"{self.video_token}\n{body}", True
            elif LLAVA_IMAGE in text:
                text = text.replace(LLAVA_IMAGE, "")  # one video per sample
            msgs.append({"role": role, "content": text})
        return msgs

    def _render(self, msgs: list[dict[str, str]], generation_prompt: bool) -> str:
        return self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=generation_prompt)

    def _ids(self, text: str) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        out: list[int] = []
        for i in ids:
            out.extend([i] * self.num_video_tokens if i == self.video_token_id else [i])
        return out

    def encode(self, turns: Sequence[tuple[str, str]]) -> tuple[list[int], list[int]]:
        """(input_ids, labels) of a whole conversation."""
        msgs = self._messages(turns)
        pieces: list[tuple[str, bool]] = []  # (text, labelled)
        done = ""
        for k, m in enumerate(msgs):
            if m["role"] != "assistant":
                continue
            before = self._render(msgs[:k], True)
            through = self._render(msgs[: k + 1], False)
            if not before.startswith(done) or not through.startswith(before):
                raise ValueError("the chat template does not render conversations incrementally")
            pieces.append((before[len(done) :], False))
            reply = through[len(before) :]
            cut = reply.rfind(self.end_of_turn)
            cut = len(reply) if cut < 0 else cut + len(self.end_of_turn)
            pieces += [(reply[:cut], True), (reply[cut:], False)]
            done = through
        full = self._render(msgs, False)
        pieces.append((full[len(done) :], False))
        ids: list[int] = []
        labels: list[int] = []
        for text, labelled in pieces:
            if not text:
                continue
            piece = self._ids(text)
            ids += piece
            labels += piece if labelled else [IGNORE_INDEX] * len(piece)
        n_video = sum(1 for i in ids if i == self.video_token_id)
        if n_video != self.num_video_tokens:
            raise ValueError(f"expected {self.num_video_tokens} <video> tokens, got {n_video}")
        return ids, labels

    def prompt(self, user_text: str) -> list[int]:
        """Ids of a one-question prompt ending with the assistant header (for generation)."""
        return self._ids(self._render(self._messages([("user", user_text)]), True))


# --------------------------------------------------------------------------------------------------
# Dataset and collator
# --------------------------------------------------------------------------------------------------


@dataclass
class VideoInputs:
    """Per-video model inputs: SigLIP pixels (T, 3, S, S) and either cached CUT3R tokens (T, 1 + P, D)
    or CUT3R frames (T, 3, C, C) in [0, 1]."""

    pixel_values_videos: "torch.Tensor"
    spatial_tokens: "torch.Tensor | None" = None
    cut3r_frames: "torch.Tensor | None" = None
    time_instruction: str | None = None  # VLM-3R's, when the model config asks for it and times are known


class VideoEncoder:
    """Frames of a video -> :class:`VideoInputs` for one model configuration (shared by training,
    prediction and feature precomputation, so that all three see identical frames)."""

    def __init__(
        self, cfg: "ModelConfig", num_frames: int | None = None, cache: "SpatialFeatureCache | None" = None
    ) -> None:
        self.cfg = cfg
        self.num_frames = num_frames or cfg.num_frames
        self.reader = FrameReader(self.num_frames)
        self.cache = cache

    def frames(self, source: VideoSource) -> LoadedFrames:
        return self.reader.read(source)

    def inputs(self, source: VideoSource, require_cache: bool = False) -> VideoInputs:
        loaded = self.frames(source)
        tokens = None
        if self.cache is not None:
            try:
                tokens = self.cache.get(source.key, loaded.frame_ids)
            except ValueError as e:
                raise SampleError("bad cache entry", str(e)) from None
        if tokens is None and require_cache:
            raise SampleError("not in feature cache", f"{source.key}: no cached CUT3R tokens for these frames")
        pixels = siglip_input(loaded.frames, self.cfg.vision.image_size)
        instruction = loaded.time_instruction() if self.cfg.time_instruction else None
        if tokens is not None:
            return VideoInputs(pixels, spatial_tokens=tokens, time_instruction=instruction)
        return VideoInputs(pixels, cut3r_frames=cut3r_from_siglip(pixels, self.cfg.cut3r.img_size), time_instruction=instruction)


@dataclass
class SkipLog:
    """Counts of skipped samples by reason (unique samples; counted in the process that met them)."""

    counts: Counter = field(default_factory=Counter)
    bad: set = field(default_factory=set)

    def add(self, index: int, sample_id: str, err: SampleError) -> None:
        if index in self.bad:
            return
        self.bad.add(index)
        self.counts[err.kind] += 1
        log.warning("skipping sample %s: %s (%d skipped so far)", sample_id, err, len(self.bad))


class ShardDataset:
    """A map-style torch dataset over training conversations (see the module docstring).

    ``__getitem__`` returns ``{"input_ids", "labels", "pixel_values_videos"}`` plus
    ``"spatial_tokens"`` or ``"cut3r_frames"``. A sample that cannot be read is skipped (counted in
    ``skipped``) and the next readable one is returned instead; samples without any video on disk are
    dropped up front (counted the same way).
    """

    def __init__(
        self,
        samples: Sequence[TrainSample],
        tokenizer: "PreTrainedTokenizerBase",
        cfg: "ModelConfig",
        num_frames: int | None = None,
        cache: "SpatialFeatureCache | None" = None,
        require_cache: bool = False,
        max_length: int | None = None,
    ) -> None:
        self.video = VideoEncoder(cfg, num_frames, cache)
        self.encoder = ConversationEncoder(tokenizer, self.video.num_frames * cfg.tokens_per_frame)
        self.require_cache = require_cache
        self.max_length = max_length if max_length is not None else cfg.text.max_position_embeddings  # the LM's limit
        self.skips = SkipLog()
        located: dict[tuple, VideoSource | None] = {}
        kept: list[tuple[TrainSample, VideoSource]] = []
        for i, s in enumerate(samples):
            key = (s.root, s.video, s.source, s.dataset, s.scene_name)
            if key not in located:
                located[key] = locate_video(s.root, s.video, s.source, s.dataset, s.scene_name)
            src = located[key]
            if src is None:
                where = s.root / s.video if s.video else s.root / "scenes" / s.source / s.scene_name
                self.skips.add(-1 - i, s.id, SampleError("no video", f"{where}: no frames or video on disk"))
            else:
                kept.append((s, src))
        if not kept:
            raise ValueError(f"none of the {len(samples)} training samples has frames or a video on disk")
        self.items = kept

    @property
    def skipped(self) -> dict[str, int]:
        """Skipped samples by reason."""
        return dict(self.skips.counts)

    def __len__(self) -> int:
        return len(self.items)

    def load(self, index: int) -> dict[str, Any]:
        """Model inputs of sample ``index``; raises :class:`SampleError`."""
        import torch

        sample, source = self.items[index]
        video = self.video.inputs(source, self.require_cache)
        turns = sample.turns
        if video.time_instruction is not None:
            turns = with_time_instruction_turns(turns, video.time_instruction)
        ids, labels = self.encoder.encode(turns)
        if self.max_length is not None and len(ids) > self.max_length:
            ids, labels = ids[: self.max_length], labels[: self.max_length]
            if sum(1 for i in ids if i == self.encoder.video_token_id) != self.encoder.num_video_tokens or all(
                lab == IGNORE_INDEX for lab in labels
            ):
                raise SampleError("too long", f"{sample.id}: longer than max_length {self.max_length} tokens")
        item: dict[str, Any] = {
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
            "pixel_values_videos": video.pixel_values_videos,
        }
        if video.spatial_tokens is not None:
            item["spatial_tokens"] = video.spatial_tokens
        else:
            item["cut3r_frames"] = video.cut3r_frames
        return item

    def __getitem__(self, index: int) -> dict[str, Any]:
        n = len(self.items)
        for k in range(n):
            j = (index + k) % n
            if j in self.skips.bad:
                continue
            try:
                return self.load(j)
            except SampleError as e:
                self.skips.add(j, self.items[j][0].id, e)
        raise RuntimeError(f"none of the {n} training samples could be read (see the warnings above)")


@dataclass
class VideoCollator:
    """Pads token sequences (``pad_token_id``; labels with -100; ``attention_mask``) on
    ``padding_side`` and stacks the video inputs.

    Spatial inputs: ``spatial_tokens`` (B, T, 1 + P, D) when every sample has cached tokens,
    ``cut3r_frames`` (B, T, 3, C, C) when none has; a mixed batch gives both, ``spatial_tokens`` with
    zeros for the uncached rows, ``cut3r_frames`` for those rows only and ``cut3r_rows`` (M,) their
    indices; :func:`resolve_spatial` fills them in with the model's CUT3R.
    """

    pad_token_id: int
    padding_side: str = "right"

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, "torch.Tensor"]:
        import torch

        if not features:
            raise ValueError("empty batch")
        n = max(len(f["input_ids"]) for f in features)
        b = len(features)
        ids = torch.full((b, n), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((b, n), dtype=torch.long)
        has_labels = all("labels" in f for f in features)
        labels = torch.full((b, n), IGNORE_INDEX, dtype=torch.long)
        for i, f in enumerate(features):
            length = len(f["input_ids"])
            sl = slice(0, length) if self.padding_side == "right" else slice(n - length, n)
            ids[i, sl] = f["input_ids"]
            mask[i, sl] = 1
            if has_labels:
                labels[i, sl] = f["labels"]
        batch: dict[str, torch.Tensor] = {
            "input_ids": ids,
            "attention_mask": mask,
            "pixel_values_videos": torch.stack([f["pixel_values_videos"] for f in features]),
        }
        if has_labels:
            batch["labels"] = labels
        cached = [i for i, f in enumerate(features) if f.get("spatial_tokens") is not None]
        if len(cached) == b:
            batch["spatial_tokens"] = torch.stack([f["spatial_tokens"] for f in features])
        elif not cached:
            batch["cut3r_frames"] = torch.stack([f["cut3r_frames"] for f in features])
        else:
            ref = features[cached[0]]["spatial_tokens"]
            tokens = torch.zeros((b, *ref.shape), dtype=ref.dtype)
            for i in cached:
                tokens[i] = features[i]["spatial_tokens"]
            rows = [i for i in range(b) if i not in cached]
            batch["spatial_tokens"] = tokens
            batch["cut3r_frames"] = torch.stack([features[i]["cut3r_frames"] for i in rows])
            batch["cut3r_rows"] = torch.tensor(rows, dtype=torch.long)
        return batch


def resolve_spatial(model: Any, batch: dict[str, Any]) -> dict[str, Any]:
    """A batch with exactly one of ``spatial_tokens`` / ``cut3r_frames``: a mixed batch's uncached
    rows are encoded by ``model.spatial_tokens`` (frozen CUT3R) and written into ``spatial_tokens``."""
    if "cut3r_rows" not in batch:
        return batch
    batch = dict(batch)
    rows = batch.pop("cut3r_rows")
    frames = batch.pop("cut3r_frames")
    tokens = batch["spatial_tokens"].clone()
    tokens[rows] = model.spatial_tokens(frames).to(tokens.dtype)
    batch["spatial_tokens"] = tokens
    return batch
