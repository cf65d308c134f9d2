"""The file forms of our records: atomic writes (a temporary name in the same folder, then rename),
JSON of models, JSONL reading with file:line errors, and where a build keeps its QA JSONL."""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from vlm3r.schemas.qa import QARecord
from vlm3r.schemas.rows import record_from_qa_row


MAX_IMAGE_PIXELS = 4096 * 4096
"""Largest image (colour, depth, instance mask, a build's frame) any reader accepts; real scans are
at most 1920 x 1440 (ARKitScenes high-res). Larger ones are refused from their headers, before decoding."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=1, ensure_ascii=False) + "\n").encode("utf-8"))


def model_json(model: BaseModel) -> bytes:
    """Deterministic JSON of a pydantic model (field order = declaration order)."""
    return (model.model_dump_json(indent=1) + "\n").encode("utf-8")


def read_jsonl(path: Path) -> Iterator[tuple[Any, str]]:
    """(parsed line, "path:line") for every non-blank line of a JSONL file; a line that is not JSON,
    not UTF-8 or nested too deeply raises ValueError naming the file and line."""
    with open(path, "rb") as fh:
        for n, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise ValueError(f"{path}:{n}: not UTF-8 text") from None
            if line.strip():
                try:
                    row = json.loads(line)
                except RecursionError:
                    raise ValueError(f"{path}:{n}: JSON nested too deeply") from None
                except ValueError:
                    raise ValueError(f"{path}:{n}: not valid JSON") from None
                yield row, f"{path}:{n}"


def replace_dir(tmp: Path, final: Path) -> None:
    """Move a completed temporary directory into place, replacing an older one."""
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, final)


class IncompleteExport(ValueError):
    """A folder of a build whose export did not finish (killed, or a build is writing it now)."""


def shard_source(path: Path) -> str | None:
    """``scannet`` for ``scannet-00003.jsonl`` (a build's numbered shard), else None."""
    stem, _, k = path.stem.rpartition("-")
    return stem if stem and len(k) == 5 and k.isdigit() else None


def check_export(folder: Path, source: str, n_shards: int, key: str = "shards", marker_dir: Path | None = None) -> None:
    """Raise ``IncompleteExport`` unless ``source``'s completion marker (``<source>.done.json`` in
    ``marker_dir``, default ``folder``) exists and counts ``n_shards`` files under ``key``."""
    marker = (marker_dir or folder) / f"{source}.done.json"
    try:
        expected = json.loads(marker.read_text(encoding="utf-8")).get(key)
    except (OSError, ValueError, AttributeError):
        raise IncompleteExport(
            f"{folder}: the {source} export is incomplete (no completion marker {marker.name}): "
            "a build was interrupted or is still running; re-run it"
        ) from None
    if expected != n_shards:
        raise IncompleteExport(
            f"{folder}: the {source} export is incomplete ({n_shards} shard files, its marker {marker.name} "
            f"says {expected}); re-run the build"
        )


def _check_build_folder(folder: Path, source: str) -> None:
    """``source``'s export in a build's ``qa/<task>/`` or ``benchmark/<name>/`` finished; other
    folders are not checked."""
    if folder.parent.name in ("qa", "benchmark"):
        check_export(folder, source, len(list(folder.glob(f"{source}-[0-9][0-9][0-9][0-9][0-9].jsonl"))))


def check_build_files(files: list[Path]) -> None:
    """Every build shard among ``files`` (``<source>-<k>.jsonl``) belongs to a completed export."""
    for folder, source in sorted({(f.parent, shard_source(f)) for f in files if shard_source(f)}):
        _check_build_folder(folder, source)


def check_build_table(path: Path) -> None:
    """A build's ``<source>.parquet`` belongs to a completed export."""
    _check_build_folder(path.parent, path.stem)


def qa_files(path: Path) -> list[Path]:
    """The QA JSONL files under ``path``: the file itself, ``OUT/qa/<task>/*.jsonl`` of a build
    folder, or every ``*.jsonl`` below a folder; sorted. A build's shards must come from completed
    exports (``check_build_files``)."""
    path = Path(path)
    if path.is_file():
        check_build_files([path])
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such file or folder")
    root = path / "qa" if (path / "qa").is_dir() else path
    files = sorted(p for p in root.rglob("*.jsonl") if not p.name.startswith("."))
    if not files:
        raise FileNotFoundError(f"{path}: no QA .jsonl files found")
    check_build_files(files)
    return files


def read_qa_records(path: Path) -> list[QARecord]:
    """Every ``QARecord`` of a JSONL file of ``qa`` rows or a build folder (see ``qa_files``)."""
    out: list[QARecord] = []
    for f in qa_files(path):
        for row, where in read_jsonl(f):
            try:
                if not isinstance(row, dict):
                    raise ValueError("not a JSON object")
                out.append(record_from_qa_row(row))
            except ValueError as exc:
                first = str(exc).splitlines()
                raise ValueError(f"{where}: not a QA record ({first[0] if first else exc})") from None
    return out


def train_shard_files(root: Path, tasks: Sequence[str] | None = None) -> list[tuple[str, str, Path]]:
    """``(task, source, path)`` of every training shard under ``root/train``, sorted; only ``tasks`` when given."""
    root = Path(root)
    train = root / "train"
    if not train.is_dir():
        raise FileNotFoundError(f"{train}: no training shards (is {root} the output folder of `vlm3r-data build`?)")
    out = []
    for path in sorted(train.glob("*/*.jsonl")):
        if path.name.startswith("."):
            continue
        task = path.parent.name
        if tasks is not None and task not in tasks:
            continue
        source = path.stem.rsplit("-", 1)[0] if "-" in path.stem else path.stem
        out.append((task, source, path))
    if (root / "qa").is_dir():  # a vlm3r build: every task's export must have finished
        for (task, source), n in sorted(Counter((task, source) for task, source, _ in out).items()):
            check_export(train / task, source, n, key="train_shards", marker_dir=root / "qa" / task)
    if tasks is not None:
        missing = sorted(set(tasks) - {t for t, _, _ in out})
        if missing:
            raise FileNotFoundError(f"{train}: no shards for task(s) {', '.join(missing)}")
    return out
