"""Training end to end on a CPU with the tiny preset: build -> 30 steps -> loss down -> save ->
predict on the build's benchmark -> score table; exact resume; feature cache; presets; CLI."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("safetensors")

from safetensors.torch import load_file  # noqa: E402
from transformers import TrainerCallback  # noqa: E402
from typer.testing import CliRunner  # noqa: E402
from vlm3r.model.config import get_config  # noqa: E402
from vlm3r.model.train import (  # noqa: E402
    TRAIN_PRESETS,
    ZERO2_CONFIG,
    TrainConfig,
    resolve_deepspeed,
    train,
    training_arguments,
)

TASKS = ("object_counting", "object_size_estimation", "object_rel_direction_easy")
WEIGHT_FILES = ("adapter_model.safetensors", "non_lora_trainables.safetensors")


@pytest.fixture(scope="module")
def demo_build(scannet_root, tmp_path_factory):
    """A demo-like build: 3 synthetic ScanNet-layout scans, 8 frames, 3 tasks, every scene in train."""
    from vlm3r.pipelines.build import BuildConfig, build
    from vlm3r.scenes.base import AdapterConfig
    from vlm3r.scenes.scannet import ScanNetAdapter

    root, _ = scannet_root
    out = tmp_path_factory.mktemp("demo_build")
    cfg = BuildConfig(out=out, adapter=AdapterConfig(num_frames=8), tasks=TASKS, val_fraction=0.0, write_video=True, answerable=False)
    build(ScanNetAdapter(root), cfg)
    return out


class StopAt(TrainerCallback):
    """Stop training after ``step`` optimizer steps (the checkpoint of that step is still written)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001, ANN003
        if state.global_step >= self.step:
            control.should_training_stop = True
        return control


def weights(folder: str | Path) -> dict[str, torch.Tensor]:
    """The saved trainables of a run (LoRA adapter + fusion + projector)."""
    out: dict[str, torch.Tensor] = {}
    for name in WEIGHT_FILES:
        out.update({f"{name}:{k}": v for k, v in load_file(str(Path(folder) / name)).items()})
    return out


def tiny_run(build: Path, out: Path, **kw) -> TrainConfig:
    return TrainConfig(data=[build], output_dir=out, preset="tiny", max_steps=30, save_steps=10, progress=False, **kw)


@pytest.fixture(scope="module")
def runs(demo_build, qwen_tokenizer, tmp_path_factory):
    """An uninterrupted 30-step run, and the same run stopped after 10 steps then resumed."""
    root = tmp_path_factory.mktemp("runs")
    full = train(tiny_run(demo_build, root / "full"), tokenizer=qwen_tokenizer)
    stopped = train(tiny_run(demo_build, root / "stopped"), tokenizer=qwen_tokenizer, callbacks=[StopAt(10)])
    at_stop = weights(stopped.output_dir)
    assert sorted(p.name for p in (root / "stopped").glob("checkpoint-*")) == ["checkpoint-10"]
    resumed = train(tiny_run(demo_build, root / "stopped", resume=True), tokenizer=qwen_tokenizer)
    return {"full": full, "stopped": stopped, "at_stop": at_stop, "resumed": resumed}


