"""``vlm3r-data build``: adapt every scene (in parallel, resumable), then run the task generators.

Output layout under ``OUT``::

    scenes/<dataset>/<scene>/scene_metadata.json, frame_metadata.json, frames/<frame_id>.jpg, video.mp4
    manifest/<dataset>/<scene>.json          status ok|skipped, reason, config fingerprint
    qa/<task>/<dataset>-<k>.jsonl            QA shards (fixed size, numbered), + <dataset>.done.json
    qa/<task>/<dataset>.parquet              the same records as a table
    qa/summary.<dataset>.json                per-task counts, answer and letter distributions
    train/<task>/<dataset>-<k>.jsonl         LLaVA conversations (train split, eval scenes excluded)
    benchmark/<name>/<dataset>-<k>.jsonl     with --benchmark: a test set in its benchmark's row format (+ .parquet)
    mix/<preset>/                            with --preset: a training mix of every source in OUT (pipelines.mix)
    build_summary.<dataset>.json
    README.md                                dataset card: every folder as a `datasets` config

A scene's directory is written under a temporary name and renamed when complete; its manifest entry
is written after that. A re-run skips scenes whose manifest says ok for the same configuration, so
an interrupted build resumes. QA is regenerated from the scene graphs on disk at the end of every
run; it depends only on them and the seed, not on worker count or completion order.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import shutil
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

from PIL import Image
from pydantic import ValidationError

from vlm3r import __version__
from vlm3r.datagen import TASKS
from vlm3r.datagen.answerability import DEFAULT_MIN_AREA, Visibility, keep_answerable
from vlm3r.datagen.records import SceneRef, finalize_records
from vlm3r.pipelines.dataset_card import write_dataset_card
from vlm3r.pipelines.executors import make_executor
from vlm3r.pipelines.exports import export_task, write_rows
from vlm3r.pipelines.mix import mix_builds
from vlm3r.pipelines.presets import BENCHMARKS, TRAINING_MIXES, select_benchmark
from vlm3r.schemas.io import atomic_write_json, model_json, replace_dir
from vlm3r.pipelines.splits import assign_splits, mark_eval_scenes, read_split_lists, vsibench_eval_scenes
from vlm3r.scenes.base import AdaptedScene, AdapterConfig, SceneAdapter, SceneError, case_collisions, check_scene_id
from vlm3r.schemas.rows import ROW_BUILDERS
from vlm3r.schemas.seeding import scene_rng
from vlm3r.schemas.scene import SCHEMA_VERSION, FrameMetadata, SceneMetadata

@dataclass(frozen=True)
class BuildConfig:
    """Everything that shapes a build's output (the fingerprint covers the scene-level part)."""

    out: Path
    adapter: AdapterConfig = field(default_factory=AdapterConfig)
    workers: int = 1
    executor: str = "local"  # "local" | "ray"; outputs do not depend on it
    ray_address: str | None = None
    tasks: tuple[str, ...] | None = None
    caps: dict[str, int] = field(default_factory=dict)  # task -> max questions per scene
    split_lists: dict[str, Path] | None = None  # split name -> file of scene ids
    val_fraction: float = 0.1  # seeded split for scenes in no list
    exclude_eval_scenes: bool = True  # keep VSI-Bench evaluation scenes out of training exports
    benchmarks: tuple[str, ...] = ()  # test sets of pipelines.presets.BENCHMARKS ("vsibench", "vsti")
    training_mixes: tuple[str, ...] = ()  # presets.TRAINING_MIXES drawn from OUT/train into OUT/mix/<preset>
    write_video: bool = True
    video_fps: float = 2.0
    answerable: bool = True  # keep only questions whose objects the sampled frames show (scenes with frames)
    answerable_min_area: float = DEFAULT_MIN_AREA  # share of the frame an instance must cover to count as seen

    def fingerprint(self) -> str:
        scene_part = {
            "adapter": asdict(self.adapter),
            "write_video": self.write_video,
            "video_fps": self.video_fps,
            "schema": SCHEMA_VERSION,
            "vlm3r": __version__,
        }
        return hashlib.sha1(json.dumps(scene_part, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class SceneResult:
    scene_id: str
    status: str  # "ok" | "skipped"
    reason: str | None = None
    seconds: float = 0.0
    num_objects: int = 0
    num_frames: int = 0
    fingerprint: str = ""


@dataclass
class BuildSummary:
    dataset: str
    out: str
    scenes_ok: int = 0
    scenes_resumed: int = 0
    skipped: dict[str, str] = field(default_factory=dict)
    qa_per_task: dict[str, int] = field(default_factory=dict)
    excluded_eval_scenes: int = 0
    benchmark_records: dict[str, int] = field(default_factory=dict)
    training_mixes: dict[str, dict] = field(default_factory=dict)  # preset -> MixReport as a dict
    generation_failures: dict[str, dict[str, str]] = field(default_factory=dict)  # task -> scene -> reason
    unanswerable: dict[str, dict[str, int]] = field(default_factory=dict)  # task -> reason -> questions dropped
    stage_seconds: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    def line(self) -> str:
        return (
            f"{self.dataset}: {self.scenes_ok} scenes ok ({self.scenes_resumed} resumed), "
            f"{len(self.skipped)} skipped; {sum(self.qa_per_task.values())} QA records over "
            f"{len(self.qa_per_task)} tasks; {self.excluded_eval_scenes} VSI-Bench eval scenes kept out of "
            f"training; {self.seconds:.1f}s -> {self.out}"
        )


def scene_dir(out: Path, dataset: str, scene_id: str) -> Path:
    return out / "scenes" / dataset / scene_id


def manifest_path(out: Path, dataset: str, scene_id: str) -> Path:
    return out / "manifest" / dataset / f"{scene_id}.json"


def write_scene_outputs(adapted: AdaptedScene, out: Path, source: str, write_video: bool, video_fps: float) -> None:
    """Write one scene's directory atomically (temporary directory, then rename). ``source`` is the
    adapter's name, which keys every output path (a scene's own ``dataset`` may differ, e.g. the
    ScanNet scenes of a vsibench-meta file)."""
    from vlm3r.scenes.video import write_mp4

    scene, frames = adapted.scene, adapted.frames
    final = scene_dir(out, source, scene.scene_id)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".tmp-{scene.scene_id}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "frames").mkdir(parents=True)
    rel = final.relative_to(out).as_posix()
    if frames is not None:
        for fr in frames.frames:
            name = f"frames/{fr.frame_id:06d}.jpg"
            Image.fromarray(adapted.images[fr.frame_id]).save(tmp / name, format="JPEG", quality=92)
            fr.color_path = f"{rel}/{name}"
        if write_video and frames.frames:
            write_mp4([adapted.images[fr.frame_id] for fr in frames.frames], tmp / "video.mp4", video_fps)
            scene.video_path = f"{rel}/video.mp4"
        (tmp / "frame_metadata.json").write_bytes(model_json(frames))
    (tmp / "scene_metadata.json").write_bytes(model_json(scene))
    replace_dir(tmp, final)


def process_scene(adapter: SceneAdapter, scene_id: str, *, config: BuildConfig) -> SceneResult:
    """Adapt one scene and write its outputs; never raises (a failure becomes a skipped result)."""
    t0 = time.perf_counter()
    fp = config.fingerprint()
    try:
        check_scene_id(scene_id)
        adapted = adapter.load(scene_id, config.adapter)
        write_scene_outputs(adapted, config.out, adapter.dataset, config.write_video, config.video_fps)
    except SceneError as exc:
        return SceneResult(scene_id, "skipped", str(exc), time.perf_counter() - t0, fingerprint=fp)
    except ValidationError as exc:  # the adapter read the files but produced an impossible scene graph
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        reason = f"{scene_id}: invalid {exc.title} ({exc.error_count()} errors), first at {where}: {err['msg']}"
        return SceneResult(scene_id, "skipped", reason, time.perf_counter() - t0, fingerprint=fp)
    except Exception as exc:  # one bad scene never stops a build
        where = traceback.extract_tb(exc.__traceback__)[-1]
        reason = f"{type(exc).__name__}: {exc} (at {Path(where.filename).name}:{where.lineno})"
        return SceneResult(scene_id, "skipped", " ".join(reason.split()), time.perf_counter() - t0, fingerprint=fp)
    n_frames = len(adapted.frames.frames) if adapted.frames else 0
    return SceneResult(
        scene_id, "ok", None, time.perf_counter() - t0, len(adapted.scene.objects), n_frames, fingerprint=fp
    )


def is_done(out: Path, dataset: str, scene_id: str, fingerprint: str) -> bool:
    """A scene is finished when its manifest says ok for this configuration and its files exist."""
    try:
        entry = json.loads(manifest_path(out, dataset, scene_id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (
        entry.get("status") == "ok"
        and entry.get("fingerprint") == fingerprint
        and (scene_dir(out, dataset, scene_id) / "scene_metadata.json").is_file()
    )


def adapt_scenes(
    adapter: SceneAdapter,
    scene_ids: Sequence[str],
    config: BuildConfig,
    on_result: Callable[[SceneResult], None] = lambda r: None,
) -> list[SceneResult]:
    """Run ``process_scene`` for every scene on the configured executor; write each manifest entry
    as its result arrives (after the scene's files are in place)."""
    results: list[SceneResult] = []
    work = partial(process_scene, adapter, config=config)
    for res in make_executor(config.executor, config.workers, config.ray_address).map_unordered(work, list(scene_ids)):
        atomic_write_json(manifest_path(config.out, adapter.dataset, res.scene_id), asdict(res))
        results.append(res)
        on_result(res)
    return results


def load_scene_graph(out: Path, dataset: str, scene_id: str) -> tuple[SceneMetadata, FrameMetadata | None]:
    d = scene_dir(out, dataset, scene_id)
    scene = SceneMetadata.model_validate_json((d / "scene_metadata.json").read_bytes())
    fm = d / "frame_metadata.json"
    frames = FrameMetadata.model_validate_json(fm.read_bytes()) if fm.is_file() else None
    return scene, frames


def selected_tasks(config: BuildConfig) -> list:
    """Fresh task instances for this build, with the configured per-scene caps applied."""
    tasks = TASKS.select(config.tasks)
    for task in tasks:
        if task.name in config.caps:
            task.max_per_scene = config.caps[task.name]
    return tasks


def scene_drafts(scene_id: str, *, out: Path, dataset: str, config: BuildConfig) -> tuple[SceneRef, dict, dict, dict]:
    """Every selected task's drafts for one built scene: ``(ref, {task: (drafts, seconds)},
    {task: reason}, {task: {reason: dropped}})``. A task that fails on this scene (any exception,
    MemoryError and RecursionError included) gives it no questions and a one-line reason; the other
    tasks and scenes go on. With ``config.answerable`` and frames, questions about objects the
    sampled frames do not show are dropped (``datagen.answerability``) and counted per reason.
    Runs anywhere (executor work unit): it reads the scene graph from ``out`` only."""
    scene, frames = load_scene_graph(out, dataset, scene_id)
    ref = SceneRef(scene.dataset, scene.scene_id, scene.video_path)
    result, failures, dropped = {}, {}, {}
    vis = Visibility.of(scene, frames, config.answerable_min_area) if config.answerable and frames else None
    for task in selected_tasks(config):
        if task.needs_frames and frames is None:
            continue
        t0 = time.perf_counter()
        rng = scene_rng(config.adapter.seed, task.name, scene.dataset, scene.scene_id)
        try:
            drafts = task.generate(scene, frames, rng)
        except Exception as exc:  # one scene's data never stops a build
            where = traceback.extract_tb(exc.__traceback__)[-1]
            failures[task.name] = " ".join(
                f"{scene_dir(Path(), dataset, scene_id).as_posix()}/scene_metadata.json: {task.name} failed: "
                f"{type(exc).__name__}: {exc} (at {Path(where.filename).name}:{where.lineno})".split()
            )[:500]
            drafts = []
        if vis is not None and drafts:
            drafts, dropped[task.name] = keep_answerable(task.answerability, drafts, vis)
        result[task.name] = (drafts, time.perf_counter() - t0)
    return ref, result, failures, dropped


def generate_qa(
    out: Path, dataset: str, scene_ids: Sequence[str], config: BuildConfig,
    on_progress: Callable[[int, int], None] = lambda done, total: None,
) -> dict[str, dict]:
    """Run the task generators over the built scenes (per scene, on the build's executor) and write
    every export (see pipelines.exports). Memory holds drafts, not scene graphs. Returns a summary
    per task; ``summary["_excluded_eval_scenes"]`` lists training-excluded scenes.
    ``on_progress(done, total)`` after each scene's questions and each task's export (total =
    scenes + tasks).
    """
    tasks = selected_tasks(config)
    drafts: dict[str, list] = {t.name: [] for t in tasks}
    seconds: dict[str, float] = {t.name: 0.0 for t in tasks}
    refs, eval_list = [], vsibench_eval_scenes() if config.exclude_eval_scenes else frozenset()
    eval_scenes = set()
    work = partial(scene_drafts, out=out, dataset=dataset, config=config)
    executor = make_executor(config.executor, config.workers, config.ray_address)
    failures: dict[str, dict[str, str]] = {}
    unanswerable: dict[str, Counter] = {}
    total = len(scene_ids) + len(tasks)
    for ref, per_task, failed, dropped in executor.map_unordered(work, sorted(scene_ids)):
        refs.append(ref)
        on_progress(len(refs), total)
        for name, reason in failed.items():
            failures.setdefault(name, {})[ref.scene_id] = reason
        for name, reasons in dropped.items():
            unanswerable.setdefault(name, Counter()).update(reasons)
        if (ref.dataset, ref.scene_id) in eval_list:
            eval_scenes.add(ref.scene_id)
        for name, (task_drafts, dt) in per_task.items():
            drafts[name].append((ref, task_drafts))
            seconds[name] += dt
    official = read_split_lists(config.split_lists) if config.split_lists else None
    splits = assign_splits(dataset, [r.scene_id for r in refs], config.adapter.seed, official, config.val_fraction)
    splits = mark_eval_scenes(splits, eval_scenes)
    train_scenes = {sid for sid, split in splits.items() if split == "train"}
    summaries: dict[str, dict] = {}
    test_records: list = []
    for task in tasks:
        t0 = time.perf_counter()
        records = finalize_records(task, drafts.pop(task.name), config.adapter.seed, splits)
        summaries[task.name] = export_task(out, dataset, task.name, task.version, records, task.numeric, train_scenes)
        seconds[task.name] += time.perf_counter() - t0
        on_progress(len(refs) + len(summaries), total)
        if config.benchmarks:
            test_records += [r for r in records if r.scene_name not in train_scenes]
    summaries["_excluded_eval_scenes"] = {"scenes": sorted(eval_scenes)}
    summaries["_generation_failures"] = {t: dict(sorted(v.items())) for t, v in sorted(failures.items())}
    summaries["_unanswerable"] = {t: dict(sorted(v.items())) for t, v in sorted(unanswerable.items())}
    summaries["_benchmark"] = {}
    for name in config.benchmarks:
        chosen = select_benchmark(test_records, name, config.adapter.seed)
        fmt = BENCHMARKS[name].row_format
        write_rows(out / "benchmark" / name, dataset, [ROW_BUILDERS[fmt](r) for r in chosen], fmt)
        summaries["_benchmark"][name] = len(chosen)
    atomic_write_json(out / "qa" / f"summary.{dataset}.json", summaries)
    summaries["_seconds"] = seconds  # wall time per task (generate + finalize + export); not written above
    return summaries


def remove_stale_temporaries(out: Path) -> None:
    """Delete what a killed run left half-written (hidden ``.tmp``/``.old`` names); nothing else."""
    for p in list(out.glob("*/**/.*")):
        if ".tmp-" in p.name or p.name.endswith(".tmp") or ".old-" in p.name:
            shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


LOCK_NAME = ".vlm3r-build.lock"
HOLDER_NAME = ".vlm3r-build.holder.json"


class OutputLocked(ValueError):
    """Another build holds the output folder."""


@contextmanager
def output_lock(out: Path) -> Iterator[None]:
    """Hold ``OUT/.vlm3r-build.lock`` (``filelock``) for a whole build; a second build into the same
    folder is refused at once with one line naming the holder (pid, host, start time)."""
    from filelock import FileLock, Timeout

    lock, holder = FileLock(out / LOCK_NAME), out / HOLDER_NAME
    try:
        lock.acquire(timeout=0)
    except Timeout:
        try:
            who = json.loads(holder.read_text(encoding="utf-8"))
            whom = f"pid {who['pid']} on {who['host']}, started {who['started']}"
        except (OSError, ValueError, KeyError, TypeError):
            whom = "holder unknown"
        raise OutputLocked(f"{out}: another build is writing into this folder ({whom}); wait for it or use another --out") from None
    try:
        atomic_write_json(holder, {"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime("%Y-%m-%d %H:%M:%S")})
        yield
    finally:
        holder.unlink(missing_ok=True)
        lock.release()


def check_output_folder(out: Path) -> None:
    """Create ``out`` if needed and make sure a build can write into it (one line otherwise)."""
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out}: exists and is not a folder; choose another --out")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise PermissionError(f"{out}: cannot write here ({exc.strerror or exc}); choose another --out") from None


def check_config(config: BuildConfig) -> None:
    """Every name and path of a build configuration, before any work: tasks and capped tasks
    (with suggestions on a typo), benchmarks, training presets, split files, the output folder."""
    if config.tasks is not None:
        TASKS.select(config.tasks)
    for task, n in config.caps.items():
        TASKS.get(task)  # KeyError with suggestions
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"--cap {task}={n}: the cap must be a whole number >= 0")
    for name in config.benchmarks:
        if name not in BENCHMARKS:
            raise KeyError(f"unknown benchmark {name!r}; known: {', '.join(sorted(BENCHMARKS))}")
    for name in config.training_mixes:
        if name not in TRAINING_MIXES:
            raise KeyError(f"unknown training preset {name!r}; known: {', '.join(TRAINING_MIXES)}")
    for split, path in (config.split_lists or {}).items():
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such split file (--split-file {split}=...)")
    check_output_folder(config.out)


def build(
    adapter: SceneAdapter,
    config: BuildConfig,
    scene_ids: Sequence[str] | None = None,
    on_result: Callable[[SceneResult], None] = lambda r: None,
    on_start: Callable[[int], None] = lambda n: None,
    on_qa: Callable[[int, int], None] = lambda done, total: None,
    started: float | None = None,
) -> BuildSummary:
    """Adapt the scenes not yet done, then (re)generate QA over every scene built ok. Holds the
    output folder's lock throughout (see ``output_lock``). ``on_start(n)`` / ``on_result`` follow
    adaptation, ``on_qa(done, total)`` QA generation; ``started`` (a ``time.perf_counter()`` value,
    default now) is when the command began, so the summary's time is the whole command's wall time."""
    started = time.perf_counter() if started is None else started
    check_config(config)
    with output_lock(config.out):
        return _build_locked(adapter, config, scene_ids, on_result, on_start, on_qa, started)


def _build_locked(
    adapter: SceneAdapter,
    config: BuildConfig,
    scene_ids: Sequence[str] | None,
    on_result: Callable[[SceneResult], None],
    on_start: Callable[[int], None],
    on_qa: Callable[[int, int], None],
    t0: float,
) -> BuildSummary:
    out = config.out
    remove_stale_temporaries(out)
    ids = list(scene_ids) if scene_ids is not None else adapter.list_scenes()
    fp = config.fingerprint()
    summary = BuildSummary(dataset=adapter.dataset, out=str(out))
    todo, done, valid = [], [], []
    for sid in ids:
        try:
            valid.append(check_scene_id(sid))
        except ValueError as exc:
            summary.skipped[sid] = str(exc)
    collisions = case_collisions(valid)
    for sid, other in collisions.items():
        summary.skipped[sid] = (f"scene id {sid!r} differs from {other!r} only in case: both would be one folder on a "
                                f"case-insensitive file system; {other!r} is kept")
    for sid in valid:
        if sid not in collisions:
            (done if is_done(out, adapter.dataset, sid, fp) else todo).append(sid)
    on_start(len(todo))
    results = adapt_scenes(adapter, todo, config, on_result)
    ok = sorted(done + [r.scene_id for r in results if r.status == "ok"])
    summary.skipped.update({r.scene_id: r.reason or "" for r in results if r.status != "ok"})
    summary.scenes_ok, summary.scenes_resumed = len(ok), len(done)
    qa = generate_qa(out, adapter.dataset, ok, config, on_qa)
    summary.excluded_eval_scenes = len(qa.pop("_excluded_eval_scenes")["scenes"])
    summary.benchmark_records = qa.pop("_benchmark")
    summary.generation_failures = qa.pop("_generation_failures")
    summary.unanswerable = qa.pop("_unanswerable")
    summary.stage_seconds = {"adapt (sum over scenes)": sum(r.seconds for r in results)}
    summary.stage_seconds |= {f"qa {t}": dt for t, dt in qa.pop("_seconds").items()}
    summary.qa_per_task = {t: q["count"] for t, q in qa.items()}
    for name in config.training_mixes:  # over every source of OUT, so several builds into one OUT mix
        try:
            summary.training_mixes[name] = asdict(mix_builds([out], name, out / "mix" / name, config.adapter.seed))
        except (ValueError, FileNotFoundError) as exc:  # e.g. no training conversations: say so, keep the build
            summary.training_mixes[name] = {"error": str(exc)}
    summary.seconds = time.perf_counter() - t0
    atomic_write_json(out / f"build_summary.{adapter.dataset}.json", asdict(summary))
    write_dataset_card(out)
    return summary
