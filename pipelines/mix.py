"""``vlm3r-data mix``: one training set in a paper's proportions (``presets.TRAINING_MIXES``) drawn
from the training conversations of one or more builds (e.g. ScanNet + ScanNet++ + ARKitScenes, as
the paper trains).

Input: the ``train/<task>/<source>-<k>.jsonl`` shards of each build (train split only, VSI-Bench
evaluation scenes already left out by the build); every export must be complete. Output::

    DIR/train/<task>/<source>-<k>.jsonl   the drawn conversations, each with "build": the path of
                                          its build relative to DIR (frames are read from there)
    DIR/mix.json                          preset, seed, builds, per family paper/available/target/achieved

``vlm3r-train --data DIR`` trains on it. The folder is written under a temporary name and renamed
when complete, so a mix folder that exists is whole. The draw depends only on the builds' questions
and the seed (items sorted by source, scene and id; one rng seeded from seed and preset).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from vlm3r.pipelines.exports import json_lines, write_shards
from vlm3r.pipelines.presets import PRESETS, TRAINING_MIXES, MixReport, draw_mix
from vlm3r.schemas.io import atomic_write_json, read_jsonl, replace_dir, train_shard_files


@dataclass(frozen=True, slots=True)
class _Line:
    """One training conversation of a build: its row, the build's path and the shard's source."""

    row: dict
    build: Path
    source: str
    task: str

    @property
    def key(self) -> str:
        return f"{self.source}/{self.row.get('scene_name', '')}/{self.row.get('id', '')}"


def read_training_lines(builds: Sequence[Path]) -> list[_Line]:
    """Every training conversation of ``builds`` (complete exports only; ``schemas.io.train_shard_files``)."""
    lines = []
    for build in builds:
        for task, source, path in train_shard_files(build):
            for row, where in read_jsonl(path):
                if not isinstance(row, dict) or "question_type" not in row:
                    raise ValueError(f"{where}: not a training conversation (needs question_type)")
                origin = row.get("build")  # a line of an earlier mix names its own build
                home = Path(os.path.normpath(Path(build) / origin)) if isinstance(origin, str) else Path(build)
                lines.append(_Line(row, home, source, task))
    return lines


def mix_builds(builds: Sequence[Path], preset: str, to: Path, seed: int = 0) -> MixReport:
    """Draw ``preset`` from the training conversations of ``builds`` into ``to`` (see the module
    docstring); returns the per-family report. ``to`` is replaced as a whole."""
    if preset not in TRAINING_MIXES:
        raise KeyError(f"unknown training preset {preset!r}; known: {', '.join(TRAINING_MIXES)}")
    builds = sorted({Path(os.path.abspath(b)) for b in builds})
    if not builds:
        raise ValueError("mix needs at least one build folder")
    to = Path(os.path.abspath(to))
    if to in builds:
        raise ValueError(f"{to}: the mix folder cannot be one of its builds")
    items = read_training_lines(builds)
    if not items:
        raise ValueError(f"no training conversations in {', '.join(str(b) for b in builds)}")
    mix = draw_mix(
        items, preset, seed, id_of=lambda x: x.key, type_of=lambda x: str(x.row["question_type"]),
        scene_of=lambda x: (x.source, x.row.get("dataset"), x.row.get("scene_name")),
    )
    if not mix.chosen:
        families = ", ".join(PRESETS[preset])
        raise ValueError(f"the builds have no training questions of the {preset} families ({families})")
    to.parent.mkdir(parents=True, exist_ok=True)
    tmp = to.with_name(f".{to.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    groups: dict[tuple[str, str], list[dict]] = {}
    for x in mix.chosen:
        groups.setdefault((x.task, x.source), []).append(x.row | {"build": os.path.relpath(x.build, to)})
    for (task, source), rows in sorted(groups.items()):
        write_shards(tmp / "train" / task, source, json_lines(rows))
    atomic_write_json(tmp / "mix.json", {
        "preset": preset, "seed": seed, "builds": [os.path.relpath(b, to) for b in builds], "report": asdict(mix.report),
    })
    replace_dir(tmp, to)
    return mix.report


def read_mix_report(folder: Path) -> MixReport:
    """The report a mix folder (or a build's ``mix/<preset>``) was written with."""
    data = json.loads((Path(folder) / "mix.json").read_text(encoding="utf-8"))
    return MixReport(**data["report"])
