"""Question mixes in a paper's proportions: test sets (``BENCHMARKS``) and training mixes (``TRAIN_PRESETS``).

A preset is a table of paper families (``schemas.qa.task_family``) -> question counts. A mix keeps
the table's shares at the largest size the available questions allow, and never more than the
table's own counts (``preset_quotas``); a family with no question at all is reported missing and
left out, so the others keep their mutual shares. A family's quota is spread evenly over its
question types (smallest first, leftovers to the larger ones); within a type the questions are
spread evenly over scenes (``scene_balanced``: every scene gives at most the smallest per-scene cap
that fills the quota). All draws come from one rng seeded from (seed, preset), over items sorted by
id, so the mix depends only on the questions and the seed.

Test sets, written in a published benchmark's own row format:
``vsibench``: every test-split question of the ten VSI-Bench question types (``schemas.rows``
format ``vsibench``); ``vsti``: VSTI-Bench's test split (the paper's Table 6), format ``vstibench``.

Training mixes, drawn from training conversations (``pipelines.mix``):
``vlm3r-train``: the paper's Table 4 (207,779 VSI-Bench-style QA); ``vsti-train``: its Table 5
(VSTI-Bench's training split, 132,568 QA).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import numpy as np

from vlm3r.schemas.qa import QARecord, task_family
from vlm3r.schemas.rows import BENCHMARK_QUESTION_TYPES
from vlm3r.schemas.seeding import stable_hash

VSTI_TABLE6 = {
    "camera_displacement": 839,
    "camera_movement_direction": 913,
    "camera_obj_abs_dist": 905,
    "camera_obj_rel_dist": 1740,
    "obj_obj_relative_pos": 1645,
}
VLM3R_TABLE4 = {
    "object_rel_direction": 86_441,
    "object_abs_distance": 50_757,
    "object_rel_distance": 42_025,
    "object_size_estimation": 12_917,
    "object_counting": 9_357,
    "route_planning": 4_225,
    "room_size_estimation": 2_057,
}
VSTI_TABLE5 = {
    "camera_displacement": 32_292,
    "camera_movement_direction": 34_641,
    "camera_obj_abs_dist": 38_407,
    "camera_obj_rel_dist": 12_155,
    "obj_obj_relative_pos": 15_073,
}
PRESETS: dict[str, dict[str, int]] = {"vsti": VSTI_TABLE6, "vlm3r-train": VLM3R_TABLE4, "vsti-train": VSTI_TABLE5}
TRAINING_MIXES = ("vlm3r-train", "vsti-train")  # drawn from training conversations (pipelines.mix)


@dataclass(frozen=True)
class Benchmark:
    """A test set a build can write: its row format and, for a mix, the preset table drawn."""

    row_format: str  # a format of schemas.rows.ROW_FORMATS, also the official task it feeds
    preset: str | None = None  # a table of PRESETS; None = every question of the format's types


BENCHMARKS: dict[str, Benchmark] = {
    "vsibench": Benchmark("vsibench"),  # every test question of VSI-Bench's ten types
    "vsti": Benchmark("vstibench", "vsti"),  # VSTI-Bench's Table 6 mix
}

T = TypeVar("T")


@dataclass
class MixReport:
    """What a preset asked for and what was drawn, per family: ``paper`` the table's count,
    ``available`` the questions there were, ``target`` the scaled quota, ``achieved`` the questions
    drawn; ``per_scene_cap`` the largest number of questions any scene gives a question type."""

    preset: str
    scale: float = 0.0
    paper: dict[str, int] = field(default_factory=dict)
    available: dict[str, int] = field(default_factory=dict)
    target: dict[str, int] = field(default_factory=dict)
    achieved: dict[str, int] = field(default_factory=dict)
    per_scene_cap: dict[str, int] = field(default_factory=dict)

    @property
    def missing(self) -> list[str]:
        return [f for f in self.paper if not self.available.get(f)]

    def rows(self) -> list[tuple[str, int, int, int, int]]:
        """(family, paper, available, target, achieved), in the table's order."""
        return [(f, n, self.available.get(f, 0), self.target.get(f, 0), self.achieved.get(f, 0)) for f, n in self.paper.items()]


