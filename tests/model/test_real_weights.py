"""The real-weights path end to end, on tiny weights saved exactly as a user's would be: a
LLaVA-OneVision folder written by ``save_pretrained`` (model, processor with its chat template,
tokenizer) and a CUT3R checkpoint in the official key layout; then every command a user runs with
the 7B weights: train, features, train on the cache, predict, score."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
from typer.testing import CliRunner  # noqa: E402

from vlm3r.cli import data_app, eval_app, train_app  # noqa: E402

TASKS = ("object_counting", "room_size_estimation")

# A processor template of the LLaVA-OneVision kind: message contents are typed lists; a plain
# string content renders nothing (what broke training on a saved base folder).
PROCESSOR_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% for c in message['content'] %}{% if c is mapping %}{% if c['type'] == 'video' %}{{ '<video>' }}"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endif %}{% endfor %}{{ '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@pytest.fixture(scope="module")
def saved_base(tiny_checkpoints, qwen_tokenizer, tmp_path_factory):
    """The tiny base folder as transformers writes it for a real model: the weights
    (``save_pretrained``), the tokenizer and image processor (``save_pretrained``) and the
    processor's chat template in ``chat_template.jinja``, the file a processor's ``save_pretrained``
    writes it to. (The processor object itself needs torchvision for its video processor, which
    would pull another torch; its other files are the ones written here.)"""
    import copy
    import shutil

    from transformers import LlavaOnevisionImageProcessorPil

    base, ckpt = tiny_checkpoints
    folder = tmp_path_factory.mktemp("base") / "llava-tiny"
    shutil.copytree(base, folder)
    tok = copy.deepcopy(qwen_tokenizer)
    tok.chat_template = PROCESSOR_TEMPLATE
    tok.save_pretrained(str(folder))
    LlavaOnevisionImageProcessorPil().save_pretrained(str(folder))
    assert (folder / "chat_template.jinja").read_text() == PROCESSOR_TEMPLATE
    assert (folder / "tokenizer_config.json").is_file() and (folder / "preprocessor_config.json").is_file()
    return folder, ckpt


@pytest.fixture(scope="module")
def build_dir(scannet_root, tmp_path_factory):
    from vlm3r.pipelines.build import BuildConfig, build
    from vlm3r.scenes.base import AdapterConfig
    from vlm3r.scenes.scannet import ScanNetAdapter

    root, _ = scannet_root
    out = tmp_path_factory.mktemp("rw_build")
    build(ScanNetAdapter(root), BuildConfig(out=out, adapter=AdapterConfig(num_frames=8), tasks=TASKS,
                                            val_fraction=0.0, answerable=False), ["scene0001_00"])
    return out


def test_the_saved_base_folder_template_is_the_one_that_broke_training(saved_base):
    from transformers import AutoTokenizer

    from vlm3r.model.data import ConversationEncoder
    from vlm3r.model.train import load_tokenizer

    folder, _ = saved_base
    raw = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    turns = [("user", "<image>\nHow many chairs?"), ("assistant", "3")]
    with pytest.raises(ValueError):  # the folder's own template drops our text turns
        ids, _ = ConversationEncoder(raw, 24).encode(turns)
        assert ids.count(raw.convert_tokens_to_ids("<video>")) == 24
    ids, labels = ConversationEncoder(load_tokenizer(folder), 24).encode(turns)
    tok = load_tokenizer(folder)
    assert ids.count(tok.convert_tokens_to_ids("<video>")) == 24
    assert tok.decode([i for i, lab in zip(ids, labels) if lab != -100]) == "3<|im_end|>"


def test_every_command_runs_on_saved_tiny_weights(saved_base, build_dir, tmp_path):
    folder, ckpt = saved_base
    r = CliRunner()
    common = ["--data", str(build_dir), "--base-model", str(folder), "--preset", "tiny", "--max-steps", "2", "--no-progress"]
    res = r.invoke(train_app, [*common, "--spatial-checkpoint", str(ckpt), "--output-dir", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    cache = tmp_path / "elsewhere" / "cut3r-cache"  # not the default DATA/features
    res = r.invoke(data_app, ["features", "--data", str(build_dir), "--spatial-checkpoint", str(ckpt), "--preset", "tiny",
                              "--cache", str(cache)])
    assert res.exit_code == 0, res.output
    res = r.invoke(train_app, [*common, "--spatial-checkpoint", str(ckpt), "--require-cache", "--feature-cache", str(cache),
                               "--output-dir", str(tmp_path / "cached")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "cached" / "vlm3r_config.json").read_text())["feature_cache"] == str(cache.resolve())
    bench = build_dir / "qa" / "object_counting" / "scannet.parquet"
    preds = tmp_path / "pred.jsonl"
    res = r.invoke(eval_app, ["predict", "--model", str(tmp_path / "cached"), "--benchmark", str(bench), "--out", str(preds)])
    assert res.exit_code == 0, res.output  # the recorded cache is found: no question without its video
    rows = [json.loads(x) for x in preds.read_text().splitlines()]
    assert rows and "0 without a readable video" in res.output
    res = r.invoke(eval_app, ["score", "--benchmark", str(bench), "--predictions", str(preds)])
    assert res.exit_code == 0, res.output and "overall" in res.output


def test_a_cache_only_model_without_its_cache_fails_loudly(saved_base, build_dir, tmp_path):
    from vlm3r.model.predict import predict

    folder, ckpt = saved_base
    r = CliRunner()
    cache = tmp_path / "cache"
    assert r.invoke(data_app, ["features", "--data", str(build_dir), "--spatial-checkpoint", str(ckpt), "--preset", "tiny",
                               "--cache", str(cache)]).exit_code == 0
    res = r.invoke(train_app, ["--data", str(build_dir), "--base-model", str(folder), "--max-steps", "1", "--no-progress",
                               "--spatial-checkpoint", str(ckpt), "--require-cache", "--feature-cache", str(cache),
                               "--output-dir", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    import shutil

    shutil.rmtree(cache)
    with pytest.raises(FileNotFoundError, match="trained with --require-cache"):
        predict(tmp_path / "run", build_dir / "qa" / "object_counting" / "scannet.parquet", tmp_path / "p.jsonl")
    assert not Path(tmp_path / "p.jsonl").exists()
