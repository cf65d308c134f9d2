"""``vlm3r-data stats OUT``: what a build contains.

Per task: question count, scenes and datasets covered, correct-letter distribution (with a flag when,
among the questions with the same number of options, letter counts differ by more than 1), and the
answer distribution (numeric
tasks: quantiles; others: the most frequent correct option texts). Per dataset: scenes, objects,
sampled frames and questions; per scene: questions per task.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from vlm3r.pipelines.eval.scoring import option_text
from vlm3r.schemas.qa import task_family
from vlm3r.schemas.io import read_qa_records
from vlm3r.schemas.qa import TASK_FAMILIES, is_numeric_task
from vlm3r.schemas.qa import MC_LETTERS, QARecord

TASK_GROUPS: Mapping[str, tuple[str, ...]] = {
    "Configuration": ("object_counting", "object_rel_distance", "object_rel_direction", "route_planning"),
    "Measurement": ("object_size_estimation", "room_size_estimation", "object_abs_distance"),
    "Spatiotemporal": ("obj_appearance_order",),
    "Camera-object": ("camera_obj_abs_dist", "camera_obj_rel_dist"),
    "Object-object": ("obj_obj_relative_pos",),
    "Camera motion": ("camera_displacement", "camera_movement_direction"),
}
"""Task groups (of paper tasks, ``scoring.TASK_FAMILIES`` names for the variant families) for
reports and the distribution figure: VSI-Bench's configuration / measurement / spatiotemporal and
VSTI-Bench's camera-object, object-object and camera-motion questions."""


def task_group(task: str) -> str:
    """The group of a question type or paper task ("Other" for a task no group lists)."""
    family = task_family(task)
    for group, tasks in TASK_GROUPS.items():
        if family in tasks:
            return group
    return "Other"


@dataclass
class TaskStats:
    """Statistics of one question type. ``letters``: correct-letter counts; ``letters_by_options``:
    the same per number of options k (over the k letters a k-option question can have);
    ``letters_balanced``: every such group within 1 (a k-option group skewed to one letter lets a
    model score above chance without looking). ``answers``: for numeric tasks the quantiles (min,
    p25, median, mean, p75, max) of the ground truth; otherwise the top correct option texts."""

    task: str
    group: str
    n: int
    n_scenes: int
    datasets: dict[str, int]
    letters: dict[str, int]
    letters_by_options: dict[str, dict[str, int]]
    letters_balanced: bool
    options_per_question: dict[str, int]
    numeric: bool
    answers: dict[str, float | int]


@dataclass
class DatasetStats:
    """Scenes, objects and sampled frames of one dataset in the build, and its questions."""

    dataset: str
    scenes: int
    objects: int
    frames: int
    questions: int
    categories: dict[str, int] = field(default_factory=dict)


@dataclass
class BuildStats:
    tasks: dict[str, TaskStats]
    datasets: dict[str, DatasetStats]
    per_scene: dict[str, dict[str, int]]
    total_questions: int

    def to_json(self) -> dict:
        return asdict(self)


def task_order(task: str) -> tuple[int, int, int, str]:
    """Sort key: group (in ``TASK_GROUPS`` order), paper task within it, variant, name."""
    groups = list(TASK_GROUPS) + ["Other"]
    group = task_group(task)
    members = TASK_GROUPS.get(group, ())
    family = task_family(task)
    variants = TASK_FAMILIES.get(family, (task,))
    return (
        groups.index(group),
        members.index(family) if family in members else len(members),
        variants.index(task) if task in variants else len(variants),
        task,
    )


