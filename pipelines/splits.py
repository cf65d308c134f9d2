"""Scene-level splits and the evaluation-scene leakage guard.

Splits are by scene, never by question: official split lists when given (one scene id per line),
otherwise a seeded split in which each scene's split depends only on (seed, dataset, scene id).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from pathlib import Path

from vlm3r.schemas.seeding import scene_rng

DEFAULT_VAL_FRACTION = 0.1
EVAL_SPLIT = "vsibench_eval"
"""The split of VSI-Bench's evaluation scenes in a build that keeps them out of training: their
records say so, so that filtering on ``split == "train"`` never trains on the benchmark's scenes."""


@cache
def vsibench_eval_scenes() -> frozenset[tuple[str, str]]:
    """(dataset, scene id) of the 288 VSI-Bench evaluation scenes, shipped as package data."""
    text = resources.files("vlm3r.pipelines.data").joinpath("vsibench_eval_scenes.json").read_text("utf-8")
    data = json.loads(text)["scenes"]
    return frozenset((ds, sid) for ds, ids in data.items() for sid in ids)


def read_split_lists(paths: Mapping[str, Path]) -> dict[str, str]:
    """{split name: file of scene ids} -> {scene id: split name}; a scene in two lists is an error."""
    out: dict[str, str] = {}
    for split, path in paths.items():
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            sid = line.strip()
            if not sid or sid.startswith("#"):
                continue
            if out.get(sid, split) != split:
                raise ValueError(f"{path}: scene {sid} is also listed as {out[sid]}")
            out[sid] = split
    return out


def assign_splits(
    dataset: str,
    scene_ids: Iterable[str],
    seed: int,
    official: Mapping[str, str] | None = None,
    val_fraction: float = DEFAULT_VAL_FRACTION,
) -> dict[str, str]:
    """Scene id -> "train" | "val" (or the official list's name). Unlisted scenes fall back to the
    seeded split, so adding scenes never moves existing ones. See ``mark_eval_scenes``."""
    out = {}
    for sid in scene_ids:
        if official and sid in official:
            out[sid] = official[sid]
        else:
            out[sid] = "val" if scene_rng(seed, "split", dataset, sid).random() < val_fraction else "train"
    return out


def mark_eval_scenes(splits: dict[str, str], eval_scene_ids: Iterable[str]) -> dict[str, str]:
    """``splits`` with every VSI-Bench evaluation scene (ids of this dataset) in ``EVAL_SPLIT``,
    whatever split it had; training exports take only ``"train"`` scenes."""
    return splits | {sid: EVAL_SPLIT for sid in eval_scene_ids if sid in splits}
