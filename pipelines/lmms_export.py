"""``vlm3r-data export-lmms-eval OUT --to DIR``: a folder that lmms-eval runs as it is.

From a build's benchmark files (``OUT/benchmark/vsibench``, ``OUT/benchmark/vsti``; written by
``vlm3r-data build --benchmark vsibench --benchmark vsti``) it writes::

    DIR/README.md                              the lmms-eval command
    DIR/data/<task>/test.parquet               the benchmark rows (schemas.rows format), every source
    DIR/vsibench/<dataset>/<scene_name>.mp4    videos where lmms-eval's vsibench task looks for them
    DIR/vstibench/<dataset>/<scene_name>.mp4   (= <video folder>/<video_path> for VSTI-Bench rows)
    DIR/tasks/<task>/<task>.yaml, utils.py     task configs for ``lmms-eval --include_path DIR/tasks``

The videos are symbolic links to the build's ``scenes/<source>/<scene>/video.mp4`` (copies with
``copy=True``). ``vlm3r_vsibench`` scores with lmms-eval's own ``vsibench`` task functions
(``lmms_eval.tasks.vsibench.utils``), unchanged; only ``doc_to_visual`` is ours, so that videos are
found in this folder instead of under ``$HF_HOME``. The video folder is also exactly lmms-eval's
``$HF_HOME/vsibench`` layout: ``HF_HOME=DIR lmms-eval --tasks vsibench`` on the official task would
find them too. ``vlm3r_vstibench`` uses ``pipelines.eval.lmms_tasks`` (lmms-eval has no VSTI-Bench
task), so vlm3r must be importable where lmms-eval runs. The yaml files name the data by absolute
path: export again after moving the folder.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlm3r.pipelines.exports import json_lines, write_parquet
from vlm3r.schemas.io import atomic_write_bytes, atomic_write_json, check_build_table
from vlm3r.scenes.base import check_scene_id
from vlm3r.schemas.rows import BENCHMARK_QUESTION_TYPES, video_relpath

MARKER = ".vlm3r-lmms-eval.json"


@dataclass(frozen=True)
class LmmsTask:
    """One exported lmms-eval task: the build's benchmark folder it reads and the official task it
    stands in for."""

    benchmark: str  # OUT/benchmark/<benchmark>
    row_format: str  # schemas.rows format of those rows
    task: str  # lmms-eval task name
    video_dir: str  # DIR/<video_dir>: the official task's cache_dir
    required_types: tuple[str, ...] = ()  # question types the official aggregation cannot do without


LMMS_TASKS: tuple[LmmsTask, ...] = (
    LmmsTask(
        "vsibench",
        "vsibench",
        "vlm3r_vsibench",
        "vsibench",
        # lmms-eval's vsibench aggregation pops these three means: without one it raises KeyError.
        ("object_rel_direction_easy", "object_rel_direction_medium", "object_rel_direction_hard"),
    ),
    LmmsTask("vsti", "vstibench", "vlm3r_vstibench", "vstibench"),
)

_GENERATION = """generation_kwargs:
  max_new_tokens: 16
  temperature: 0
  top_p: 1.0
  num_beams: 1
  do_sample: false
lmms_eval_specific_kwargs:
  default:
    pre_prompt: ""
    mca_post_prompt: "Answer with the option's letter from the given choices directly."
    na_post_prompt: "Please answer the question using a single word or phrase."
metadata:
  - version: 0.0
