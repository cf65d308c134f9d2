"""VLM-3R with the tiny configuration: token layout, training step, save/load, cached tokens."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("safetensors")

from vlm3r.model.config import paper_config  # noqa: E402
from vlm3r.model.feature_cache import SpatialFeatureCache  # noqa: E402
from vlm3r.model.lora import parameter_groups  # noqa: E402
from vlm3r.model.saved import load_trained, save_trained  # noqa: E402
from vlm3r.model.vlm import VLM3R, build_fusion, build_llava, build_vlm3r, llava_config, siglip_pixels  # noqa: E402


@pytest.fixture(scope="module")
def model(tiny_cfg, tiny_checkpoints):
    base, ckpt = tiny_checkpoints
    return build_vlm3r(tiny_cfg, base_model_dir=base, cut3r_checkpoint=ckpt, seed=7).eval()


@pytest.fixture(scope="module")
def batch(tiny_cfg, make_prompt):
    """Two videos (B=2, T=4) with the same-length prompts, frames RGB in [0, 1]."""
    torch.manual_seed(0)
    n = tiny_cfg.num_frames * tiny_cfg.tokens_per_frame
    ids1, lab1 = make_prompt(n, "How many chairs are in the room?", "3")
    ids2, lab2 = make_prompt(n, "How many beds are in the room?", "1")
    assert ids1.shape == ids2.shape
    frames = torch.rand(2, tiny_cfg.num_frames, 3, 40, 40)
    return torch.cat([ids1, ids2]), torch.cat([lab1, lab2]), frames


def _inputs(cfg, frames):
    return siglip_pixels(frames, cfg.vision.image_size)


def test_video_tokens_pool_and_row_newlines(model, tiny_cfg, batch):
    _, _, frames = batch
    with torch.no_grad():
        emb = model.video_embeddings(_inputs(tiny_cfg, frames), cut3r_frames=frames)
    g = tiny_cfg.pooled_grid
    assert g == 2 and emb.shape == (2, tiny_cfg.num_frames * g * (g + 1), tiny_cfg.text.hidden_size)
    rows = emb.view(2, tiny_cfg.num_frames, g, g + 1, -1)
    newline = model.base.model.image_newline
    assert torch.equal(rows[:, :, :, g], newline.expand_as(rows[:, :, :, g]))
    assert not torch.allclose(rows[:, :, :, 0], newline.expand_as(rows[:, :, :, 0]))


def test_paper_shaped_video_tokens_on_meta_device():
    """Paper sizes: 32 frames -> 729 SigLIP tokens fused with 730 CUT3R tokens -> 14 x 14 + 14 LM tokens per frame."""
    from transformers import LlavaOnevisionForConditionalGeneration

    cfg = paper_config()
    with torch.device("meta"):
        llava = LlavaOnevisionForConditionalGeneration(llava_config(cfg))
        vlm = VLM3R(cfg, llava, build_fusion(cfg), None)
        pixels = torch.empty(1, 32, 3, 384, 384)
        spatial = torch.empty(1, 32, 730, 768)
    visual = vlm.visual_tokens(pixels)
    assert visual.shape == (32, 729, 1152)
    assert vlm.fusion(visual, spatial[0]).shape == (32, 729, 1152)
    emb = vlm.video_embeddings(pixels, spatial_tokens=spatial)
    assert emb.shape == (1, 32 * (14 * 14 + 14), 3584)


def test_videos_in_a_batch_do_not_mix(model, tiny_cfg, batch):
    ids, _, frames = batch
    other = frames.clone()
    other[1] = torch.rand_like(other[1])
    with torch.no_grad():
        a = model(ids, _inputs(tiny_cfg, frames), cut3r_frames=frames).logits
        b = model(ids, _inputs(tiny_cfg, other), cut3r_frames=other).logits
    torch.testing.assert_close(a[0], b[0], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(a[1], b[1], atol=1e-4)


def test_placeholder_count_must_match(model, tiny_cfg, batch):
    ids, _, frames = batch
    first = int((ids[0] == tiny_cfg.video_token_id).nonzero()[0])
    short = torch.cat([ids[:, :first], ids[:, first + 1 :]], dim=1)  # one <video> token fewer
    with pytest.raises(ValueError, match=r"exactly 24 <video> tokens.*got \[23, 23\]"):
        model(short, _inputs(tiny_cfg, frames), cut3r_frames=frames)
    with pytest.raises(ValueError, match="exactly one of spatial_tokens"):
        model(ids, _inputs(tiny_cfg, frames))


def test_lora_targets_only_language_model_linears(model, tiny_cfg):
    groups = parameter_groups(model)
    lora_modules = {n.rsplit(".lora_", 1)[0] for n in groups["lora"]}
    assert len(lora_modules) == 7 * tiny_cfg.text.num_hidden_layers
    assert all(".language_model.layers." in n for n in lora_modules)
    assert not any("lm_head" in n or "vision_tower" in n for n in groups["lora"])
    layer = model.base.model.language_model.layers[0].self_attn.q_proj
    assert layer.r["default"] == tiny_cfg.lora.r and layer.scaling["default"] == tiny_cfg.lora.alpha / tiny_cfg.lora.r
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == set(groups["lora"] + groups["fusion"] + groups["projector"])
    assert groups["projector"] and groups["fusion"]


def test_one_step_updates_only_trainables_and_save_load_restores(tmp_path, tiny_cfg, tiny_checkpoints, batch):
    base, ckpt = tiny_checkpoints
    ids, labels, frames = batch
    model = build_vlm3r(tiny_cfg, base_model_dir=base, cut3r_checkpoint=ckpt, seed=7).train()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.0)
    loss = model(ids, _inputs(tiny_cfg, frames), cut3r_frames=frames, labels=labels).loss
    assert torch.isfinite(loss)
    loss.backward()
    opt.step()
    groups = parameter_groups(model)
    params = dict(model.named_parameters())
    changed = {n for n, p in params.items() if not torch.equal(p, before[n])}
    assert not changed & set(groups["frozen"])  # frozen weights bit-identical
    assert set(groups["fusion"]) <= changed and set(groups["projector"]) <= changed
    assert {n for n in groups["lora"] if ".lora_B." in n} <= changed  # B starts at 0, so it moves first

    model.eval()
    with torch.no_grad():
        ref = model(ids, _inputs(tiny_cfg, frames), cut3r_frames=frames).logits
    out = save_trained(model, tmp_path / "run", base_model_dir=base, cut3r_checkpoint=ckpt, seed=7)
    assert {p.name for p in out.iterdir()} >= {
        "adapter_model.safetensors", "adapter_config.json", "non_lora_trainables.safetensors", "vlm3r_config.json"
    }
    loaded = load_trained(out)
    with torch.no_grad():
        again = loaded(ids, _inputs(tiny_cfg, frames), cut3r_frames=frames).logits
    assert torch.equal(again, ref)
    assert not any(p.requires_grad for p in loaded.parameters())


def test_cached_tokens_give_the_same_loss(tmp_path, model, tiny_cfg, batch):
    ids, labels, frames = batch
    cache = SpatialFeatureCache(tmp_path / "cache", tag="tiny")
    with torch.no_grad():
        live = model(ids, _inputs(tiny_cfg, frames), cut3r_frames=frames, labels=labels).loss
        tokens = torch.stack(
            [
                cache.get_or_compute(f"video{i}.mp4", range(tiny_cfg.num_frames), lambda i=i: model.spatial_tokens(frames[i : i + 1])[0])
                for i in range(2)
            ]
        )
        assert tokens.dtype == torch.float16
        cached = model(ids, _inputs(tiny_cfg, frames), spatial_tokens=tokens, labels=labels).loss
    torch.testing.assert_close(cached, live, atol=2e-3, rtol=1e-3)


def test_generate_returns_new_tokens(model, tiny_cfg, batch):
    ids, _, frames = batch
    out = model.generate(ids, _inputs(tiny_cfg, frames), cut3r_frames=frames, max_new_tokens=2, do_sample=False)
    assert out.shape == (2, 2) and int(out.max()) < tiny_cfg.text.vocab_size


def test_base_directory_must_fit_the_config(tiny_checkpoints):
    base, _ = tiny_checkpoints
    with pytest.raises(ValueError, match="llava_tiny: vision hidden_size is 32, the 'paper' model config expects 1152"):
        build_llava(paper_config(), base)
    with pytest.raises(FileNotFoundError, match="no config.json"):
        build_llava(paper_config(), base.parent)
