import json
from collections import Counter, defaultdict

import numpy as np
import pytest

from vlm3r.pipelines.build import BuildConfig, build
from vlm3r.pipelines.presets import (
    VLM3R_TABLE4,
    VSTI_TABLE6,
    draw_mix,
    preset_quotas,
    scene_balanced,
    select_benchmark,
)
from vlm3r.scenes.base import AdapterConfig
from vlm3r.scenes.scannet import ScanNetAdapter
from vlm3r.schemas.qa import QARecord, task_family


def test_quotas_keep_table_proportions():
    avail = {"camera_displacement": 500, "camera_movement_direction": 90, "camera_obj_abs_dist": 400,
             "camera_obj_rel_dist": 900, "obj_obj_relative_pos": 900}
    scale, q = preset_quotas(avail, VSTI_TABLE6)
    assert scale == pytest.approx(90 / 913) and q["camera_movement_direction"] == 90  # the scarcest sets the scale
    for fam, n in VSTI_TABLE6.items():
        assert q[fam] <= avail[fam]
        assert q[fam] == pytest.approx(90 * n / 913, abs=1)


def test_quotas_stop_at_the_paper_counts_and_skip_missing_families():
    plenty = {f: 10 * n for f, n in VSTI_TABLE6.items()}
    assert preset_quotas(plenty, VSTI_TABLE6) == (1.0, VSTI_TABLE6)
    no_route = {f: n // 10 for f, n in VLM3R_TABLE4.items() if f != "route_planning"}
    scale, q = preset_quotas(no_route, VLM3R_TABLE4)
    assert q["route_planning"] == 0 and scale == pytest.approx(min(no_route[f] / VLM3R_TABLE4[f] for f in no_route))
    assert q["object_counting"] > 0


def rec(i, qtype):
    return QARecord(id=f"{qtype}-{i:04d}", dataset="d", scene_name=f"s{i % 7}", question_type=qtype, question="q",
                    ground_truth=1, task_version=1)


def test_vsti_benchmark_spreads_families_over_types_and_is_seeded():
    types = ["camera_displacement", "camera_movement_direction", "camera_obj_abs_dist", "camera_obj_rel_dist_v1",
             "camera_obj_rel_dist_v2", "camera_obj_rel_dist_v3", "obj_obj_relative_pos_nf", "obj_obj_relative_pos_lr",
             "obj_obj_relative_pos_ud"]
    records = [rec(i, t) for t in types for i in range(200)]
    chosen = select_benchmark(records, "vsti", seed=0)
    fams = Counter(task_family(r.question_type) for r in chosen)
    assert fams == preset_quotas({f: (600 if f in ("camera_obj_rel_dist", "obj_obj_relative_pos") else 200)
                                  for f in VSTI_TABLE6}, VSTI_TABLE6)[1]
    per_type = Counter(r.question_type for r in chosen if task_family(r.question_type) == "camera_obj_rel_dist")
    assert max(per_type.values()) - min(per_type.values()) <= 1
    assert [r.id for r in chosen] == [r.id for r in select_benchmark(list(reversed(records)), "vsti", seed=0)]
    assert [r.id for r in chosen] != [r.id for r in select_benchmark(records, "vsti", seed=1)]


@pytest.mark.parametrize("k", [0, 1, 9, 10, 14, 16, 40])
def test_scene_balanced_fills_the_quota_under_the_smallest_cap(k):
    sizes = {"a": 1, "b": 5, "c": 10, "d": 4}
    pool = [(s, i) for s, n in sizes.items() for i in range(n)]
    picked, cap = scene_balanced(pool, k, lambda x: x[0], np.random.default_rng(3))
    per = Counter(s for s, _ in picked)
    assert len(picked) == min(k, len(pool)) and len(set(picked)) == len(picked)
    assert all(per[s] <= min(n, cap) for s, n in sizes.items())
    # the cap is the smallest that fills k: one less would not have been enough
    assert k == 0 or sum(min(n, cap - 1) for n in sizes.values()) < min(k, len(pool))
    # every scene gives all it has up to cap - 1
    assert all(per[s] >= min(n, cap - 1) for s, n in sizes.items())


def test_training_mix_balances_scenes_and_is_order_free():
    items = [(f"{t}-{s}-{i}", t, s) for t in ("object_counting", "room_size_estimation", "object_rel_direction_hard",
                                              "object_rel_direction_easy") for s in range(6) for i in range(3 + s)]
    mix = draw_mix(items, "vlm3r-train", 0, id_of=lambda x: x[0], type_of=lambda x: x[1], scene_of=lambda x: x[2])
    rev = draw_mix(items[::-1], "vlm3r-train", 0, id_of=lambda x: x[0], type_of=lambda x: x[1], scene_of=lambda x: x[2])
    assert mix.chosen == rev.chosen
    r = mix.report
    assert r.missing == ["object_abs_distance", "object_rel_distance", "object_size_estimation", "route_planning"]
    for fam in ("object_rel_direction", "object_counting", "room_size_estimation"):
        assert r.achieved[fam] == r.target[fam] and abs(r.achieved[fam] - r.scale * VLM3R_TABLE4[fam]) < 1
    by = defaultdict(Counter)
    for _, t, s in mix.chosen:
        by[t][s] += 1
    for t, per_scene in by.items():
        assert max(per_scene.values()) <= r.per_scene_cap[t]


def test_build_writes_vsti_benchmark(scannet_root, tmp_path):
    root, _ = scannet_root
    out = tmp_path / "out"
    cfg = BuildConfig(out=out, adapter=AdapterConfig(num_frames=16), val_fraction=1.0, benchmarks=("vsti",), write_video=False)
    summary = build(ScanNetAdapter(root), cfg, ["scene0001_00", "scene0002_00"])
    lines = (out / "benchmark/vsti/scannet-00000.jsonl").read_text().splitlines()
    assert len(lines) == summary.benchmark_records["vsti"] > 0
    fams = Counter(task_family(json.loads(x)["question_type"]) for x in lines)
    assert set(fams) <= set(VSTI_TABLE6)
    with pytest.raises(KeyError, match="unknown benchmark"):
        build(ScanNetAdapter(root), BuildConfig(out=out, benchmarks=("nope",)), ["scene0001_00"])
