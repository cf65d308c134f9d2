"""Frame sampling shared by every adapter."""

import numpy as np
import pytest

from vlm3r.scenes.base import AdapterConfig, sample_frame_ids, select_frames, subsample_by_rate


def test_select_frames_defaults_to_linspace():
    valid = np.array([0, 1, 2, 5, 6, 7, 8, 9, 12, 13])
    ts = valid / 30.0
    assert select_frames(valid, ts, AdapterConfig(num_frames=4)).tolist() == sample_frame_ids(valid, 4).tolist()
    assert select_frames(valid, ts, AdapterConfig(num_frames=40)).tolist() == valid.tolist()


def test_fps_subsample_picks_the_frame_nearest_each_tick():
    valid = np.array([0, 1, 2, 3, 6, 7, 8, 9, 10, 11, 12])  # frames 4 and 5 invalid
    ts = valid / 10.0  # 10 Hz stream
    got = select_frames(valid, ts, AdapterConfig(fps_subsample=2.5))  # ticks at 0, 0.4, 0.8, 1.2 s
    assert got.tolist() == [0, 3, 8, 12]  # 0.4 s -> frame 3 (0.3 s), nearer than frame 6 (0.6 s)
    assert subsample_by_rate(valid, ts, 100.0).tolist() == valid.tolist()  # no repeats
    assert subsample_by_rate(valid[:0], ts[:0], 2.0).tolist() == []


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="fps_subsample"):
        AdapterConfig(fps_subsample=0.0)
    with pytest.raises(ValueError, match="num_frames"):
        AdapterConfig(num_frames=0)
