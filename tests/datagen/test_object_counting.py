from collections import Counter

import numpy as np

from vlm3r.datagen import TASKS
from vlm3r.datagen.records import finalize_records
from vlm3r.schemas.scene import ObjectInstance, OrientedBox, SceneMetadata


def make_scene(scene_id: str, categories: list[str]) -> SceneMetadata:
    objects = [
        ObjectInstance(
            instance_id=i, category=c, raw_label=c,
            box=OrientedBox.from_arrays([i, 0, 0.5], [0.5, 0.5, 1.0], np.eye(3)),
        )
        for i, c in enumerate(categories)
    ]
    return SceneMetadata(
        scene_id=scene_id, dataset="test", room_size=20.0, room_center=[0, 0, 1],
        object_counts=dict(Counter(categories)), objects=objects,
    )


def test_counts_only_categories_with_two_or_more():
    scene = make_scene("s0", ["chair"] * 4 + ["table"] + ["lamp"] * 2)
    drafts = TASKS.get("object_counting").generate(scene, None, np.random.default_rng(0))
    assert {d.categories[0]: d.answer for d in drafts} == {"chair": 4, "lamp": 2}
    assert drafts[0].question == "How many chair(s) are in this room?"
    assert all(d.choices[0] == str(d.answer) and len(set(d.choices)) == 4 for d in drafts)


def test_records_letters_balanced_and_answer_correct():
    task = TASKS.get("object_counting")
    per_scene = []
    for k in range(30):
        scene = make_scene(f"s{k:02d}", ["chair"] * (2 + k % 5) + ["lamp"] * 3 + ["door"] * 2)
        per_scene.append((scene, task.generate(scene, None, np.random.default_rng(k))))
    records = finalize_records(task, per_scene, seed=0)
    letters = Counter(r.mc_answer for r in records)
    assert len(records) == 90 and max(letters.values()) - min(letters.values()) <= 1
    for r in records:
        chosen = r.options["ABCD".index(r.mc_answer)]
        assert chosen == f"{r.mc_answer}. {r.ground_truth}"
    # Independent of the order scenes arrive in.
    again = finalize_records(task, list(reversed(per_scene)), seed=0)
    assert [r.model_dump() for r in again] == [r.model_dump() for r in records]
