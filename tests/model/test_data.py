"""Training data: shard reading, source weights, frame selection (folder / mp4 / skip), chat template
and label masking, cached CUT3R tokens, collation. Built on a hand-made build folder whose frames are
solid colours that encode their index, so every selected frame can be checked by its pixels."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from vlm3r.model.data import (  # noqa: E402
    IGNORE_INDEX,
    ConversationEncoder,
    FrameReader,
    SampleError,
    ShardDataset,
    VideoCollator,
    VideoSource,
    linspace_positions,
    locate_video,
    mix_samples,
    read_samples,
    resolve_spatial,
    spatial_cache_tag,
)
from vlm3r.model.feature_cache import SpatialFeatureCache  # noqa: E402
from vlm3r.model.vlm import siglip_pixels  # noqa: E402

H, W = 24, 32


def colour(k: int) -> np.ndarray:
    """The solid RGB colour of frame position k (well apart for k < 10)."""
    return np.array([10 + 24 * k, 230 - 22 * k, 40 + 17 * (k % 5)], dtype=np.uint8)


def make_scene(root: Path, source: str, scene: str, n_frames: int, mp4: bool = True) -> list[int]:
    """A scene folder like a build writes it; returns the stream frame ids (3 * position + 1)."""
    from PIL import Image
    from vlm3r.scenes.video import write_mp4

    d = root / "scenes" / source / scene
    (d / "frames").mkdir(parents=True)
    ids = [3 * k + 1 for k in range(n_frames)]
    images = [np.broadcast_to(colour(k), (H, W, 3)).copy() for k in range(n_frames)]
    for fid, im in zip(ids, images):
        Image.fromarray(im).save(d / "frames" / f"{fid:06d}.jpg", quality=95)
    frames = [
        {"frame_id": fid, "timestamp_s": fid / 30, "color_path": f"scenes/{source}/{scene}/frames/{fid:06d}.jpg"}
        for fid in ids
    ]
    (d / "frame_metadata.json").write_text(json.dumps({"scene_id": scene, "dataset": source, "frames": frames}))
    if mp4:
        write_mp4(images, d / "video.mp4")
    return ids


def conv(sid: str, source: str, scene: str, question: str, answer: str) -> dict:
    return {
        "id": sid,
        "video": f"scenes/{source}/{scene}/video.mp4",
        "dataset": source,
        "scene_name": scene,
        "question_type": "object_counting",
        "conversations": [
            {"from": "human", "value": f"<image>\nThese are frames of a video.\n{question}"},
            {"from": "gpt", "value": answer},
        ],
    }


def write_shard(root: Path, task: str, source: str, rows: list[dict]) -> Path:
    path = root / "train" / task / f"{source}-00000.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def build(tmp_path):
    """Two sources: scannet (2 scenes of 8 and 3 frames) and arkit (1 scene of 6 frames, no mp4)."""
    root = tmp_path / "out"
    ids = {
        "s1": make_scene(root, "scannet", "s1", 8),
        "s2": make_scene(root, "scannet", "s2", 3),
        "a1": make_scene(root, "arkit", "a1", 6, mp4=False),
    }
    write_shard(
        root,
        "object_counting",
        "scannet",
        [conv(f"c{k}", "scannet", s, f"How many chairs {k}?", str(k)) for k, s in enumerate(["s1", "s1", "s2"])],
    )
    write_shard(root, "object_counting", "arkit", [conv("a0", "arkit", "a1", "How many beds?", "1")])
    return root, ids


def test_linspace_positions_floor_and_repeat():
    assert linspace_positions(8, 4).tolist() == [0, 2, 4, 7]  # floor(0, 2.33, 4.67, 7)
    assert linspace_positions(32, 32).tolist() == list(range(32))
    assert linspace_positions(2, 4).tolist() == [0, 0, 0, 1]  # fewer frames than asked: repeats
    with pytest.raises(ValueError):
        linspace_positions(0, 4)


def test_frames_from_folder_are_the_linspace_frames(build):
    root, ids = build
    src = locate_video(root, "scenes/scannet/s1/video.mp4", "scannet", "scannet", "s1")
    got = FrameReader(4).read(src)
    assert got.frame_ids == tuple(ids["s1"][p] for p in (0, 2, 4, 7))
    assert got.frames.shape == (4, H, W, 3)
    for frame, p in zip(got.frames, (0, 2, 4, 7)):
        np.testing.assert_allclose(frame.reshape(-1, 3).mean(0), colour(p), atol=3)


def test_mp4_fallback_keeps_the_cache_key(build, caplog):
    root, ids = build
    (root / "scenes/scannet/s1/frames" / f"{ids['s1'][4]:06d}.jpg").unlink()
    src = locate_video(root, "scenes/scannet/s1/video.mp4", "scannet", "scannet", "s1")
    with caplog.at_level(logging.WARNING, logger="vlm3r.train"):
        got = FrameReader(4).read(src)
    assert "missing or unreadable frame" in caplog.text and "video.mp4 instead" in caplog.text
    assert got.frame_ids == tuple(ids["s1"][p] for p in (0, 2, 4, 7))  # same key as the frames folder
    for frame, p in zip(got.frames, (0, 2, 4, 7)):
        np.testing.assert_allclose(frame.reshape(-1, 3).mean(0), colour(p), atol=8)  # lossy codec


def test_mp4_only_video(tmp_path):
    from vlm3r.scenes.video import write_mp4

    mp4 = tmp_path / "arkitscenes" / "41069025.mp4"  # the VSI-Bench layout
    mp4.parent.mkdir()
    write_mp4([np.broadcast_to(colour(k), (H, W, 3)).copy() for k in range(5)], mp4)
    src = locate_video(tmp_path, None, "arkitscenes", "arkitscenes", "41069025")
    assert src is not None and src.scene_dir is None and src.key == mp4
    got = FrameReader(3).read(src)
    assert got.frame_ids == (0, 2, 4)
    np.testing.assert_allclose(got.frames[1].reshape(-1, 3).mean(0), colour(2), atol=8)


def test_read_samples_and_bad_lines(build):
    root, _ = build
    samples = read_samples([root])
    assert [(s.id, s.source, s.task) for s in samples] == [
        ("a0", "arkit", "object_counting"),
        ("c0", "scannet", "object_counting"),
        ("c1", "scannet", "object_counting"),
        ("c2", "scannet", "object_counting"),
    ]
    assert samples[1].turns[1] == ("assistant", "0")
    assert read_samples([root], tasks=["object_counting"]) == samples
    with pytest.raises(FileNotFoundError, match="no shards for task"):
        read_samples([root], tasks=["room_size_estimation"])
    bad = write_shard(root, "object_size_estimation", "scannet", [])
    bad.write_text('{"id": "x", "conversations": []}\n')
    with pytest.raises(ValueError, match=rf"{bad}:1: not a LLaVA conversation"):
        read_samples([root])
    bad.write_text(
        json.dumps({"id": "y", "conversations": [{"from": "gpt", "value": "2"}, {"from": "human", "value": "?"}]})
        + "\n"
    )
    with pytest.raises(ValueError, match=rf"{bad}:1: the conversation must start with a human turn"):
        read_samples([root])
    bad.write_text("{oops\n")
    with pytest.raises(ValueError, match=rf"{bad}:1: not valid JSON"):
        read_samples([root])


def test_source_weights(build):
    root, _ = build
    samples = read_samples([root])
    mixed = mix_samples(samples, {"scannet": 2.0, "arkit": 0.0})
    assert Counter(s.id for s in mixed) == {"c0": 2, "c1": 2, "c2": 2}
    half = mix_samples(samples, {"scannet": 1.5}, seed=3)
    counts = Counter(s.id for s in half)
    assert sum(counts[c] for c in ("c0", "c1", "c2")) == 5 and counts["a0"] == 1  # 3 + round(0.5 * 3)
    assert half == mix_samples(samples, {"scannet": 1.5}, seed=3)  # seeded
    with pytest.raises(ValueError, match="unknown source.*scanet"):
        mix_samples(samples, {"scanet": 1.0})
    with pytest.raises(ValueError, match="leave no training samples"):
        mix_samples(samples, {"scannet": 0.0, "arkit": 0.0})


def test_chat_template_and_label_mask(qwen_tokenizer):
    enc = ConversationEncoder(qwen_tokenizer, num_video_tokens=6)
    turns = [
        ("user", "<image>\nThese are frames of a video.\nHow many chairs?"),
        ("assistant", "3"),
        ("user", "And tables?"),
        ("assistant", "two"),
    ]
    ids, labels = enc.encode(turns)
    # Independent: render the whole conversation with the template, expand <video>, tokenize at once.
    msgs = [{"role": r, "content": t} for r, t in turns]
    msgs[0]["content"] = "<video>\nThese are frames of a video.\nHow many chairs?"
    text = qwen_tokenizer.apply_chat_template(msgs, tokenize=False).replace("<video>", "<video>" * 6)
    assert ids == qwen_tokenizer(text, add_special_tokens=False)["input_ids"]
    assert text.startswith("<|im_start|>system\n") and "<|im_start|>user\n<video><video>" in text
    supervised = [i for i, lab in zip(ids, labels) if lab != IGNORE_INDEX]
    assert qwen_tokenizer.decode(supervised) == "3<|im_end|>two<|im_end|>"
    assert all(lab in (IGNORE_INDEX, i) for i, lab in zip(ids, labels))
    assert ids.count(qwen_tokenizer.convert_tokens_to_ids("<video>")) == 6
    prompt = enc.prompt(turns[0][1])
    first = next(k for k, lab in enumerate(labels) if lab != IGNORE_INDEX)
    assert prompt == ids[:first]  # exactly the training prefix of the first answer
    assert qwen_tokenizer.decode(prompt).endswith("<|im_start|>assistant\n")


def test_dataset_item(build, qwen_tokenizer, tiny_cfg):
    root, ids = build
    ds = ShardDataset(read_samples([root]), qwen_tokenizer, tiny_cfg)
    item = ds[1]  # c0: scene s1, 8 frames -> positions 0, 2, 4, 7
    t, s, c = tiny_cfg.num_frames, tiny_cfg.vision.image_size, tiny_cfg.cut3r.img_size
    assert item["pixel_values_videos"].shape == (t, 3, s, s) and item["cut3r_frames"].shape == (t, 3, c, c)
    assert "spatial_tokens" not in item
    expect = torch.stack([torch.from_numpy(colour(p)).float() / 255 for p in (0, 2, 4, 7)])
    torch.testing.assert_close(item["cut3r_frames"].mean(dim=(2, 3)), expect, atol=0.015, rtol=0)
    ref = siglip_pixels(item["cut3r_frames"][None], s)[0]  # resize of a solid colour is the colour
    torch.testing.assert_close(item["pixel_values_videos"], ref, atol=0.03, rtol=0)
    n_video = int((item["input_ids"] == tiny_cfg.video_token_id).sum())
    assert n_video == t * tiny_cfg.tokens_per_frame
    assert qwen_tokenizer.decode(item["labels"][item["labels"] != IGNORE_INDEX]) == "0<|im_end|>"


def test_cached_tokens_are_used(build, qwen_tokenizer, tiny_cfg, tmp_path):
    root, ids = build
    cache = SpatialFeatureCache(tmp_path / "cache", spatial_cache_tag(tiny_cfg, None, 0))
    frame_ids = [ids["s2"][p] for p in linspace_positions(3, tiny_cfg.num_frames)]
    tokens = torch.randn(tiny_cfg.num_frames, 1 + tiny_cfg.cut3r.num_patches, tiny_cfg.cut3r.dec_embed_dim)
    cache.put(root / "scenes/scannet/s2/video.mp4", frame_ids, tokens)
    ds = ShardDataset(read_samples([root]), qwen_tokenizer, tiny_cfg, cache=cache)
    item = ds[3]  # c2: scene s2
    assert "cut3r_frames" not in item
    torch.testing.assert_close(item["spatial_tokens"], tokens.half())
    assert "cut3r_frames" in ds[1]  # s1 is not cached
    strict = ShardDataset(read_samples([root]), qwen_tokenizer, tiny_cfg, cache=cache, require_cache=True)
    assert "spatial_tokens" in strict[0]  # a0, c0, c1 are uncached: skipped up to c2
    assert strict.skipped == {"not in feature cache": 3}


def test_unreadable_samples_are_skipped_and_counted(build, qwen_tokenizer, tiny_cfg, caplog):
    root, ids = build
    (root / "scenes/scannet/s1/frames" / f"{ids['s1'][0]:06d}.jpg").unlink()
    (root / "scenes/scannet/s1/video.mp4").write_bytes(b"not a video")
    samples = read_samples([root])
    samples.append(replace(samples[-1], id="ghost", video="scenes/scannet/zz/video.mp4", scene_name="zz"))
    with caplog.at_level(logging.WARNING, logger="vlm3r.train"):
        ds = ShardDataset(samples, qwen_tokenizer, tiny_cfg)
        assert len(ds) == 4  # ghost has no video at all: dropped up front
        item = ds[1]  # c0 (scene s1) is unreadable: c1 (s1 too) is skipped, c2 (s2) served
        again = ds[1]
    assert ds.skipped == {"no video": 1, "unreadable video": 2}
    assert "skipping sample c0" in caplog.text and "unreadable video" in caplog.text
    torch.testing.assert_close(item["input_ids"], ds.load(3)["input_ids"])
    torch.testing.assert_close(again["input_ids"], item["input_ids"])
    for d in ("s2", "a1"):
        for f in (root / "scenes" / ("arkit" if d == "a1" else "scannet") / d / "frames").iterdir():
            f.unlink()
    (root / "scenes/scannet/s2/video.mp4").unlink()
    with pytest.raises(RuntimeError, match="none of the 4 training samples could be read"):
        ds[0]


def test_collator_padding_and_mixed_cache(tiny_cfg):
    t, s, c = 2, 4, 3
    n, d = 5, 6
    feats = [
        {
            "input_ids": torch.tensor([5, 6, 7]),
            "labels": torch.tensor([-100, 6, 7]),
            "pixel_values_videos": torch.zeros(t, 3, s, s),
            "spatial_tokens": torch.ones(t, n, d, dtype=torch.float16),
        },
        {
            "input_ids": torch.tensor([8, 9]),
            "labels": torch.tensor([-100, 9]),
            "pixel_values_videos": torch.ones(t, 3, s, s),
            "cut3r_frames": torch.full((t, 3, c, c), 0.5),
        },
    ]
    batch = VideoCollator(pad_token_id=0)(feats)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 9, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [-100, 9, -100]]
    assert batch["cut3r_rows"].tolist() == [1] and batch["cut3r_frames"].shape == (1, t, 3, c, c)
    left = VideoCollator(pad_token_id=0, padding_side="left")(feats)
    assert left["input_ids"].tolist() == [[5, 6, 7], [0, 8, 9]]

    class Encoder:
        def spatial_tokens(self, frames):
            return frames.mean(dim=(2, 3, 4), keepdim=True)[..., 0].expand(*frames.shape[:2], n, d) * 4  # 2.0

    resolved = resolve_spatial(Encoder(), batch)
    assert set(resolved) == {"input_ids", "attention_mask", "labels", "pixel_values_videos", "spatial_tokens"}
    assert resolved["spatial_tokens"][0].eq(1).all() and resolved["spatial_tokens"][1].eq(2).all()
    assert batch["spatial_tokens"][1].eq(0).all()  # the input batch is left untouched
    only_frames = VideoCollator(pad_token_id=0)([feats[1], feats[1]])
    assert "spatial_tokens" not in only_frames and only_frames["cut3r_frames"].shape[0] == 2
    assert resolve_spatial(Encoder(), only_frames) is only_frames


def test_time_instruction_as_vlm3r_writes_it(tmp_path, qwen_tokenizer, tiny_cfg):
    """VLM-3R's "The video lasts for ..." line: the stream's length (frames / fps) and the sampled
    frames' times, put after the <image> line of the first user turn."""
    from vlm3r.model.data import FrameReader, ShardDataset, VideoSource, read_samples
    from vlm3r.schemas.conversation import time_instruction, with_time_instruction

    assert time_instruction(12.5, [0.0, 5.0, 10.0]) == (
        "The video lasts for 12.50 seconds, and 3 frames are uniformly sampled from it. "
        "These frames are located at 0.00s,5.00s,10.00s.Please answer the following questions related to this video."
    )
    assert with_time_instruction("<image>\nThese are frames of a video.\nQ?", "TI") == "<image>\nTI\n\nThese are frames of a video.\nQ?"

    ids = make_scene(tmp_path, "demo", "s1", n_frames=7)  # stream frame ids 1, 4, ..., 19 at 30 fps
    meta = tmp_path / "scenes/demo/s1/frame_metadata.json"
    data = json.loads(meta.read_text()) | {"fps": 30.0, "num_stream_frames": 600}
    meta.write_text(json.dumps(data))
    loaded = FrameReader(4).read(VideoSource(tmp_path / "scenes/demo/s1", None))
    pos = [0, 2, 4, 6]  # floor(linspace(0, 6, 4))
    assert loaded.frame_ids == tuple(ids[p] for p in pos)
    assert loaded.video_s == 20.0 and loaded.times_s == tuple((ids[p] - ids[0]) / 30 for p in pos)

    (tmp_path / "train/object_counting").mkdir(parents=True)
    (tmp_path / "train/object_counting/demo-00000.jsonl").write_text(json.dumps(conv("a", "demo", "s1", "How many?", "2")) + "\n")
    item = ShardDataset(read_samples([tmp_path]), qwen_tokenizer, tiny_cfg).load(0)
    text = qwen_tokenizer.decode(item["input_ids"]).replace("<video>", "")
    expected = time_instruction(20.0, loaded.times_s)
    assert f"<|im_start|>user\n\n{expected}\n\nThese are frames of a video.\nHow many?<|im_end|>" in text
    no_ti = ShardDataset(read_samples([tmp_path]), qwen_tokenizer, dataclasses.replace(tiny_cfg, time_instruction=False)).load(0)
    assert "The video lasts" not in qwen_tokenizer.decode(no_ti["input_ids"])