"""

_VSI_METRICS = (
    ("vsibench_overall", "vsibench_aggregate_overall"),
    ("obj_appearance_order_accuracy", "vsibench_aggregate_obj_appearance_order_accuracy"),
    ("object_abs_distance_mra", "vsibench_aggregate_object_abs_distance_mra"),
    ("object_counting_mra", "vsibench_aggregate_object_counting_mra"),
    ("object_rel_distance_accuracy", "vsibench_aggregate_object_rel_distance_accuracy"),
    ("object_size_estimation_mra", "vsibench_aggregate_object_size_estimation_mra"),
    ("room_size_estimation_mra", "vsibench_aggregate_room_size_estimation_mra"),
    ("route_planning_accuracy", "vsibench_aggregate_route_planning_accuracy"),
    ("object_rel_direction_accuracy", "vsibench_aggregate_object_rel_direction_accuracy"),
)


def task_yaml(task: LmmsTask, data_file: Path) -> str:
    """The lmms-eval task config (local Parquet data, our ``doc_to_visual``, the official scoring)."""
    head = (
        f"task: {task.task}\n"
        "dataset_path: parquet\n"
        "dataset_kwargs:\n"
        "  data_files:\n"
        f"    test: {json.dumps(str(data_file))}\n"
        "test_split: test\n"
        "output_type: generate_until\n"
        "process_docs: !function utils.process_docs\n"
        "doc_to_visual: !function utils.doc_to_visual\n"
        'doc_to_target: "ground_truth"\n'
    )
    if task.row_format == "vsibench":
        body = (
            "doc_to_text: !function utils.vsibench_doc_to_text\n"
            "doc_to_messages: !function utils.doc_to_messages\n"
            "process_results: !function utils.vsibench_process_results\n"
            "metric_list:\n"
            + "".join(
                f"  - metric: {m}\n    aggregation: !function utils.{agg}\n    higher_is_better: true\n"
                for m, agg in _VSI_METRICS
            )
        )
    else:
        body = (
            "doc_to_text: !function utils.vstibench_doc_to_text\n"
            "doc_to_messages: !function utils.doc_to_messages\n"
            "process_results: !function utils.vstibench_process_results\n"
            "metric_list:\n"
            "  - metric: vstibench_score\n"
            "    aggregation: !function utils.vstibench_aggregate_results\n"
            "    higher_is_better: true\n"
        )
    return head + body + _GENERATION


def task_utils(task: LmmsTask) -> str:
    """The task's ``utils.py``: the scoring functions imported, videos resolved in this folder."""
    if task.row_format == "vsibench":
        imports = (
            "# lmms-eval's own VSI-Bench task functions, unchanged.\n"
            "from lmms_eval.tasks.vsibench.utils import (  # noqa: F401\n"
            "    process_docs,\n    vsibench_doc_to_text as _doc_to_text,\n    vsibench_doc_to_text,\n"
            "    vsibench_process_results,\n"
            + "".join(f"    {agg},\n" for _, agg in _VSI_METRICS)
            + ")\n"
        )
        video = 'VIDEOS / doc["dataset"] / (doc["scene_name"] + ".mp4")'
    else:
        imports = (
            "# VSTI-Bench's task contract as vlm3r implements it (lmms-eval ships no VSTI-Bench task).\n"
            "from vlm3r.pipelines.eval.lmms_tasks import (  # noqa: F401\n"
            "    process_docs,\n    vstibench_doc_to_text as _doc_to_text,\n    vstibench_doc_to_text,\n"
            "    vstibench_process_results,\n    vstibench_aggregate_results,\n)\n"
        )
        video = 'VIDEOS / doc["video_path"]'
    return (
        f'"""Written by `vlm3r-data export-lmms-eval` for the task {task.task}."""\n\n'
        "from pathlib import Path\n\n"
        + imports
        + f'\nVIDEOS = Path(__file__).resolve().parents[2] / "{task.video_dir}"\n\n\n'
        "def doc_to_visual(doc):\n"
        f"    path = {video}\n"
        "    if not path.is_file():\n"
        '        raise FileNotFoundError(f"{path}: video missing from the export")\n'
        "    return [str(path)]\n\n\n"
        "def doc_to_messages(doc, lmms_eval_specific_kwargs=None):\n"
        '    content = [{"type": "video", "url": p} for p in doc_to_visual(doc)]\n'
        '    content.append({"type": "text", "text": _doc_to_text(doc, lmms_eval_specific_kwargs or {})})\n'
        '    return [{"role": "user", "content": content}]\n'
    )


@dataclass
class LmmsExport:
    """What an export wrote: rows per task, videos linked, rows left out (and why), tasks skipped."""

    to: str
    rows: dict[str, int] = field(default_factory=dict)
    videos: dict[str, int] = field(default_factory=dict)
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def command(self) -> str:
        tasks = ",".join(t.task for t in LMMS_TASKS if self.rows.get(t.task))
        return (
            f"lmms-eval --model <model> --model_args <args> --tasks {tasks} "
            f"--include_path {Path(self.to) / 'tasks'} --batch_size 1 --output_path <results>"
        )


def _read_rows(folder: Path) -> list[tuple[str, dict[str, Any]]]:
    """(source, row) for every row of ``<source>.parquet`` in a benchmark folder."""
    import pyarrow.parquet as pq

    out = []
    for f in sorted(folder.glob("*.parquet")):
        if f.name.startswith("."):
            continue
        check_build_table(f)
        try:
            rows = pq.read_table(f).to_pylist()
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise ValueError(f"{f}: not a readable Parquet table ({exc})") from None
        out += [(f.stem, r) for r in rows]
    return out