def test_end_to_end_train_predict_score(runs, demo_build, tmp_path):
    from vlm3r.model.predict import predict
    from vlm3r.cli import eval_app
    from vlm3r.schemas.io import read_qa_records

    full = runs["full"]
    records = read_qa_records(demo_build)
    assert full.steps == 30 and full.samples == len(records) and full.skipped == {}  # every scene is in train
    losses = [loss for _, loss in full.losses]
    assert [s for s, _ in full.losses] == list(range(1, 31)) and all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < np.mean(losses[:5])  # it learns
    saved = Path(full.output_dir)
    assert {p.name for p in saved.iterdir()} >= {
        *WEIGHT_FILES,
        "vlm3r_config.json",
        "tokenizer.json",
        "train_summary.json",
    }
    summary = json.loads((saved / "train_summary.json").read_text())
    assert summary["steps"] == 30 and summary["settings"]["learning_rate"] == TRAIN_PRESETS["tiny"].learning_rate

    pred = tmp_path / "pred.jsonl"
    result = predict(saved, demo_build, pred)
    lines = [json.loads(line) for line in pred.read_text().splitlines()]
    assert [row["id"] for row in lines] == [r.id for r in records] and len(lines) == len(records)
    assert all(isinstance(row["prediction"], str) for row in lines) and result.failed == {}

    res = CliRunner().invoke(
        eval_app,
        ["score", "--benchmark", str(demo_build), "--predictions", str(pred), "--out", str(tmp_path / "scores")],
    )
    assert res.exit_code == 0, res.output
    assert "overall" in res.output and "0 without a prediction" in res.output
    with open(tmp_path / "scores" / "results.csv") as fh:
        table = {row["task"]: row for row in csv.DictReader(fh)}
    counts = {t: sum(r.question_type == t for r in records) for t in TASKS}
    assert int(table["object_counting"]["n"]) == counts["object_counting"]
    assert int(table["object_rel_direction"]["n"]) == counts["object_rel_direction_easy"]
    assert int(table["overall"]["n"]) == len(records) and int(table["overall"]["missing"]) == 0


def test_resume_reaches_the_same_weights(runs):
    full, stopped, resumed = runs["full"], runs["stopped"], runs["resumed"]
    assert stopped.steps == 10 and resumed.steps == 30
    assert resumed.resumed_from is not None and resumed.resumed_from.endswith("checkpoint-10")
    a, b = weights(full.output_dir), weights(resumed.output_dir)
    assert a.keys() == b.keys()
    assert sum(v.numel() for v in a.values()) == full.trainable_parameters  # every trainable is saved
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], runs["at_stop"][k]) for k in a)  # the last 20 steps did change them
    assert [x for x in resumed.losses if x[0] > 10] == [x for x in full.losses if x[0] > 10]


def test_feature_cache_precompute_and_train_without_cut3r(demo_build, qwen_tokenizer, tmp_path):
    from vlm3r.model.data import ShardDataset, read_samples, spatial_cache_tag
    from vlm3r.model.feature_cache import SpatialFeatureCache
    from vlm3r.model.features import precompute_features
    from vlm3r.model.saved import read_saved_config
    from vlm3r.model.vlm import build_cut3r_encoder

    cache_dir = tmp_path / "features"
    first = precompute_features(demo_build, None, cache_dir=cache_dir, preset="tiny")
    assert (first.videos, first.computed, first.cached, first.failed) == (3, 3, 0, {})
    again = precompute_features(demo_build, None, cache_dir=cache_dir, preset="tiny")
    assert (again.computed, again.cached) == (0, 3)  # resumable

    cfg = get_config("tiny")
    cache = SpatialFeatureCache(cache_dir, spatial_cache_tag(cfg, None, 0))
    item = ShardDataset(read_samples([demo_build]), qwen_tokenizer, cfg, cache=cache).load(0)
    frames = ShardDataset(read_samples([demo_build]), qwen_tokenizer, cfg).load(0)["cut3r_frames"]
    live = build_cut3r_encoder(cfg, seed=1)(frames[None])[0]  # what training would compute (seed + 1)
    torch.testing.assert_close(item["spatial_tokens"].float(), live, atol=2e-3, rtol=1e-3)

    run = train(
        TrainConfig(
            data=[demo_build],
            output_dir=tmp_path / "run",
            max_steps=2,
            feature_cache=cache_dir,
            require_cache=True,
            progress=False,
        ),
        tokenizer=qwen_tokenizer,
    )
    assert run.steps == 2 and run.skipped == {}
    assert read_saved_config(tmp_path / "run")[1]["with_cut3r"] is False