@dataclass
class Mix(Generic[T]):
    chosen: list[T]
    report: MixReport


def preset_quotas(available: dict[str, int], table: dict[str, int]) -> tuple[float, dict[str, int]]:
    """The scale (at most 1: never more than the table's counts) and per-family quotas
    ``floor(scale * table[f])``; families with nothing available get 0 and do not limit the scale."""
    present = [f for f in table if available.get(f, 0) > 0]
    scale = min([1.0] + [available[f] / table[f] for f in present]) if present else 0.0
    return scale, {f: int(np.floor(scale * n)) if f in present else 0 for f, n in table.items()}


def scene_balanced(pool: Sequence[T], k: int, scene_of: Callable[[T], object], rng: np.random.Generator) -> tuple[list[T], int]:
    """``k`` items of ``pool`` spread evenly over scenes, and the per-scene cap used: every scene
    gives ``min(its items, cap)`` with ``cap`` the smallest that reaches ``k``; the surplus is taken
    back one item from each of some (rng-chosen) scenes at the cap. Items within a scene by rng."""
    by_scene: dict[object, list[T]] = defaultdict(list)
    for item in pool:
        by_scene[scene_of(item)].append(item)
    scenes = sorted(by_scene, key=str)
    sizes = np.array([len(by_scene[s]) for s in scenes], dtype=np.int64)
    if k <= 0 or not len(sizes):
        return [], 0
    k = min(k, int(sizes.sum()))
    lo, hi = 0, int(sizes.max())  # sum(min(sizes, hi)) >= k; find the smallest such cap
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if np.minimum(sizes, mid).sum() < k else (lo, mid)
    take = np.minimum(sizes, lo)
    surplus = int(take.sum()) - k
    if surplus:
        take[rng.choice(np.flatnonzero(take == lo), size=surplus, replace=False)] -= 1
    out: list[T] = []
    for s, n in zip(scenes, take):
        group = by_scene[s]
        out += [group[i] for i in np.sort(rng.choice(len(group), size=int(n), replace=False))]
    return out, lo


def draw_mix(
    items: Sequence[T], preset: str, seed: int, *, id_of: Callable[[T], str], type_of: Callable[[T], str],
    scene_of: Callable[[T], object],
) -> Mix[T]:
    """The preset's mix of ``items`` (see the module docstring), sorted by id, and its report."""
    table = PRESETS[preset]
    by_family: dict[str, dict[str, list[T]]] = defaultdict(lambda: defaultdict(list))
    for item in sorted(items, key=id_of):
        fam = task_family(type_of(item))
        if fam in table:
            by_family[fam][type_of(item)].append(item)
    available = {f: sum(len(v) for v in by_family[f].values()) for f in table if f in by_family}
    scale, quotas = preset_quotas(available, table)
    report = MixReport(preset, scale, dict(table), available, quotas)
    rng = np.random.default_rng([seed, stable_hash(f"preset/{preset}")])
    chosen: list[T] = []
    for fam in table:
        types = by_family.get(fam, {})
        remaining = quotas[fam]
        names = sorted(types, key=lambda n: (len(types[n]), n))  # smallest first: leftovers go to larger
        got = 0
        for k, name in enumerate(names):
            share = min(len(types[name]), remaining // (len(names) - k))
            remaining -= share
            picked, cap = scene_balanced(types[name], share, scene_of, rng)
            report.per_scene_cap[name] = cap
            chosen += picked
            got += len(picked)
        report.achieved[fam] = got
    return Mix(sorted(chosen, key=id_of), report)


def select_benchmark(records: Sequence[QARecord], name: str, seed: int) -> list[QARecord]:
    """The benchmark's questions drawn from ``records`` (already restricted to the test split),
    only of question types its official task code knows, sorted by id."""
    bench = BENCHMARKS[name]
    known = set(BENCHMARK_QUESTION_TYPES[bench.row_format])
    records = sorted((r for r in records if r.question_type in known), key=lambda r: r.id)
    if bench.preset is None:
        return records
    return draw_mix(
        records, bench.preset, seed, id_of=lambda r: r.id, type_of=lambda r: r.question_type,
        scene_of=lambda r: (r.dataset, r.scene_name),
    ).chosen
