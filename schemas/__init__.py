"""The contract: scene graph, QA record, training conversation, their file forms and JSON Schemas.
Imports nothing of ours (third-party only)."""

from __future__ import annotations

import json
from pathlib import Path

from vlm3r.schemas.qa import QARecord
from vlm3r.schemas.scene import SCHEMA_VERSION, FrameMetadata, SceneMetadata

SCHEMAS = {"scene_metadata": SceneMetadata, "frame_metadata": FrameMetadata, "qa_record": QARecord}


def write_json_schemas(out_dir: str | Path) -> list[Path]:
    """Write ``<name>.schema.json`` for every model in ``SCHEMAS``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, model in SCHEMAS.items():
        schema = model.model_json_schema()
        schema["$id"] = f"vlm3r/{name}/{SCHEMA_VERSION}"
        p = out / f"{name}.schema.json"
        p.write_text(json.dumps(schema, indent=2) + "\n", encoding="utf-8")
        paths.append(p)
    return paths


__all__ = ["SCHEMAS", "SCHEMA_VERSION", "FrameMetadata", "QARecord", "SceneMetadata", "write_json_schemas"]
