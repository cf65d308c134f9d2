"""Benchmark presets (``BENCHMARKS``): test sets written in a published benchmark's own row format.

``vsibench``: every test-split question of the ten VSI-Bench question types, as VSI-Bench rows
(``schemas.rows`` format ``vsibench``); training-only variants are left out.
``vsti``: VSTI-Bench's test split (the paper's Table 6) scaled to the questions available: every
family keeps the paper's share, at the largest size the scarcest family allows. A family's quota is
spread evenly over its question types, and the questions kept are drawn with a seeded rng. Written
as VSTI-Bench rows (format ``vstibench``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vlm3r.datagen import TASKS
from vlm3r.schemas.seeding import stable_hash
from vlm3r.schemas.qa import QARecord
from vlm3r.schemas.rows import BENCHMARK_QUESTION_TYPES

VSTI_TABLE6 = {
    "camera_displacement": 839,
    "camera_movement_direction": 913,
    "camera_obj_abs_dist": 905,
    "camera_obj_rel_dist": 1740,
    "obj_obj_relative_pos": 1645,
}
PRESETS = {"vsti": VSTI_TABLE6}


@dataclass(frozen=True)
class Benchmark:
    """A test set a build can write: its row format and, for a mix, the preset table drawn."""

    row_format: str  # a format of schemas.rows.ROW_FORMATS, also the official task it feeds
    preset: str | None = None  # a table of PRESETS; None = every question of the format's types


BENCHMARKS: dict[str, Benchmark] = {
    "vsibench": Benchmark("vsibench"),  # every test question of VSI-Bench's ten types
    "vsti": Benchmark("vstibench", "vsti"),  # VSTI-Bench's Table 6 mix
}


def select_benchmark(records: Sequence[QARecord], name: str, seed: int) -> list[QARecord]:
    """The benchmark's questions drawn from ``records`` (already restricted to the test split),
    only of question types its official task code knows, sorted by id."""
    bench = BENCHMARKS[name]
    known = set(BENCHMARK_QUESTION_TYPES[bench.row_format])
    records = [r for r in records if r.question_type in known]
    chosen = select_preset(records, bench.preset, seed) if bench.preset else records
    return sorted(chosen, key=lambda r: r.id)


def family_of(question_type: str) -> str:
    task_cls = TASKS.get(question_type)
    return task_cls.family or task_cls.name


def preset_quotas(available: dict[str, int], table: dict[str, int]) -> dict[str, int]:
    """Per-family quotas in the table's proportions, scaled to fit what is available."""
    scale = min(available.get(f, 0) / n for f, n in table.items())
    return {f: int(np.floor(scale * n)) for f, n in table.items()}


def select_preset(records: Sequence[QARecord], preset: str, seed: int) -> list[QARecord]:
    """The preset's test set drawn from ``records`` (already restricted to the test split)."""
    table = PRESETS[preset]
    by_family: dict[str, dict[str, list[QARecord]]] = defaultdict(lambda: defaultdict(list))
    for r in sorted(records, key=lambda r: r.id):
        fam = family_of(r.question_type)
        if fam in table:
            by_family[fam][r.question_type].append(r)
    quotas = preset_quotas({f: sum(len(v) for v in types.values()) for f, types in by_family.items()}, table)
    rng = np.random.default_rng([seed, stable_hash(f"preset/{preset}")])
    out: list[QARecord] = []
    for fam in sorted(table):
        types = by_family.get(fam, {})
        remaining = quotas[fam]
        names = sorted(types, key=lambda n: (len(types[n]), n))  # smallest first: leftovers go to larger
        for k, name in enumerate(names):
            share = min(len(types[name]), remaining // (len(names) - k))
            remaining -= share
            pool = types[name]
            out += [pool[i] for i in np.sort(rng.choice(len(pool), size=share, replace=False))]
    return out