def test_cut3r_frames_are_the_siglip_input_upsampled_as_vlm3r_does(tiny_cfg):
    """VLM-3R feeds CUT3R the SigLIP-preprocessed frames, bilinearly upsampled (no antialiasing)."""
    import torch
    import torch.nn.functional as F

    from vlm3r.model.data import cut3r_input, siglip_input

    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (2, 60, 80, 3), dtype=np.uint8)
    siglip = siglip_input(frames, 42)
    assert siglip.min() >= -1 and siglip.max() <= 1
    got = cut3r_input(frames, 56, 42)
    want = F.interpolate(siglip, size=(56, 56), mode="bilinear", align_corners=False) * 0.5 + 0.5
    assert got.shape == (2, 3, 56, 56) and torch.equal(got, want)
    # not the raw frames resized straight to CUT3R's size (what was done before)
    raw = F.interpolate(torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255, size=(56, 56), mode="bilinear", antialias=True)
    assert (got - raw).abs().max() > 0.05


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (a decompression bomb's header) with almost no data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def test_corrupted_builds_are_skipped_and_counted_never_hang(build, qwen_tokenizer, tiny_cfg):
    """Hostile scene folders: a FIFO frame (would block for ever), a 30000 x 30000 frame header
    (a decompression bomb), a 100k-deep frame_metadata.json; each sample is skipped with a reason."""
    import os

    root, ids = build
    s1 = root / "scenes/scannet/s1"
    fifo = s1 / "frames" / f"{ids['s1'][0]:06d}.jpg"
    fifo.unlink()
    os.mkfifo(fifo)
    (s1 / "video.mp4").unlink()
    bomb = root / "scenes/arkit/a1/frames" / f"{ids['a1'][0]:06d}.jpg"
    bomb.write_bytes(png_header_only(30_000, 30_000))
    (root / "scenes/scannet/s2/frame_metadata.json").write_text("[" * 100_000 + "]" * 100_000)
    (root / "scenes/scannet/s2/video.mp4").unlink()
    ds = ShardDataset(read_samples([root]), qwen_tokenizer, tiny_cfg)
    reasons = []
    for k in range(len(ds.items)):
        with pytest.raises(SampleError) as err:
            ds.load(k)
        reasons.append(str(err.value))
    assert any(f"{fifo}: not a regular file" in r for r in reasons)
    assert any(f"{bomb}: missing or unreadable frame (DecompressionBombError)" in r for r in reasons)  # Pillow's own limit
    assert any("frame_metadata.json: unreadable frame metadata (nested too deeply)" in r for r in reasons)
    with pytest.raises(RuntimeError, match="none of the 4 training samples could be read"):
        ds[0]
    # under Pillow's limit but above ours (4096 x 4096): refused from the header, before decoding
    bomb.write_bytes(png_header_only(5_000, 5_000))
    with pytest.raises(SampleError, match=rf"{bomb}: 5000x5000 frame, more than 16,777,216 pixels"):
        FrameReader(4).read(VideoSource(root / "scenes/arkit/a1", None))


def test_a_shard_line_with_a_non_path_video_is_named(build):
    root, _ = build
    bad = write_shard(root, "object_size_estimation", "scannet", [dict(conv("v", "scannet", "s1", "Q?", "1"), video=7)])
    with pytest.raises(ValueError, match=rf"{bad}:1: 'video' must be a path \(text\) or null, got int"):
        read_samples([root])


def test_samples_longer_than_the_lm_are_skipped(build, qwen_tokenizer, tiny_cfg):
    root, _ = build
    long = conv("long", "scannet", "s2", "chair " * (tiny_cfg.text.max_position_embeddings + 10), "2")
    write_shard(root, "object_size_estimation", "scannet", [long])
    samples = [s for s in read_samples([root]) if s.id == "long"]
    with pytest.raises(SampleError, match="longer than max_length 4096 tokens"):
        ShardDataset(samples, qwen_tokenizer, tiny_cfg).load(0)
