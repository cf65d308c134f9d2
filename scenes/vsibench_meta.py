"""VSI-Bench meta-info (scene graphs without frames) -> scene graphs, so that the metadata-only
tasks can run on VSI-Bench's own scenes.

Expected input: ``--root FILE.json``, one JSON file in VSI-Bench's meta-info format
(see :mod:`vlm3r.schemas.vsibench_meta`)::

    FILE.json   {scene_id: {room_size, room_center, object_counts, video_path, dataset,
                            object_bbox: {category: [{centroid, axesLengths, normalizedAxes, min, max}]}}}

Outputs are keyed ``vsibench-meta-<dataset>`` (``output_key``). Scene ids are the file's keys (in file order). Instance ids are 0, 1, ... in file order
(categories in their order, boxes in theirs), so ``export_meta`` of the loaded scenes gives the file
back. Each scene keeps the ``dataset`` its entry names (e.g. "scannet"), as VSI-Bench's questions do;
there are no frames (``AdaptedScene.frames`` is None). Boxes are in the file's z-up world, metres.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from vlm3r.scenes.base import AdaptedScene, AdapterConfig, SceneError
from vlm3r.schemas.vsibench_meta import scene_from_meta


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object that names a key twice (``json`` would silently keep the last) is an error."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def output_key(entries: dict[str, Any]) -> str:
    """The name a build keys this file's outputs by: ``vsibench-meta-<dataset>`` from the datasets
    its entries name (``vsibench-meta-arkitscenes-scannet`` for a file of several), so that the
    ScanNet, ScanNet++ and ARKitScenes meta-info files built into one folder keep their own QA and
    never share a real adapter's folders (``scannet``). Entries without a dataset count as
    ``unknown``."""
    names = {e.get("dataset") if isinstance(e, dict) else None for e in entries.values()}
    parts = sorted({n if isinstance(n, str) and n and n.replace("_", "").isalnum() else "unknown" for n in names})
    return "-".join(["vsibench-meta", *parts]) if parts else "vsibench-meta"


class VsiBenchMetaAdapter:
    """Adapter for one VSI-Bench meta-info JSON file (see the module docstring)."""

    def __init__(self, root: str | Path, dataset: str | None = None) -> None:
        self.root = Path(root)
        self._data: dict[str, Any] | None = None
        self.dataset = dataset or output_key(self._entries())

    def _entries(self) -> dict[str, Any]:
        if self._data is None:
            if not self.root.is_file():
                raise FileNotFoundError(f"{self.root}: not a file (expected a VSI-Bench meta-info JSON)")
            try:
                data = json.loads(self.root.read_text(encoding="utf-8"), object_pairs_hook=_unique_keys)
            except (OSError, ValueError, RecursionError) as exc:  # ValueError: bad JSON, a duplicate key
                raise FileNotFoundError(f"{self.root}: not readable JSON ({exc})") from exc
            if not isinstance(data, dict):
                raise FileNotFoundError(f"{self.root}: expected a JSON object keyed by scene id")
            self._data = data
        return self._data

    def list_scenes(self) -> list[str]:
        return list(self._entries())

    def load(self, scene_id: str, config: AdapterConfig) -> AdaptedScene:
        entry = self._entries().get(scene_id)
        if entry is None:
            raise SceneError(self.root, f"no scene {scene_id!r}")
        if not isinstance(entry, dict):
            raise SceneError(self.root, f"{scene_id}: entry is not an object")
        try:
            scene = scene_from_meta(scene_id, entry)
        except (KeyError, TypeError, ValueError, ValidationError) as exc:
            reason = " ".join(str(exc).split())
            raise SceneError(self.root, f"{scene_id}: malformed entry ({type(exc).__name__}: {reason[:300]})") from exc
        scene.source_root = str(self.root.parent.resolve())
        scene.source_files = [self.root.name]
        return AdaptedScene(scene=scene, frames=None)
