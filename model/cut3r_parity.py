"""Our CUT3R next to the official code: the same weights in both, one video, every output compared.

The official side is an unmodified checkout of CUT3R (``CUT3R/CUT3R``), imported from its ``src``
folder at run time (nothing of it is copied here). Its RoPE kernel ``curope`` is compiled for the
CPU from the checkout's own ``curope.cpp`` (with ``torch.utils.cpp_extension``, ninja); the CUDA half
of that file is replaced by a function that refuses, since this build never sees a GPU. One shim
stands between the official Python and that kernel: the CPU function reads float32 only, while the
official image encoder hands it float16 q/k (CroCo's ``Attention.forward`` casts before RoPE), so
float16 tokens are rotated the way the CUDA kernel treats them (read as float, rotate in float32,
store float16). Without that shim the official model cannot run on a CPU at all; without the kernel
its pure-PyTorch fallback fails on the pose token's position -1.

The official model is driven as VLM-3R drives it (``cut3r_spatial_encoder.prepare_input``: image
views with ``img_mask`` on, ``ray_mask`` off, ``update`` on, ``reset`` off) through
``ARCroco3DStereo.forward(views, ret_state=True)``; the normalised last decoder layer (camera token
first) is read with a forward hook on ``dec_norm``, the encoder tokens with one on ``enc_norm``.

Run it (a checkout made from ``git clone https://github.com/CUT3R/CUT3R``)::

    vlm3r-model parity-cut3r --official /path/to/CUT3R        # reduced depth, random weights
    vlm3r-model parity-cut3r --official /path/to/CUT3R --checkpoint cut3r_512_dpt_4_64.pth --full

Each line of the table is one output: the largest, over the frames, of the relative error
``||ours - official|| / ||official||`` (Frobenius norm), and the largest absolute difference.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn as nn

from .config import Cut3rConfig
from .cut3r import CUT3R

#: Where the checkout's RoPE kernel source lies, relative to its root.
CUROPE_SOURCE = Path("src/croco/models/curope/curope.cpp")

_NO_CUDA = """#include <torch/extension.h>
void rope_2d_cuda(torch::Tensor, const torch::Tensor, const float, const float) {
    TORCH_CHECK(false, "curope was built for the CPU only");
}
"""

#: The reduced depth the parity test uses: every width as the paper's model, fewer blocks.
REDUCED = dict(enc_depth=2, dec_depth=4)


def reduced_config(**overrides: object) -> Cut3rConfig:
    """The paper's CUT3R widths at :data:`REDUCED` depth (float32 compute, for a CPU)."""
    return dataclasses.replace(Cut3rConfig(compute_dtype="float32"), **{**REDUCED, **overrides})


def check_checkout(official: Path) -> Path:
    """The checkout's root, or ``ValueError`` naming what is missing."""
    official = Path(official)
    for rel in (CUROPE_SOURCE, Path("src/dust3r/model.py"), Path("src/croco/models/pos_embed.py")):
        if not (official / rel).is_file():
            raise ValueError(f"{official}: not a CUT3R checkout ({rel} is missing)")
    return official


def build_curope(official: Path, build_dir: Path) -> types.ModuleType:
    """Compile the checkout's ``curope.cpp`` for the CPU into ``build_dir`` (about 45 s, then cached).

    Returns a module ``curope`` whose ``rope_2d`` is the official CPU kernel for float32 tokens and,
    for float16/bfloat16 tokens, rotates a float32 copy with that kernel and stores it back, as the
    CUDA kernel (``AT_DISPATCH_FLOATING_TYPES_AND_HALF``, float arithmetic) does.
    """
    from torch.utils.cpp_extension import load

    source = check_checkout(official) / CUROPE_SOURCE
    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    stub = build_dir / "no_cuda.cpp"
    if not stub.is_file() or stub.read_text() != _NO_CUDA:
        stub.write_text(_NO_CUDA)
    kernel = load(
        name="vlm3r_official_curope",
        sources=[str(source), str(stub)],
        build_directory=str(build_dir),
        extra_cflags=["-O3"],
        verbose=False,
    )

    def rope_2d(tokens: torch.Tensor, positions: torch.Tensor, base: float, fwd: float) -> None:
        if tokens.dtype == torch.float32:
            kernel.rope_2d(tokens, positions, base, fwd)
            return
        work = tokens.float()
        kernel.rope_2d(work, positions, base, fwd)
        tokens.copy_(work)

    module = types.ModuleType("curope")
    module.rope_2d = rope_2d  # type: ignore[attr-defined]
    module.kernel = kernel  # type: ignore[attr-defined]
    return module


