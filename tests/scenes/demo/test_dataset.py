"""The demo dataset in the ARKitScenes layout looks like a real download: 8-digit numeric video ids,
256x192 lowres frames, annotations in ARKitScenes' 17 classes, sky directions other than Up and one
metadata.csv row that is wrong; the adapter still turns every video upright from its poses."""

from __future__ import annotations

import csv
import json
import logging

import numpy as np

from vlm3r.scenes.arkitscenes import ARKitScenesAdapter
from vlm3r.scenes.base import AdapterConfig
from vlm3r.scenes.demo.dataset import ARKIT_SKY, MISLABELLED_ARKIT_VIDEO, ensure_demo_dataset, layout_config
from vlm3r.scenes.demo.synthetic import SyntheticConfig, make_scene
from vlm3r.schemas.seeding import stable_hash

TINY = SyntheticConfig(n_frames=24, width=256, height=192, mesh_resolution=0.08, n_objects=(6, 9))
ARKIT_17 = {"cabinet", "refrigerator", "shelf", "stove", "bed", "sink", "washer", "toilet", "bathtub", "oven",
            "dishwasher", "fireplace", "stool", "chair", "table", "tv_monitor", "sofa"}


def test_real_image_sizes_per_layout():
    assert (layout_config("arkitscenes").width, layout_config("arkitscenes").height) == (256, 192)
    pp = layout_config("scannetpp")
    assert (pp.width, pp.height) == (256, 192) and pp.color_size == (640, 480)


def test_arkitscenes_demo_is_shaped_like_a_real_download(tmp_path, caplog):
    root = ensure_demo_dataset(3, seed=0, cache_dir=tmp_path, config=TINY, layout="arkitscenes")
    adapter = ARKitScenesAdapter(root)
    vids = adapter.list_scenes()
    assert vids == ["48000000", "48000001", "48000002"] and all(len(v) == 8 and v.isdigit() for v in vids)
    with open(root / "metadata.csv", newline="") as f:
        listed = {r["video_id"]: r["sky_direction"] for r in csv.DictReader(f)}
    assert listed["48000000"] == "Up" and listed["48000002"] == ARKIT_SKY[2] != "Up"
    wrong = vids[MISLABELLED_ARKIT_VIDEO]
    assert listed[wrong] != ARKIT_SKY[MISLABELLED_ARKIT_VIDEO]
    for k, vid in enumerate(vids):
        anno = json.loads((root / "Training" / vid / f"{vid}_3dod_annotation.json").read_text())
        assert anno["skipped"] is False and {d["label"] for d in anno["data"]} <= ARKIT_17
        frames_dir = root / "Training" / vid / f"{vid}_frames" / "lowres_wide"
        from PIL import Image

        with Image.open(next(frames_dir.iterdir())) as im:  # raw frames: portrait when the sky is Left/Right
            assert sorted(im.size) == [192, 256]
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            a = adapter.load(vid, AdapterConfig(num_frames=6))
        assert any("disagrees" in r.getMessage() for r in caplog.records) == (vid == wrong)
        gt = make_scene(f"demo{k:04d}_00", seed=stable_hash(f"demo{k:04d}_00"), config=TINY)
        assert (a.frames.intrinsics.width, a.frames.intrinsics.height) == (256, 192)  # upright again
        for f in a.frames.frames:
            np.testing.assert_allclose(f.pose(), gt.camera_to_world[f.frame_id], atol=1e-5)
