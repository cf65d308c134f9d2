"""Prediction: the benchmark prompt is the training prompt, outputs equal direct greedy decoding,
batching does not change them, unreadable videos give empty predictions, Parquet = JSONL, CLI."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("safetensors")

import typer  # noqa: E402
from typer.testing import CliRunner  # noqa: E402
from vlm3r.model.data import (  # noqa: E402
    IGNORE_INDEX,
    ConversationEncoder,
    VideoEncoder,
    locate_video,
    read_samples,
)
from vlm3r.model.predict import benchmark_root, predict, question_text, read_benchmark  # noqa: E402

TASKS = ("object_counting", "object_size_estimation", "object_rel_direction_easy")


@pytest.fixture(scope="module")
def demo_build(scannet_root, tmp_path_factory):
    from vlm3r.pipelines.build import BuildConfig, build
    from vlm3r.scenes.base import AdapterConfig
    from vlm3r.scenes.scannet import ScanNetAdapter

    root, _ = scannet_root
    out = tmp_path_factory.mktemp("predict_build")
    build(
        ScanNetAdapter(root), BuildConfig(out=out, adapter=AdapterConfig(num_frames=8), tasks=TASKS, val_fraction=0.0, answerable=False)
    )
    return out


@pytest.fixture(scope="module")
def model_dir(tiny_cfg, qwen_tokenizer, tmp_path_factory):
    """A saved tiny VLM-3R whose LoRA B matrices are random, so that it answers with varied text."""
    from vlm3r.model.saved import save_trained
    from vlm3r.model.vlm import build_vlm3r

    torch.manual_seed(0)
    model = build_vlm3r(tiny_cfg, seed=3)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    out = save_trained(model, tmp_path_factory.mktemp("model"), seed=3)
    qwen_tokenizer.save_pretrained(str(out))
    return out


def test_benchmark_prompt_is_the_training_prompt(demo_build, qwen_tokenizer, tiny_cfg):
    records = read_benchmark(demo_build)
    train = {s.id: s for s in read_samples([demo_build])}
    assert {r.id for r in records} == set(train)  # val_fraction 0: every question is also a training sample
    enc = ConversationEncoder(qwen_tokenizer, tiny_cfg.num_frames * tiny_cfg.tokens_per_frame)
    numeric = {"object_counting": True, "object_size_estimation": True, "object_rel_direction_easy": False}
    for r in records:
        sample = train[r.id]
        assert question_text(r) == sample.turns[0][1]  # as the build's exporter wrote it
        assert ("Please answer the question using a single word or phrase." in question_text(r)) == numeric[
            r.question_type
        ]
        ids, labels = enc.encode(sample.turns)
        first = next(k for k, lab in enumerate(labels) if lab != IGNORE_INDEX)
        assert enc.prompt(question_text(r)) == ids[:first]


def test_predictions_are_greedy_decoding(demo_build, model_dir, qwen_tokenizer, tiny_cfg, tmp_path):
    from vlm3r.model.saved import load_trained

    bench = demo_build / "qa" / "object_rel_direction_easy" / "scannet.parquet"
    out = tmp_path / "pred.jsonl"
    summary = predict(model_dir, bench, out, tokenizer=qwen_tokenizer)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    records = read_benchmark(bench)
    assert [row["id"] for row in lines] == [r.id for r in records]
    assert (
        summary.questions == len(records)
        and summary.videos == len({r.video_path for r in records})
        and summary.failed == {}
    )

    # Independently: the training-sample path, one question at a time.
    model = load_trained(model_dir)
    enc = ConversationEncoder(qwen_tokenizer, tiny_cfg.num_frames * tiny_cfg.tokens_per_frame)
    video = VideoEncoder(tiny_cfg)
    eos = qwen_tokenizer.convert_tokens_to_ids("<|im_end|>")
    from vlm3r.schemas.conversation import with_time_instruction

    for r, row in list(zip(records, lines))[:4]:
        inputs = video.inputs(locate_video(demo_build, r.video_path, r.dataset, r.dataset, r.scene_name))
        assert inputs.time_instruction is not None  # the tiny config trains with VLM-3R's time instruction
        ids = torch.tensor([enc.prompt(with_time_instruction(question_text(r), inputs.time_instruction))])
        new = model.generate(
            ids,
            inputs.pixel_values_videos[None],
            cut3r_frames=inputs.cut3r_frames[None],
            max_new_tokens=16,
            do_sample=False,
            eos_token_id=eos,
            pad_token_id=qwen_tokenizer.pad_token_id,
        )
        assert new.shape[1] <= 16
        assert row["prediction"] == qwen_tokenizer.decode(new[0], skip_special_tokens=True).strip()
    assert any(row["prediction"] for row in lines)

    batched = tmp_path / "batched.jsonl"
    progress = []
    predict(model_dir, bench, batched, tokenizer=qwen_tokenizer, batch_size=3, on_progress=lambda d, t: progress.append((d, t)))
    assert progress[-1] == (len(records), len(records)) and all(a[0] < b[0] for a, b in zip(progress, progress[1:]))
    assert batched.read_text() == out.read_text()  # left padding does not change greedy answers


def test_unreadable_video_gives_an_empty_prediction(demo_build, model_dir, qwen_tokenizer, tmp_path):
    src = demo_build / "qa" / "object_counting" / "scannet-00000.jsonl"
    rows = [json.loads(line) for line in src.read_text().splitlines()][:3]
    rows[1] |= {"video_path": "scenes/scannet/scene9999_00/video.mp4", "scene_name": "scene9999_00"}
    bench = tmp_path / "qa" / "object_counting" / "scannet-00000.jsonl"
    bench.parent.mkdir(parents=True)
    bench.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (bench.parent / "scannet.done.json").write_text('{"shards": 1}')  # the build's completion marker
    out = tmp_path / "pred.jsonl"
    summary = predict(model_dir, bench, out, data_root=demo_build, tokenizer=qwen_tokenizer, max_new_tokens=2)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["id"] for row in lines] == [r["id"] for r in rows]
    assert lines[1]["prediction"] == "" and lines[0]["prediction"] != ""
    assert summary.failed == {"no video": 1} and "1 without a readable video" in summary.line()


def test_parquet_and_jsonl_give_the_same_questions(demo_build):
    for task in TASKS:
        a = read_benchmark(demo_build / "qa" / task / "scannet.parquet")
        b = read_benchmark(demo_build / "qa" / task / "scannet-00000.jsonl")
        assert [(r.id, r.video_path, question_text(r)) for r in a] == [
            (r.id, r.video_path, question_text(r)) for r in b
        ]
    assert benchmark_root(demo_build / "qa" / TASKS[0] / "scannet.parquet") == demo_build.resolve()
    bad = demo_build.parent / "bad.jsonl"
    bad.write_text('{"id": "x"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:1: not a benchmark record"):
        read_benchmark(bad)


def test_original_vsibench_table(model_dir, qwen_tokenizer, tmp_path):
    """VSI-Bench's own Parquet: integer ids, no video_path, the MC letter in ground_truth; videos at
    <root>/<dataset>/<scene>.mp4."""
    import numpy as np
    import pandas as pd
    from vlm3r.scenes.video import write_mp4

    (tmp_path / "arkitscenes").mkdir()
    write_mp4([np.full((32, 48, 3), 40 * k, np.uint8) for k in range(6)], tmp_path / "arkitscenes" / "41069025.mp4")
    table = pd.DataFrame(
        {
            "id": [1, 2],
            "dataset": ["arkitscenes", "arkitscenes"],
            "scene_name": ["41069025", "42446103"],
            "question_type": ["object_rel_direction_easy", "object_counting"],
            "question": [
                "If I am standing by the sofa and facing the tv, is the bed to the left or the right of the tv?",
                "How many chair(s) are in this room?",
            ],
            "options": [np.array(["A. left", "B. right"], dtype=object), None],
            "ground_truth": ["A", "4"],
        }
    )
    table.to_parquet(tmp_path / "test.parquet")
    out = tmp_path / "pred.jsonl"
    summary = predict(model_dir, tmp_path / "test.parquet", out, tokenizer=qwen_tokenizer, max_new_tokens=2)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["id"] for row in lines] == ["1", "2"]
    assert lines[0]["prediction"] != "" and lines[1]["prediction"] == ""  # the second video does not exist
    assert summary.failed == {"no video": 1}
    first = read_benchmark(tmp_path / "test.parquet")[0]
    assert question_text(first).endswith(
        "Options:\nA. left\nB. right\nAnswer with the option's letter from the given choices directly."
    )


def test_predict_cli(demo_build, model_dir, tmp_path):
    from vlm3r.cli import predict_command

    app = typer.Typer()
    app.command("predict")(predict_command)
    app.command("unused")(lambda: None)  # two commands: `predict` is a subcommand, as on vlm3r-eval
    out = tmp_path / "pred.jsonl"
    bench = demo_build / "qa" / "object_counting" / "scannet.parquet"
    res = CliRunner().invoke(
        app,
        [
            "predict",
            "--model",
            str(model_dir),
            "--benchmark",
            str(bench),
            "--out",
            str(out),
            "--limit",
            "2",
            "--max-new-tokens",
            "3",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "2 predictions over" in res.output and len(out.read_text().splitlines()) == 2
    res = CliRunner().invoke(app, ["predict", "--model", str(tmp_path), "--benchmark", str(bench), "--out", str(out)])
    assert res.exit_code == 2 and "not a saved VLM-3R model" in res.output
