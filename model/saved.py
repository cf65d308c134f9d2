"""Save and load a trained VLM-3R: only the trained weights, plus where the frozen ones came from.

A saved model directory holds:

* ``adapter_model.safetensors`` + ``adapter_config.json`` - the peft LoRA adapter,
* ``non_lora_trainables.safetensors`` - fusion (``fusion.*``) and projector (``projector.*``) weights,
* ``vlm3r_config.json`` - the model config plus where the base LLaVA directory, the CUT3R
  checkpoint and the CUT3R token cache were (``null`` for seeded random weights, with the seed;
  ``null`` cache when training encoded CUT3R itself),
* ``README.md`` - a model card written from that configuration and the training recipe.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from .config import ModelConfig, config_from_dict, config_to_dict
from .lora import _peft, set_trainable
from .vlm import VLM3R, build_cut3r_encoder, build_fusion, build_llava

CONFIG_FILE = "vlm3r_config.json"
NON_LORA_FILE = "non_lora_trainables.safetensors"
FORMAT_VERSION = 1


def save_trained(
    model: Any,
    out_dir: Path,
    base_model_dir: Path | None = None,
    cut3r_checkpoint: Path | None = None,
    seed: int = 0,
    training: dict[str, Any] | None = None,
    feature_cache: Path | None = None,
) -> Path:
    """Save adapter + non-LoRA trainables (safetensors) + config into ``out_dir``, and a model card
    (``README.md``) written from that configuration and ``training`` (the run's data and recipe)."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if not hasattr(model.llava, "save_pretrained") or not hasattr(model.llava, "peft_config"):
        raise ValueError("save_trained expects a VLM-3R model with LoRA applied (apply_lora)")
    model.llava.save_pretrained(str(out), safe_serialization=True)
    tensors = {f"fusion.{k}": v.detach().cpu().contiguous() for k, v in model.fusion.state_dict().items()}
    tensors.update({f"projector.{k}": v.detach().cpu().contiguous() for k, v in model.projector.state_dict().items()})
    save_file(tensors, str(out / NON_LORA_FILE), metadata={"format": "pt"})
    meta = {
        "format_version": FORMAT_VERSION,
        "model": config_to_dict(model.cfg),
        "base_model_dir": str(Path(base_model_dir).resolve()) if base_model_dir is not None else None,
        "cut3r_checkpoint": str(Path(cut3r_checkpoint).resolve()) if cut3r_checkpoint is not None else None,
        "with_cut3r": model.spatial_encoder is not None,
        "seed": seed,
        "feature_cache": str(Path(feature_cache).resolve()) if feature_cache is not None else None,
    }
    (out / CONFIG_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    (out / "README.md").write_text(model_card(model.cfg, meta, training or {}), encoding="utf-8")  # replaces peft's template
    return out


def model_card(cfg: ModelConfig, meta: dict[str, Any], training: dict[str, Any]) -> str:
    """A Hugging Face model card of a trained VLM-3R: what it is, what it was built from and how it
    was trained, and how to use it."""
    base = meta.get("base_model_dir") or f"random weights (seed {meta.get('seed', 0)})"
    cut3r = meta.get("cut3r_checkpoint") or ("cached CUT3R tokens only" if not meta.get("with_cut3r") else "random weights")
    lines = [
        "---", "library_name: peft", "tags:", "- vlm3r", "- spatial-reasoning", "- video-question-answering", "- lora", "---", "",
        f"# VLM-3R ({cfg.name} configuration), trained with vlm3r", "",
        "LoRA adapter, fusion block and projector of VLM-3R: CUT3R reconstruction tokens fused into a "
        "LLaVA-Video backbone. Only the trained weights are here; the frozen ones come from the paths below.", "",
        "## Built from", "",
        f"- base model: {base}", f"- CUT3R: {cut3r}",
        f"- frames per video: {cfg.num_frames}, {cfg.tokens_per_frame} LM tokens per frame",
        f"- LoRA: r={cfg.lora.r}, alpha={cfg.lora.alpha}, dropout={cfg.lora.dropout}", "",
    ]
    if training:
        lines += ["## Training", ""]
        for key, value in training.items():
            lines.append(f"- {key}: {json.dumps(value, default=str) if not isinstance(value, str) else value}")
        lines.append("")
    lines += [
        "## Use", "", "```bash",
        "vlm3r-eval predict --model THIS_FOLDER --benchmark BUILD --out predictions.jsonl",
        "vlm3r-eval score --benchmark BUILD --predictions predictions.jsonl", "```", "",
    ]
    return "\n".join(lines)


def read_saved_config(out_dir: Path) -> tuple[ModelConfig, dict[str, Any]]:
    """The model config and the raw metadata of a saved directory."""
    path = Path(out_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a saved VLM-3R model (missing {CONFIG_FILE})")
    try:
        meta = json.loads(path.read_text())
        meta["model"].setdefault("time_instruction", False)  # saved before the option existed: trained without it
        cfg = config_from_dict(meta["model"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: unreadable VLM-3R config ({e})") from e
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format_version {meta.get('format_version')} (expected {FORMAT_VERSION})")
    return cfg, meta


def load_trained(
    out_dir: Path,
    base_model_dir: Path | None = None,
    cut3r_checkpoint: Path | None = None,
    with_cut3r: bool | None = None,
    trainable: bool = False,
    dtype: torch.dtype = torch.float32,
) -> Any:
    """Rebuild a saved VLM-3R exactly: base (``base_model_dir`` or the saved one), LoRA adapter,
    fusion and projector weights, CUT3R (``cut3r_checkpoint`` or the saved one)."""
    from safetensors.torch import load_file

    out = Path(out_dir)
    cfg, meta = read_saved_config(out)
    base_dir = base_model_dir if base_model_dir is not None else meta.get("base_model_dir")
    ckpt = cut3r_checkpoint if cut3r_checkpoint is not None else meta.get("cut3r_checkpoint")
    seed = int(meta.get("seed", 0))
    use_cut3r = meta.get("with_cut3r", True) if with_cut3r is None else with_cut3r
    llava = build_llava(cfg, Path(base_dir) if base_dir else None, dtype=dtype, seed=seed)
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        peft_model = _peft().PeftModel.from_pretrained(llava, str(out), is_trainable=trainable)
    encoder = build_cut3r_encoder(cfg, Path(ckpt) if ckpt else None, dtype=dtype, seed=seed + 1) if use_cut3r else None
    model = VLM3R(cfg, peft_model, build_fusion(cfg, dtype=dtype, seed=seed + 2), encoder)
    tensors = load_file(str(out / NON_LORA_FILE))
    fusion_sd = {k[len("fusion.") :]: v for k, v in tensors.items() if k.startswith("fusion.")}
    proj_sd = {k[len("projector.") :]: v for k, v in tensors.items() if k.startswith("projector.")}
    try:
        model.fusion.load_state_dict(fusion_sd, strict=True)
        model.projector.load_state_dict(proj_sd, strict=True)
    except RuntimeError as e:
        raise ValueError(f"{out / NON_LORA_FILE}: does not fit the saved config ({e})") from e
    model.to(dtype)
    if trainable:
        set_trainable(model)
    else:
        model.requires_grad_(False)
        model.eval()
    return model
