"""Model configurations: paper numbers, tiny through the same dataclasses, JSON round trip."""

from __future__ import annotations

import json

import pytest

from vlm3r.model.config import (
    Cut3rConfig,
    FusionConfig,
    ModelConfig,
    config_from_dict,
    config_to_dict,
    get_config,
    paper_config,
    tiny_config,
)


def test_paper_numbers():
    cfg = paper_config()
    assert cfg.cut3r.num_patches == 729 and cfg.vision.grid == 27
    assert cfg.pooled_grid == 14 and cfg.tokens_per_frame == 14 * 14 + 14
    assert (cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout) == (128, 256, 0.05)
    assert (cfg.fusion.visual_dim, cfg.fusion.spatial_dim, cfg.fusion.num_heads) == (1152, 768, 18)
    assert cfg.fusion.dropout == 0.1 and cfg.num_frames == 32


def test_tiny_is_tiny_and_roundtrips():
    for cfg in (tiny_config(), paper_config()):
        again = config_from_dict(json.loads(json.dumps(config_to_dict(cfg))))
        assert again == cfg
    tiny = get_config("tiny")
    assert tiny.cut3r.enc_depth == 2 and tiny.cut3r.img_size == 32 and tiny.text.num_hidden_layers == 2
    assert tiny.tokens_per_frame == 2 * 3  # 3x3 SigLIP grid pooled to 2x2, plus a newline per row


def test_bad_configs_are_rejected():
    with pytest.raises(ValueError, match="unknown model config 'huge'"):
        get_config("huge")
    with pytest.raises(ValueError, match="spatial_dim 32 != cut3r.dec_embed_dim 768"):
        ModelConfig(name="x", fusion=FusionConfig(spatial_dim=32), cut3r=Cut3rConfig())
    data = config_to_dict(tiny_config())
    data["cut3r"]["depth"] = 3
    with pytest.raises(ValueError, match="unknown cut3r keys \\['depth'\\]"):
        config_from_dict(data)