def import_official(official: Path, curope: types.ModuleType) -> types.ModuleType:
    """Import the checkout's ``dust3r.model`` with ``curope`` as its RoPE kernel.

    The checkout's ``src`` goes on ``sys.path`` (its modules import ``dust3r``, ``croco`` and, through
    ``path_to_croco``, ``models``). Raises ``RuntimeError`` when the official code did not pick the
    kernel up (it would fall back to its pure-PyTorch RoPE).
    """
    src = str(check_checkout(official) / "src")
    if src not in sys.path:
        sys.path.insert(0, src)
    sys.modules["curope"] = curope
    model = importlib.import_module("dust3r.model")
    pos_embed = importlib.import_module("models.pos_embed")
    curope2d = importlib.import_module("models.curope.curope2d")
    if pos_embed.RoPE2D is not curope2d.cuRoPE2D or curope2d._kernels is not curope:
        raise RuntimeError(f"{official}: the official code did not load the compiled curope kernel")
    return model


def official_config_kwargs(cfg: Cut3rConfig) -> dict[str, object]:
    """``ARCroco3DStereoConfig`` keyword arguments of ``cut3r_512_dpt_4_64`` at ``cfg``'s sizes.

    The fixed part is the checkpoint's own training string (``config/dpt_512_vary_4_64.yaml``).
    """
    inf = float("inf")
    return dict(
        freeze="encoder",
        state_size=cfg.state_size,
        state_pe="2d",
        pos_embed=f"RoPE{cfg.rope_freq:g}",
        rgb_head=cfg.rgb_head,
        pose_head=True,
        patch_embed_cls="ManyAR_PatchEmbed",
        img_size=(512, 512),
        head_type="dpt",
        output_mode="pts3d+pose",
        depth_mode=("exp", -inf, inf),
        conf_mode=("exp", 1, inf),
        pose_mode=("exp", -inf, inf),
        enc_embed_dim=cfg.enc_embed_dim,
        enc_depth=cfg.enc_depth,
        enc_num_heads=cfg.enc_num_heads,
        dec_embed_dim=cfg.dec_embed_dim,
        dec_depth=cfg.dec_depth,
        dec_num_heads=cfg.dec_num_heads,
        state_dec_num_heads=cfg.state_dec_num_heads,
        ray_enc_depth=cfg.ray_enc_depth,
        local_mem_size=cfg.local_mem_size,
        landscape_only=False,
    )


def build_official(official_model: types.ModuleType, cfg: Cut3rConfig) -> nn.Module:
    """The official ``ARCroco3DStereo`` at ``cfg``'s sizes, in eval mode."""
    config = official_model.ARCroco3DStereoConfig(**official_config_kwargs(cfg))
    return official_model.ARCroco3DStereo(config).eval()


