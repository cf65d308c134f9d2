"""Benchmark category names and the rules mapping dataset labels onto them.

The lists live in ``scenes/data/categories.json``; this module only reads them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

from vlm3r.schemas.scene import ObjectInstance


@dataclass(frozen=True)
class CategoryRules:
    scannet20: frozenset[str]
    scannet200: frozenset[str]
    synonyms: dict[str, str]

    @property
    def all(self) -> frozenset[str]:
        return self.scannet20 | self.scannet200

    def normalise(self, label: str) -> str:
        """Lower-case, strip, apply synonyms (``trash can`` -> ``trash bin``)."""
        key = " ".join(label.strip().lower().split())
        return self.synonyms.get(key, key)

    def to_benchmark(self, *candidates: str | None) -> str | None:
        """The first candidate label that names a benchmark category after normalisation, else None."""
        for label in candidates:
            if label:
                name = self.normalise(label)
                if name in self.all:
                    return name
        return None


@cache
def category_rules() -> CategoryRules:
    data = json.loads(resources.files("vlm3r.scenes.data").joinpath("categories.json").read_text("utf-8"))
    return CategoryRules(
        scannet20=frozenset(data["scannet20_subset"]),
        scannet200=frozenset(data["scannet200_subset"]),
        synonyms={k.lower(): v for k, v in data["synonyms"].items()},
    )


@cache
def _dataset_synonyms() -> dict[str, dict[str, str]]:
    data = json.loads(resources.files("vlm3r.scenes.data").joinpath("categories.json").read_text("utf-8"))
    return {src: {k.lower(): v for k, v in syn.items()} for src, syn in data.get("dataset_synonyms", {}).items()}


def source_category(source: str, raw_label: str) -> str | None:
    """Benchmark category of a raw label of ``source`` ("scannetpp", "arkitscenes"): the source's own
    synonyms first (``scenes/data/categories.json`` ``dataset_synonyms``), then the shared rules."""
    key = " ".join(raw_label.strip().lower().split())
    mapped = _dataset_synonyms().get(source, {}).get(key)
    return category_rules().to_benchmark(mapped, raw_label)


def category_counts(objects: list[ObjectInstance]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for o in objects:
        counts[o.category] = counts.get(o.category, 0) + 1
    return dict(sorted(counts.items()))
