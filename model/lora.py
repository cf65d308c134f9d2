"""LoRA (peft) on the language model and trainability (saving and loading: :mod:`.saved`).

Trainable: the LoRA matrices of the Qwen2 linear layers (attention q/k/v/o and MLP gate/up/down;
never ``lm_head``, never the vision tower), the fusion block and the projector. Frozen: SigLIP,
CUT3R, embeddings, ``lm_head``, ``image_newline`` and every base LM weight.
"""

from __future__ import annotations

from typing import Any

import torch

from .config import LoraSettings


def _peft():
    try:
        import peft
    except ImportError as e:  # pragma: no cover
        raise ImportError("LoRA needs peft: pip install 'vlm3r[model]'") from e
    return peft


def lora_target_regex(settings: LoraSettings) -> str:
    """Regex (peft full-match on module names) for the LM's linear layers, excluding lm_head and the vision tower."""
    names = "|".join(settings.target_modules)
    return rf"(?:.*\.)?language_model\.layers\.\d+\.(?:self_attn|mlp)\.(?:{names})"


def lora_config(settings: LoraSettings) -> Any:
    peft = _peft()
    return peft.LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=lora_target_regex(settings),
        bias="none",
        task_type="CAUSAL_LM",
    )


def apply_lora(llava: torch.nn.Module, settings: LoraSettings) -> Any:
    """Wrap the LLaVA model with peft LoRA adapters (B initialised to zero: the output is unchanged)."""
    import warnings

    with warnings.catch_warnings():  # peft asks transformers a deprecated question; not ours to fix
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return _peft().get_peft_model(llava, lora_config(settings))


def set_trainable(model: Any) -> None:
    """requires_grad = True exactly for LoRA, fusion and projector parameters of a :class:`VLM3R`."""
    for name, p in model.named_parameters():
        p.requires_grad_("lora_" in name)
    model.fusion.requires_grad_(True)
    model.projector.requires_grad_(True)


def parameter_groups(model: Any) -> dict[str, list[str]]:
    """Parameter names of a :class:`VLM3R` by role: ``lora``, ``fusion``, ``projector``, ``frozen``."""
    groups: dict[str, list[str]] = {"lora": [], "fusion": [], "projector": [], "frozen": []}
    for name, _ in model.named_parameters():
        if "lora_" in name:
            groups["lora"].append(name)
        elif name.startswith("fusion."):
            groups["fusion"].append(name)
        elif ".multi_modal_projector." in name:
            groups["projector"].append(name)
        else:
            groups["frozen"].append(name)
    return groups
