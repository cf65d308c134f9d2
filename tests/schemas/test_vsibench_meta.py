import json

import numpy as np
import pytest

from vlm3r.schemas.scene import OrientedBox
from vlm3r.schemas.vsibench_meta import export_meta, import_meta


def test_round_trip_reproduces_every_number(shared_file):
    data = json.loads(shared_file("vsibench_meta_scannet_val.json").read_text())
    scenes = import_meta(data)
    assert len(scenes) == 88
    # Through JSON as the build would write it, then back.
    reloaded = [type(s).model_validate_json(s.model_dump_json()) for s in scenes]
    assert export_meta(reloaded) == data


def test_normalized_axes_are_rotation_transposed(shared_file):
    """Independent check of the convention: corners rebuilt from centroid/extent/rotation must have
    the axis-aligned bounds the file states."""
    data = json.loads(shared_file("vsibench_meta_scannet_val.json").read_text())
    worst = 0.0
    for scene in import_meta(data):
        for obj in scene.objects:
            c = obj.box.corners()
            worst = max(worst, np.abs(c.min(0) - obj.box.min).max(), np.abs(c.max(0) - obj.box.max).max())
    assert worst < 1e-4


def test_from_arrays_bounds_match_corners():
    yaw = np.deg2rad(30)
    rot = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
    box = OrientedBox.from_arrays([1, 2, 0.5], [2.0, 1.0, 1.0], rot)
    half_x = (2 * np.cos(yaw) + 1 * np.sin(yaw)) / 2
    assert box.min[0] == pytest.approx(1 - half_x)
    assert box.max[2] == pytest.approx(1.0)


def test_rejects_non_finite_and_negative_extent():
    with pytest.raises(ValueError):
        OrientedBox.from_arrays([np.nan, 0, 0], [1, 1, 1], np.eye(3))
    with pytest.raises(ValueError):
        OrientedBox.from_arrays([0, 0, 0], [-1, 1, 1], np.eye(3))
