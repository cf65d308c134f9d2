"""Drafts of one task over many scenes -> final QA records (ids, balanced letters)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vlm3r.datagen.base import Draft, Task
from vlm3r.datagen.choices import balanced_positions, lettered_options
from vlm3r.schemas.seeding import stable_hash
from vlm3r.schemas.qa import QARecord
from vlm3r.schemas.scene import SceneMetadata


@dataclass(frozen=True)
class SceneRef:
    """What a QA record needs of its scene."""

    dataset: str
    scene_id: str
    video_path: str | None = None


def dedup(drafts: list[Draft]) -> list[Draft]:
    """Drop repeats of the same question (same text and same options) within one scene."""
    seen: set[tuple] = set()
    out = []
    for d in drafts:
        key = (d.question, frozenset(d.choices or ()))
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def finalize_records(
    task: Task,
    per_scene: list[tuple[SceneRef | SceneMetadata, list[Draft]]],
    seed: int,
    splits: dict[str, str] | None = None,
) -> list[QARecord]:
    """Number the drafts, assign multiple-choice letters balanced over the whole output.

    ``per_scene`` may come in any order; records are sorted by (dataset, scene id) first, so the
    result depends only on the drafts and the seed.
    """
    items = [
        (scene, k, d)
        for scene, drafts in sorted(per_scene, key=lambda sd: (sd[0].dataset, sd[0].scene_id))
        for k, d in enumerate(dedup(drafts))
    ]
    mc = [i for i, (_, _, d) in enumerate(items) if d.choices]
    rng = np.random.default_rng([seed, stable_hash("letters"), stable_hash(task.name)])
    positions = dict(zip(mc, balanced_positions([len(items[i][2].choices or ()) for i in mc], rng)))
    records = []
    for i, (scene, k, d) in enumerate(items):
        options, letter = lettered_options(d.choices, positions[i]) if i in positions else (None, None)
        records.append(
            QARecord(
                id=f"{task.name}-{scene.dataset}-{scene.scene_id}-{k:04d}",
                dataset=scene.dataset,
                scene_name=scene.scene_id,
                question_type=task.name,
                question=d.question,
                options=options,
                ground_truth=d.answer,
                mc_answer=letter,
                video_path=scene.video_path,
                split=(splits or {}).get(scene.scene_id),
                task_version=task.version,
                categories=list(d.categories),
                frame_ids=list(d.frame_ids),
                extra=dict(d.extra),
            )
        )
    return records