def test_activation_checkpointing_and_bf16(demo_build, qwen_tokenizer, tmp_path):
    """The paper preset's memory savers: checkpointing gives the same losses; bf16 autocast keeps
    frozen weights in bf16 and the trainables (and what is saved) in float32."""

    def run(name: str, **kw) -> list[float]:
        cfg = TrainConfig(data=[demo_build], output_dir=tmp_path / name, max_steps=3, progress=False, **kw)
        return [loss for _, loss in train(cfg, tokenizer=qwen_tokenizer).losses]

    plain = run("plain")
    assert run("ckpt", gradient_checkpointing=True) == plain
    half = run("bf16", bf16=True)
    assert half != plain and np.allclose(half, plain, rtol=0.01, atol=0)  # bf16 rounding: under 1% of the loss
    assert {v.dtype for v in weights(tmp_path / "bf16").values()} == {torch.float32}


def test_paper_preset_is_the_papers_recipe(tmp_path):
    config = TrainConfig(data=[tmp_path], output_dir=tmp_path / "run", preset="paper")
    s = config.settings()
    assert (s.learning_rate, s.epochs, s.batch_size, s.grad_accum, s.warmup_ratio, s.gradient_checkpointing) == (
        2e-5,
        1.0,
        1,
        8,
        0.03,
        True,
    )
    cfg = get_config("paper")
    assert (cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout, cfg.num_frames) == (128, 256, 0.05, 32)
    args = training_arguments(config, s, bf16=False)
    assert str(args.lr_scheduler_type.value) == "cosine" and args.get_warmup_steps(1000) == 30
    assert (args.per_device_train_batch_size, args.gradient_accumulation_steps, args.num_train_epochs) == (1, 8, 1.0)
    assert (
        TrainConfig(data=[tmp_path], output_dir=tmp_path, preset="paper", learning_rate=1e-4).settings().learning_rate
        == 1e-4
    )
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        TrainConfig(data=[tmp_path], output_dir=tmp_path, preset="huge").settings()


def test_zero2_config_ships_and_deepspeed_stays_optional():
    zero2 = json.loads(ZERO2_CONFIG.read_text())
    assert zero2["zero_optimization"]["stage"] == 2
    assert zero2["train_micro_batch_size_per_gpu"] == "auto" and zero2["gradient_accumulation_steps"] == "auto"
    assert "optimizer" not in zero2 and "scheduler" not in zero2  # the Trainer's AdamW + cosine schedule
    assert resolve_deepspeed(None) is None
    with pytest.raises(FileNotFoundError, match="no such DeepSpeed config"):
        resolve_deepspeed("/nonexistent/ds.json")
    import importlib.util

    if importlib.util.find_spec("deepspeed") is None:
        with pytest.raises(ImportError, match="pip install deepspeed"):
            resolve_deepspeed("zero2")
    else:  # pragma: no cover - GPU machines
        assert resolve_deepspeed("zero2") == str(ZERO2_CONFIG)


def test_train_cli(demo_build, qwen_tokenizer, tmp_path):
    from vlm3r.cli import train_app

    tok = tmp_path / "tok"
    qwen_tokenizer.save_pretrained(str(tok))
    out = tmp_path / "run"
    args = ["--data", str(demo_build), "--output-dir", str(out), "--max-steps", "2", "--tokenizer", str(tok), "--no-progress",
            "--weight", "scannet=0.5", "--task", "object_counting", "--task", "object_rel_direction_easy"]  # fmt: skip
    res = CliRunner().invoke(train_app, args)
    assert res.exit_code == 0, res.output
    lines = [
        (demo_build / "train" / t / "scannet-00000.jsonl").read_text().count("\n")
        for t in ("object_counting", "object_rel_direction_easy")
    ]
    n = round(0.5 * sum(lines))  # weight 0.5: half of the two tasks' conversations
    assert f"steps 2 over {n} samples (0 skipped)" in res.output and (out / "adapter_model.safetensors").is_file()
    bad = CliRunner().invoke(train_app, ["--data", str(tmp_path / "nowhere"), "--output-dir", str(out)])
    assert bad.exit_code == 2 and "no training shards" in bad.output
    bad = CliRunner().invoke(train_app, ["--data", str(demo_build), "--weight", "scannet"])
    assert bad.exit_code == 2 and "SOURCE=WEIGHT" in bad.output


