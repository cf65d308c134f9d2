"""Dataset name -> adapter factory. Adapters are imported lazily, when asked for."""

from __future__ import annotations

import difflib
import importlib
from pathlib import Path

from vlm3r.scenes.base import SceneAdapter

# dataset name -> "module:Class"; the class takes (root, dataset=name).
ADAPTERS: dict[str, str] = {
    "scannet": "vlm3r.scenes.scannet:ScanNetAdapter",
    "scannetpp": "vlm3r.scenes.scannetpp:ScanNetPPAdapter",
    "arkitscenes": "vlm3r.scenes.arkitscenes:ARKitScenesAdapter",
    "vsibench-meta": "vlm3r.scenes.vsibench_meta:VsiBenchMetaAdapter",
}


def dataset_names() -> list[str]:
    return sorted(ADAPTERS)


def make_adapter(dataset: str, root: str | Path, name: str | None = None, **options: object) -> SceneAdapter:
    """The adapter for ``dataset`` reading ``root``; an unknown name raises KeyError with suggestions.
    ``name``: the dataset name the adapter reports (output folders, scene graphs); default ``dataset``
    (the demo reads synthetic scans in a real layout under the name "demo"; a vsibench-meta file
    reports ``vsibench-meta-<its dataset>``, see ``scenes.vsibench_meta.output_key``). ``options``: the
    adapter's own keyword arguments (e.g. ScanNet++'s ``pose_source``)."""
    if dataset not in ADAPTERS:
        close = difflib.get_close_matches(dataset, ADAPTERS, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(dataset_names())}"
        raise KeyError(f"unknown dataset {dataset!r}{hint}")
    module, cls = ADAPTERS[dataset].split(":")
    default = None if dataset == "vsibench-meta" else dataset  # keyed by the file's own datasets
    return getattr(importlib.import_module(module), cls)(Path(root), dataset=name or default, **options)