def task_stats(task: str, records: Sequence[QARecord], top_k: int = 10) -> TaskStats:
    """Statistics of the records of one question type."""
    letters = Counter(r.mc_answer for r in records if r.mc_answer)
    by_k: dict[int, Counter[str]] = {}
    for r in records:
        if r.mc_answer and r.options:
            by_k.setdefault(len(r.options), Counter())[r.mc_answer] += 1
    letters_by_options = {
        str(k): {c: by_k[k].get(c, 0) for c in MC_LETTERS[: min(k, len(MC_LETTERS))]} for k in sorted(by_k)
    }
    balanced = all(max(g.values()) - min(g.values()) <= 1 for g in letters_by_options.values())
    numeric = is_numeric_task(task)
    answers: dict[str, float | int] = {}
    if numeric:
        gt = np.array([float(r.ground_truth) for r in records], dtype=np.float64)
        if gt.size:
            q = np.quantile(gt, [0.0, 0.25, 0.5, 0.75, 1.0])
            answers = {"min": q[0], "p25": q[1], "median": q[2], "mean": float(gt.mean()), "p75": q[3], "max": q[4]}
            answers = {k: round(float(v), 4) for k, v in answers.items()}
    else:
        texts: Counter[str] = Counter()
        for r in records:
            k = MC_LETTERS.find(r.mc_answer or "?")
            texts[option_text(r.options[k]) if r.options and 0 <= k < len(r.options) else str(r.ground_truth)] += 1
        answers = dict(sorted(texts.items(), key=lambda kv: (-kv[1], kv[0]))[:top_k])
    return TaskStats(
        task=task,
        group=task_group(task),
        n=len(records),
        n_scenes=len({(r.dataset, r.scene_name) for r in records}),
        datasets=dict(sorted(Counter(r.dataset for r in records).items())),
        letters={c: letters.get(c, 0) for c in MC_LETTERS},
        letters_by_options=letters_by_options,
        letters_balanced=balanced,
        options_per_question=dict(sorted(Counter(str(len(r.options or ())) for r in records).items())),
        numeric=numeric,
        answers=answers,
    )


def scene_inventory(out: Path) -> dict[str, DatasetStats]:
    """Scenes, objects and frames per dataset under ``OUT/scenes/<dataset>/<scene>/``."""
    result: dict[str, DatasetStats] = {}
    root = Path(out) / "scenes"
    if not root.is_dir():
        return result
    for ds_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        st = DatasetStats(ds_dir.name, 0, 0, 0, 0)
        cats: Counter[str] = Counter()
        for scene_dir in sorted(p for p in ds_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            meta = scene_dir / "scene_metadata.json"
            if not meta.is_file():
                continue
            try:
                scene = json.loads(meta.read_text(encoding="utf-8"))
            except ValueError:
                raise ValueError(f"{meta}: not valid JSON") from None
            st.scenes += 1
            st.objects += len(scene.get("objects", []))
            cats.update(o.get("category", "?") for o in scene.get("objects", []))
            fm = scene_dir / "frame_metadata.json"
            if fm.is_file():
                st.frames += len(json.loads(fm.read_text(encoding="utf-8")).get("frames", []))
        st.categories = dict(sorted(cats.items(), key=lambda kv: (-kv[1], kv[0])))
        result[ds_dir.name] = st
    return result


def compute_stats(records: Sequence[QARecord], inventory: Mapping[str, DatasetStats] | None = None) -> BuildStats:
    """Statistics of QA records (and, optionally, of the scene inventory of their build)."""
    by_task: dict[str, list[QARecord]] = {}
    for r in records:
        by_task.setdefault(r.question_type, []).append(r)
    datasets = {k: DatasetStats(**asdict(v)) for k, v in (inventory or {}).items()}
    for ds, n in Counter(r.dataset for r in records).items():
        datasets.setdefault(ds, DatasetStats(ds, len({r.scene_name for r in records if r.dataset == ds}), 0, 0, 0)).questions = n
    per_scene: dict[str, dict[str, int]] = {}
    for r in records:
        row = per_scene.setdefault(f"{r.dataset}/{r.scene_name}", {})
        row[r.question_type] = row.get(r.question_type, 0) + 1
    return BuildStats(
        tasks={t: task_stats(t, rs) for t, rs in sorted(by_task.items(), key=lambda kv: task_order(kv[0]))},
        datasets=dict(sorted(datasets.items())),
        per_scene=dict(sorted(per_scene.items())),
        total_questions=len(records),
    )


def build_records(out: Path) -> list[QARecord]:
    """Every QA record of a build folder (none when it has scenes but no ``qa/`` shards yet)."""
    out = Path(out)
    if not out.is_dir():
        raise FileNotFoundError(f"{out}: no such build folder")
    has_qa = (out / "qa").is_dir() and any((out / "qa").rglob("*.jsonl"))
    has_scenes = (out / "scenes").is_dir() and any((out / "scenes").iterdir())
    if not has_qa and not has_scenes:
        raise FileNotFoundError(f"{out}: not a build folder (no qa/ shards and no scenes/); build one with `vlm3r-data build`")
    return read_qa_records(out) if has_qa else []


def build_stats(out: Path, records: Sequence[QARecord] | None = None) -> BuildStats:
    """Statistics of a build folder (its ``qa/`` shards and ``scenes/``); ``records`` when already
    read (``build_records``)."""
    return compute_stats(build_records(out) if records is None else list(records), scene_inventory(Path(out)))