def random_weights(cfg: Cut3rConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    """A seeded random state dict in the official layout: module initialisation, then every
    LayerNorm's scale and shift drawn away from (1, 0) so that they matter too."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = CUT3R(cfg)
    sd = model.state_dict()
    for name, module in model.named_modules():
        if isinstance(module, nn.LayerNorm):
            n = module.normalized_shape[0]
            sd[f"{name}.weight"] = 1.0 + 0.1 * torch.randn(n, generator=gen)
            sd[f"{name}.bias"] = 0.1 * torch.randn(n, generator=gen)
    return sd


def load_both(official: nn.Module, ours: CUT3R, sd: dict[str, torch.Tensor]) -> None:
    """Load ``sd`` into both with ``strict=True`` (the official class's own ``load_state_dict`` falls
    back to partial loads on a mismatch; ``nn.Module``'s is called to refuse one)."""
    theirs = {k: tuple(v.shape) for k, v in official.state_dict().items()}
    mine = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    if theirs != mine:
        diff = sorted(set(theirs) ^ set(mine))[:5] or [k for k in mine if theirs.get(k) != mine[k]][:5]
        raise ValueError(f"official and our CUT3R differ in parameters: {diff}")
    given = {k: tuple(v.shape) for k, v in sd.items()}
    if given != mine:
        diff = sorted(set(given) ^ set(mine))[:5] or [k for k in mine if given.get(k) != mine[k]][:5]
        raise ValueError(f"the weights do not fit this CUT3R configuration (the paper's needs --full): {diff}")
    nn.Module.load_state_dict(official, sd, strict=True)
    ours.load_state_dict(sd, strict=True)


def vlm3r_views(images: torch.Tensor) -> list[dict[str, object]]:
    """VLM-3R's ``prepare_input`` views for one video ``images`` (T, 3, H, W) in [-1, 1]: batch 1."""
    t, _, h, w = images.shape
    return [
        {
            "img": images[i : i + 1],
            "ray_map": torch.full((1, 6, h, w), torch.nan),
            "true_shape": torch.tensor([h, w]).expand(1, -1),
            "idx": i,
            "instance": ["0"],
            "camera_pose": torch.eye(4)[None],
            "img_mask": torch.tensor(True).expand(1),
            "ray_mask": torch.tensor(False).expand(1),
            "update": torch.tensor(True).expand(1),
            "reset": torch.tensor(False).expand(1),
        }
        for i in range(t)
    ]


@contextlib.contextmanager
def _captured(module: nn.Module, into: list[torch.Tensor]) -> Iterator[None]:
    handle = module.register_forward_hook(lambda _m, _i, out: into.append(out.detach().clone()))
    try:
        yield
    finally:
        handle.remove()


#: Head outputs compared (keys of the official ``DPTPts3dPose`` result and of ours).
HEAD_KEYS = ("pts3d_in_self_view", "conf_self", "pts3d_in_other_view", "conf", "camera_pose", "rgb")


@torch.no_grad()
def run_official(official: nn.Module, images: torch.Tensor) -> dict[str, list[torch.Tensor]]:
    """Per-frame outputs of the official model for one video (T, 3, H, W) in [-1, 1]."""
    enc: list[torch.Tensor] = []
    dec: list[torch.Tensor] = []
    with _captured(official.enc_norm, enc), _captured(official.dec_norm, dec):
        out, states = official(vlm3r_views(images), ret_state=True)
    t = images.shape[0]
    if len(dec) != t:
        raise RuntimeError(f"official dec_norm ran {len(dec)} times for {t} frames")
    result: dict[str, list[torch.Tensor]] = {
        "encoder tokens": list(enc[0].unbind(0)),
        "camera token": [d[0, 0] for d in dec],
        "patch tokens": [d[0, 1:] for d in dec],
        "state": [s[0][0] for s in states[1:]],
        "pose memory": [s[3][0] for s in states[1:]],
    }
    for key in HEAD_KEYS:
        if key in out.ress[0]:
            result[key] = [r[key][0] for r in out.ress]
    return result


@torch.no_grad()
def run_ours(model: CUT3R, images: torch.Tensor) -> dict[str, list[torch.Tensor]]:
    """The same outputs of our CUT3R, stepping its public API frame by frame."""
    size = (images.shape[-2], images.shape[-1])
    feat, pos = model.encode_images(images)
    state = model.init_state(1, images.device, feat.dtype)
    result: dict[str, list[torch.Tensor]] = {k: [] for k in ("camera token", "patch tokens", "state", "pose memory")}
    result["encoder tokens"] = list(feat.unbind(0))
    heads: dict[str, list[torch.Tensor]] = {}
    for i in range(images.shape[0]):
        state, out = model.step(state, feat[i : i + 1], pos[i : i + 1], first=i == 0, image_size=size)
        result["camera token"].append(out.tokens[0, 0])
        result["patch tokens"].append(out.tokens[0, 1:])
        result["state"].append(state.feat[0])
        result["pose memory"].append(state.mem[0])
        for key, value in (out.heads or {}).items():
            heads.setdefault(key, []).append(value[0])
    result.update(heads)
    return result


def compare(ours: dict[str, list[torch.Tensor]], theirs: dict[str, list[torch.Tensor]]) -> dict[str, tuple[float, float]]:
    """Per output name: (largest relative Frobenius error over frames, largest absolute difference).

    ``ValueError`` when the two runs do not have the same outputs and shapes.
    """
    if set(ours) != set(theirs):
        raise ValueError(f"outputs differ: ours only {sorted(set(ours) - set(theirs))}, official only {sorted(set(theirs) - set(ours))}")
    table: dict[str, tuple[float, float]] = {}
    for name, frames in theirs.items():
        rel, absolute = 0.0, 0.0
        for a, b in zip(ours[name], frames, strict=True):
            if a.shape != b.shape:
                raise ValueError(f"{name}: shape {tuple(a.shape)} here, {tuple(b.shape)} official")
            diff = (a.double() - b.double()).norm().item()
            rel = max(rel, diff / max(b.double().norm().item(), 1e-30))
            absolute = max(absolute, (a.double() - b.double()).abs().max().item())
        table[name] = (rel, absolute)
    return table


def sample_video(cfg: Cut3rConfig, frames: int = 3, seed: int = 0) -> torch.Tensor:
    """A smooth random video (T, 3, S, S) in [-1, 1] at ``cfg.img_size``: low-frequency noise
    upsampled, shifted a little each frame (closer to real frames than white noise)."""
    gen = torch.Generator().manual_seed(seed)
    s = cfg.img_size
    coarse = torch.rand(1, 3, s // 8 + frames, s // 8 + frames, generator=gen)
    big = torch.nn.functional.interpolate(coarse, scale_factor=8, mode="bicubic", align_corners=False)
    video = torch.stack([big[0, :, i * 8 : i * 8 + s, i * 8 : i * 8 + s] for i in range(frames)])
    return (video.clamp(0, 1) - 0.5) / 0.5


def parity(
    official: Path,
    build_dir: Path,
    cfg: Cut3rConfig,
    weights: dict[str, torch.Tensor] | None = None,
    frames: int = 3,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Build both models at ``cfg`` with ``weights`` (default :func:`random_weights`), run one
    ``frames``-frame video through each (float32, CPU) and return :func:`compare`'s table."""
    official_model = import_official(official, build_curope(official, build_dir))
    weights = weights if weights is not None else random_weights(cfg, seed)
    theirs_model = build_official(official_model, cfg)
    ours_model = CUT3R(cfg).eval()
    load_both(theirs_model, ours_model, weights)
    video = sample_video(cfg, frames, seed)
    theirs = run_official(theirs_model, video)
    del theirs_model
    return compare(run_ours(ours_model, video), theirs)


def format_table(table: dict[str, tuple[float, float]]) -> str:
    """The table as aligned text, one output a line."""
    width = max(len(k) for k in table)
    lines = [f"{'output':<{width}}  {'max rel. error':>14}  {'max abs. diff':>13}"]
    lines += [f"{name:<{width}}  {rel:>14.3e}  {absolute:>13.3e}" for name, (rel, absolute) in table.items()]
    return "\n".join(lines)
