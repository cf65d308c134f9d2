import json
from collections import Counter

import pytest

from vlm3r.pipelines.build import BuildConfig, build
from vlm3r.pipelines.presets import VSTI_TABLE6, family_of, preset_quotas, select_preset
from vlm3r.scenes.base import AdapterConfig
from vlm3r.scenes.scannet import ScanNetAdapter
from vlm3r.schemas.qa import QARecord


def test_quotas_keep_table_proportions():
    avail = {"camera_displacement": 500, "camera_movement_direction": 90, "camera_obj_abs_dist": 400,
             "camera_obj_rel_dist": 900, "obj_obj_relative_pos": 900}
    q = preset_quotas(avail, VSTI_TABLE6)
    assert q["camera_movement_direction"] == 90  # the scarcest family sets the scale
    for fam, n in VSTI_TABLE6.items():
        assert q[fam] <= avail[fam]
        assert q[fam] == pytest.approx(90 * n / 913, abs=1)


def rec(i, qtype):
    return QARecord(id=f"{qtype}-{i:04d}", dataset="d", scene_name=f"s{i % 7}", question_type=qtype, question="q",
                    ground_truth=1, task_version=1)


def test_select_preset_spreads_families_over_types_and_is_seeded():
    types = ["camera_displacement", "camera_movement_direction", "camera_obj_abs_dist", "camera_obj_rel_dist_v1",
             "camera_obj_rel_dist_v2", "camera_obj_rel_dist_v3", "obj_obj_relative_pos_nf", "obj_obj_relative_pos_lr",
             "obj_obj_relative_pos_ud"]
    records = [rec(i, t) for t in types for i in range(200)]
    chosen = select_preset(records, "vsti", seed=0)
    fams = Counter(family_of(r.question_type) for r in chosen)
    assert fams == preset_quotas({f: (600 if f in ("camera_obj_rel_dist", "obj_obj_relative_pos") else 200)
                                  for f in VSTI_TABLE6}, VSTI_TABLE6)
    per_type = Counter(r.question_type for r in chosen if family_of(r.question_type) == "camera_obj_rel_dist")
    assert max(per_type.values()) - min(per_type.values()) <= 1
    assert [r.id for r in chosen] == [r.id for r in select_preset(list(reversed(records)), "vsti", seed=0)]
    assert [r.id for r in chosen] != [r.id for r in select_preset(records, "vsti", seed=1)]


def test_build_writes_vsti_benchmark(scannet_root, tmp_path):
    root, _ = scannet_root
    out = tmp_path / "out"
    cfg = BuildConfig(out=out, adapter=AdapterConfig(num_frames=16), val_fraction=1.0, benchmarks=("vsti",), write_video=False)
    summary = build(ScanNetAdapter(root), cfg, ["scene0001_00", "scene0002_00"])
    lines = (out / "benchmark/vsti/scannet-00000.jsonl").read_text().splitlines()
    assert len(lines) == summary.benchmark_records["vsti"] > 0
    fams = Counter(family_of(json.loads(x)["question_type"]) for x in lines)
    assert set(fams) <= set(VSTI_TABLE6)
    with pytest.raises(KeyError, match="unknown benchmark"):
        build(ScanNetAdapter(root), BuildConfig(out=out, benchmarks=("nope",)), ["scene0001_00"])
