"""Run folders and preflight checks of vlm3r-train: never overwrite a run silently, resume only the
same run, and reject what cannot run before anything heavy is loaded."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from vlm3r.model.preflight import RUN_CONFIG_FILE, RunFolderError, fingerprint, preflight, prepare_run_folder, run_identity
from vlm3r.model.train import TrainConfig


@pytest.fixture
def data(tmp_path):
    """A minimal folder with one training shard (preflight only lists shards)."""
    d = tmp_path / "build"
    (d / "train" / "object_counting").mkdir(parents=True)
    (d / "train" / "object_counting" / "demo-00000.jsonl").write_text("{}\n")
    return d


def config(data, out, **kw) -> TrainConfig:
    return TrainConfig(data=[data], output_dir=out, max_steps=3, progress=False, **kw)


def test_a_new_run_refuses_a_folder_holding_a_run(data, tmp_path):
    out = tmp_path / "run"
    assert prepare_run_folder(config(data, out)) is None
    record = json.loads((out / RUN_CONFIG_FILE).read_text())
    assert record["fingerprint"] == fingerprint(run_identity(config(data, out)))
    (out / "checkpoint-2").mkdir()
    with pytest.raises(RunFolderError, match="not empty \\(a previous run\\); pass --resume to continue it or --overwrite"):
        prepare_run_folder(config(data, out))
    assert (out / "checkpoint-2").is_dir()  # nothing was touched
    assert prepare_run_folder(config(data, out, learning_rate=1e-3), overwrite=True) is None
    assert not (out / "checkpoint-2").exists()  # the old run is gone, the new one recorded
    assert json.loads((out / RUN_CONFIG_FILE).read_text())["identity"]["settings"]["learning_rate"] == 1e-3


def test_overwrite_never_deletes_a_folder_that_is_not_a_run(data, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    for overwrite in (False, True):
        with pytest.raises(RunFolderError, match="not a vlm3r run"):
            prepare_run_folder(config(data, out), overwrite=overwrite)
    assert (out / "thesis.tex").read_text() == "precious"


def test_resume_only_continues_the_same_configuration(data, tmp_path):
    out = tmp_path / "run"
    prepare_run_folder(config(data, out))
    (out / "checkpoint-1").mkdir()
    (out / "checkpoint-10").mkdir()
    (out / "checkpoint-9").mkdir()
    assert prepare_run_folder(config(data, out, resume=True)).name == "checkpoint-10"  # by step, not by name
    # logging or checkpoint frequency may change on resume; the recipe may not
    assert prepare_run_folder(config(data, out, resume=True, logging_steps=5, save_steps=7)) is not None
    with pytest.raises(RunFolderError, match="made with another configuration \\(differs in seed, settings.learning_rate\\)"):
        prepare_run_folder(config(data, out, resume=True, learning_rate=9e-4, seed=3))
    # a folder without the record (an old run of unknown configuration) is not resumed
    (out / RUN_CONFIG_FILE).unlink()
    with pytest.raises(RunFolderError, match="configuration is unknown"):
        prepare_run_folder(config(data, out, resume=True))
    with pytest.raises(FileNotFoundError, match="no checkpoint-\\* folder"):
        prepare_run_folder(config(data, tmp_path / "empty", resume=True))


def test_preflight_names_everything_missing(data, tmp_path):
    with pytest.raises(FileNotFoundError, match="no training shards"):
        preflight(config(tmp_path / "nowhere", tmp_path / "run"))
    with pytest.raises(ValueError) as err:
        preflight(config(data, tmp_path / "run", base_model_dir=tmp_path / "llava", spatial_checkpoint=tmp_path / "c.pth"))
    assert "--base-model" in str(err.value) and "--spatial-checkpoint" in str(err.value) and "does not exist" in str(err.value)
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(ValueError) as err:
            preflight(config(data, tmp_path / "run", preset="paper"))
        message = str(err.value)
        assert "needs --base-model" in message and "needs --spatial-checkpoint" in message and "needs a CUDA GPU" in message


def test_the_paper_preset_is_refused_before_transformers_is_imported(data, tmp_path):
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from vlm3r.model.train import TrainConfig, train\n"
        f"try:\n    train(TrainConfig(data=[Path({str(data)!r})], output_dir=Path({str(tmp_path / 'run')!r}), preset='paper'))\n"
        "except ValueError as e:\n    print('REFUSED', 'transformers' in sys.modules)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    import torch

    if torch.cuda.is_available():  # pragma: no cover - the GPU machine: the paths are still missing
        assert "REFUSED" in res.stdout
    else:
        assert res.stdout.strip() == "REFUSED False", res.stderr
    assert not (tmp_path / "run").exists()  # nothing written
