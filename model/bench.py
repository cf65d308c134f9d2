"""Forward+backward benchmark of VLM-3R with random weights (no checkpoints needed).

``python -m vlm3r.model.bench --config tiny`` (CPU) or, on a GPU machine,
``python -m vlm3r.model.bench --config paper --device cuda --dtype bfloat16 --grad-ckpt``.
One step = CUT3R on the fly (frozen, no grad) + SigLIP (frozen) + fusion + projector + Qwen2 with
LoRA, loss on the answer tokens, backward, AdamW step. Reports the mean step time over ``steps``
timed steps (after ``warmup``), peak memory (CUDA allocator peak, or the process's max RSS on CPU),
and LM tokens (prompt + video tokens) processed per second.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from typing import Any

import torch

from .config import get_config
from .vlm import build_vlm3r, siglip_pixels


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(
    config: str = "tiny",
    device: str = "cpu",
    dtype: str | None = None,
    frames: int | None = None,
    batch: int = 1,
    steps: int = 3,
    warmup: int = 1,
    grad_ckpt: bool | None = None,
    prompt_tokens: int = 64,
    answer_tokens: int = 16,
    seed: int = 0,
) -> dict[str, Any]:
    """Time ``steps`` training steps; returns a dict of figures (seconds, GiB, tokens/s). Defaults
    are the trainer's: bf16 where the GPU has it (else float32) and the preset's activation
    checkpointing (on for ``paper``)."""
    from .train import TRAIN_PRESETS

    cfg = get_config(config)
    dev = torch.device(device)
    if dtype is None:
        dtype = "bfloat16" if dev.type == "cuda" and torch.cuda.is_bf16_supported() else "float32"
    if grad_ckpt is None:
        grad_ckpt = TRAIN_PRESETS[config].gradient_checkpointing
    dt = getattr(torch, dtype)
    t = frames or cfg.num_frames
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    with torch.device(dev):  # initialise directly on the device (the paper model is 8 B parameters)
        model = build_vlm3r(cfg, dtype=dt, seed=seed).train()
    build_s = time.perf_counter() - t0
    if grad_ckpt:
        model.base.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        model.base.enable_input_require_grads()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-5)
    n_video = t * cfg.tokens_per_frame
    length = prompt_tokens + n_video + answer_tokens
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 151643, (batch, length), generator=gen)
    ids[:, prompt_tokens // 2 : prompt_tokens // 2 + n_video] = cfg.video_token_id
    labels = torch.full_like(ids, -100)
    labels[:, -answer_tokens:] = ids[:, -answer_tokens:]
    frames_rgb = torch.rand(batch, t, 3, cfg.vision.image_size, cfg.vision.image_size, generator=gen)
    pixels = siglip_pixels(frames_rgb, cfg.vision.image_size).to(dev, dt)
    cut3r_frames = frames_rgb.to(dev)
    ids, labels = ids.to(dev), labels.to(dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    times = []
    loss = float("nan")
    for i in range(warmup + steps):
        _sync(dev)
        s = time.perf_counter()
        out = model(ids, pixels, cut3r_frames=cut3r_frames, labels=labels, use_cache=False)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        _sync(dev)
        if i >= warmup:
            times.append(time.perf_counter() - s)
        loss = float(out.loss.detach())
    step_s = sum(times) / len(times)
    if dev.type == "cuda":
        peak_gib = torch.cuda.max_memory_allocated(dev) / 2**30
    else:
        peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    return {
        "config": config,
        "device": str(dev) if dev.type != "cuda" else torch.cuda.get_device_name(dev),
        "dtype": dtype,
        "grad_ckpt": grad_ckpt,
        "batch": batch,
        "frames": t,
        "sequence_tokens": length,
        "video_tokens": n_video,
        "trainable_params": sum(p.numel() for p in params),
        "total_params": sum(p.numel() for p in model.parameters()),
        "build_s": round(build_s, 3),
        "step_s": round(step_s, 4),
        "step_s_all": [round(x, 4) for x in times],
        "peak_memory_gib": round(peak_gib, 3),
        "tokens_per_s": round(batch * length / step_s, 1),
        "loss": loss,
        "torch_threads": torch.get_num_threads(),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="tiny", choices=["tiny", "paper"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"], help="default: as the trainer")
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--grad-ckpt", action=argparse.BooleanOptionalAction, default=None, help="default: the preset's")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads (CPU)")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    res = bench(a.config, a.device, a.dtype, a.frames, a.batch, a.steps, a.warmup, a.grad_ckpt)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