def test_model_card_is_written_from_the_run(runs, demo_build):
    card = (Path(runs["full"].output_dir) / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: peft\n")
    assert "# VLM-3R (tiny configuration)" in card and "LoRA: r=8, alpha=16" in card
    assert f'- data: ["{demo_build}"]' in card and "- preset: tiny" in card and '"learning_rate": 0.005' in card
    assert "[More Information Needed]" not in card  # not peft's empty template


def test_deepspeed_checkpoints_keep_only_the_trainables(tmp_path):
    """The engine's save_checkpoint is asked to leave the frozen weights out (VLM-3R wraps its
    peft model, so the Trainer would not ask)."""
    from vlm3r.model.train import _trainer_class

    calls = []

    class Engine:
        def save_checkpoint(self, save_dir, tag=None, client_state={}, save_latest=True, exclude_frozen_parameters=False):  # noqa: B006
            calls.append((save_dir, exclude_frozen_parameters))

    trainer = _trainer_class().__new__(_trainer_class())
    trainer.__dict__.update(is_deepspeed_enabled=True, model_wrapped=Engine(), model=torch.nn.Linear(2, 2),
                            is_fsdp_enabled=False, is_fsdp_xla_v1_enabled=False)
    try:
        trainer._save_optimizer_and_scheduler(str(tmp_path))
    except AttributeError:  # the scheduler part of the base method needs a full trainer; the save came first
        pass
    assert calls == [(str(tmp_path), True)]
    assert "exclude_frozen_parameters" not in repr(trainer.model_wrapped.save_checkpoint)  # restored afterwards


def test_the_tiny_preset_learns_its_training_questions(scannet_root, qwen_tokenizer, tmp_path_factory):
    """A model that cannot fit its own training questions points at labels, masking or data order:
    the tiny preset, on a demo build, beats the frequency baseline on its training questions for a
    numeric and a multiple-choice task. The tokens that carry loss are checked on one batch."""
    from vlm3r.model.data import IGNORE_INDEX, ShardDataset, VideoCollator, read_samples
    from vlm3r.model.predict import predict
    from vlm3r.pipelines.build import BuildConfig, build
    from vlm3r.pipelines.eval.baselines import run_baseline
    from vlm3r.pipelines.eval.scoring import PredictionSet, evaluate, load_benchmark, load_predictions
    from vlm3r.scenes.base import AdapterConfig
    from vlm3r.scenes.scannet import ScanNetAdapter

    root, _ = scannet_root
    tasks = ("object_size_estimation", "object_rel_distance")
    out = tmp_path_factory.mktemp("learn_build")
    build(ScanNetAdapter(root), BuildConfig(out=out, adapter=AdapterConfig(num_frames=8), tasks=tasks, val_fraction=0.0,
                                            answerable=False, write_video=False), ["scene0001_00", "scene0002_00"])
    samples = read_samples([out])
    batch = VideoCollator(pad_token_id=int(qwen_tokenizer.pad_token_id))(
        [ShardDataset(samples, qwen_tokenizer, get_config("tiny")).load(k) for k in range(2)])
    for row, labels in zip(batch["input_ids"], batch["labels"]):
        supervised = qwen_tokenizer.decode(row[labels != IGNORE_INDEX])
        answers = {s.turns[-1][1] for s in samples}
        assert supervised.endswith("<|im_end|>") and supervised[: -len("<|im_end|>")] in answers
    run = tmp_path_factory.mktemp("learn_run") / "run"
    train(TrainConfig(data=[out], output_dir=run, preset="tiny", max_steps=600, save_steps=10_000, progress=False),
          tokenizer=qwen_tokenizer)
    for task in tasks:
        bench = out / "qa" / task / "scannet.parquet"
        predict(run, bench, run / f"{task}.jsonl", tokenizer=qwen_tokenizer)
        items = load_benchmark(bench)
        model = evaluate(items, load_predictions(run / f"{task}.jsonl"))[0].overall
        frequency = evaluate(items, PredictionSet(run_baseline("frequency", items, items).predictions, []))[0].overall
        assert model > frequency, (task, model, frequency)