def _video_relpath(task: LmmsTask, row: dict[str, Any]) -> str | None:
    """Where the official task looks for this row's video (relative to the video folder); None when
    the row's dataset or scene name could not be a safe file name."""
    dataset, scene = str(row.get("dataset") or ""), str(row.get("scene_name") or "")
    try:
        expected = video_relpath(check_scene_id(dataset), check_scene_id(scene))
    except ValueError:
        return None
    if task.row_format == "vstibench" and row.get("video_path") != expected:
        return None
    return expected


def _prepare_target(to: Path) -> None:
    if to.exists() and not to.is_dir():
        raise ValueError(f"{to}: exists and is not a folder")
    if to.is_dir() and any(to.iterdir()) and not (to / MARKER).is_file():
        raise ValueError(f"{to}: folder is not empty and is not an earlier lmms-eval export; choose a new --to")
    to.mkdir(parents=True, exist_ok=True)


def export_lmms_eval(out: Path, to: Path, copy: bool = False) -> LmmsExport:
    """Write the lmms-eval folder for every benchmark the build has (see module docstring)."""
    out, to = Path(out), Path(to).resolve()
    if not (out / "benchmark").is_dir():
        raise FileNotFoundError(
            f"{out}: no benchmark/ folder; build with --benchmark vsibench --benchmark vsti first"
        )
    _prepare_target(to)
    report = LmmsExport(to=str(to))
    for task in LMMS_TASKS:
        folder = out / "benchmark" / task.benchmark
        if not folder.is_dir():
            report.skipped[task.task] = f"{folder}: not in the build (build with --benchmark {task.benchmark})"
            continue
        kept, links, dropped = [], {}, Counter()
        known = set(BENCHMARK_QUESTION_TYPES[task.row_format])
        for source, row in _read_rows(folder):
            rel = _video_relpath(task, row)
            if row.get("question_type") not in known:
                dropped["question type unknown to the official task"] += 1
            elif rel is None:
                dropped["unsafe dataset or scene name"] += 1
            elif not (out / "scenes" / source / row["scene_name"] / "video.mp4").is_file():
                dropped["no video in the build (e.g. a vsibench-meta build)"] += 1
            else:
                kept.append(row)
                links[rel] = out / "scenes" / source / row["scene_name"] / "video.mp4"
        report.dropped[task.task] = dict(dropped)
        missing = [t for t in task.required_types if not any(r["question_type"] == t for r in kept)]
        if not kept or missing:
            why = f"no question types {', '.join(missing)}, which its aggregation needs" if kept else "no rows with a video"
            report.skipped[task.task] = f"{folder}: {why}"
            continue
        _write_videos(to / task.video_dir, links, copy)
        data = to / "data" / task.task / "test.parquet"
        data.parent.mkdir(parents=True, exist_ok=True)
        write_parquet(json_lines(kept), task.row_format, data)
        task_dir = to / "tasks" / task.task
        atomic_write_bytes(task_dir / f"{task.task}.yaml", task_yaml(task, data).encode("utf-8"))
        atomic_write_bytes(task_dir / "utils.py", task_utils(task).encode("utf-8"))
        report.rows[task.task], report.videos[task.task] = len(kept), len(links)
    if not report.rows:
        reasons = "; ".join(report.skipped.values()) or "no benchmark rows"
        raise ValueError(f"{out}: nothing to export ({reasons})")
    atomic_write_bytes(to / "README.md", _readme(report).encode("utf-8"))
    atomic_write_json(to / MARKER, {"build": str(Path(out).resolve()), "rows": report.rows})
    return report


def _write_videos(root: Path, links: dict[str, Path], copy: bool) -> None:
    for rel, src in sorted(links.items()):
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
        tmp.unlink(missing_ok=True)
        if copy:
            shutil.copyfile(src, tmp)
        else:
            os.symlink(src.resolve(), tmp)
        os.replace(tmp, dest)


def _readme(report: LmmsExport) -> str:
    lines = [
        "# lmms-eval export (written by `vlm3r-data export-lmms-eval`)",
        "",
        "Run:",
        "",
        "```bash",
        report.command(),
        "```",
        "",
        "| task | rows | videos |",
        "|---|---|---|",
    ]
    lines += [f"| {t} | {n} | {report.videos[t]} |" for t, n in report.rows.items()]
    return "\n".join(lines) + "\n"
