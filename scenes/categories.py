"""Each source's category vocabulary, as VSI-Bench defines it (DESIGN.md section 3).

A raw annotation label becomes a category only when the source's keep-list names it exactly (the
label stripped of surrounding white space, case as annotated); then the source's remap renames it.
There is no shared list: ScanNet keeps ``mattress`` apart from ``bed`` and merges ``desk`` into
``table``; ScanNet++ keeps ``trash can``, ``table lamp`` and ``heater`` as categories of their own;
ARKitScenes keeps ``washer``, ``toilet``, ``stove`` ... The lists live in
``scenes/data/vocabularies.json``; this module only reads them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from types import MappingProxyType

from vlm3r.schemas.scene import ObjectInstance

SOURCES = ("scannet", "scannetpp", "arkitscenes")
"""Sources with a raw-label vocabulary (the demo is written in one of their layouts)."""


@dataclass(frozen=True)
class Vocabulary:
    """One source's rule: ``keep`` (exact raw labels) then ``remap`` (raw label -> category)."""

    source: str
    keep: frozenset[str]
    remap: Mapping[str, str]

    def category(self, raw_label: str) -> str | None:
        """The category of a raw label, or None when the source's vocabulary drops it."""
        label = raw_label.strip()
        if label not in self.keep:
            return None
        return self.remap.get(label, label)

    @property
    def categories(self) -> frozenset[str]:
        """Every category this source can produce."""
        return frozenset(self.remap.get(k, k) for k in self.keep)


@cache
def vocabulary(source: str) -> Vocabulary:
    """The vocabulary of ``source`` (one of :data:`SOURCES`); KeyError naming the known ones."""
    data = json.loads(resources.files("vlm3r.scenes.data").joinpath("vocabularies.json").read_text("utf-8"))
    if source not in SOURCES:
        raise KeyError(f"no category vocabulary for source {source!r}; known: {', '.join(SOURCES)}")
    entry = data[source]
    return Vocabulary(source, frozenset(entry["keep"]), MappingProxyType(dict(entry["remap"])))


def source_category(source: str, raw_label: str) -> str | None:
    """The category ``source``'s vocabulary gives a raw label (None: dropped)."""
    return vocabulary(source).category(raw_label)


def category_counts(objects: Iterable[ObjectInstance]) -> dict[str, int]:
    """``{category: instances}``, sorted by category."""
    counts: dict[str, int] = {}
    for o in objects:
        counts[o.category] = counts.get(o.category, 0) + 1
    return dict(sorted(counts.items()))
