"""Presets, YAML files and overrides: every preset builds; unknown keys and bad values name the field."""

from __future__ import annotations

import pytest
import torch

from emollama.model.configuration import EmoLlamaConfig
from emollama.model.modeling import EmoLlamaForConditionalGeneration
from emollama.model.presets import build_config, config_to_yaml, preset_names


def test_presets_shipped():
    assert {"tiny", "small", "llama-vid-7b"} <= set(preset_names())


def test_tiny_is_under_100k_parameters(tiny_model):
    assert sum(p.numel() for p in tiny_model.parameters()) < 100_000


@pytest.mark.parametrize("name", ["small", "llama-vid-7b"])
def test_large_presets_build_on_meta(name):
    cfg = build_config(name)
    with torch.device("meta"):
        model = EmoLlamaForConditionalGeneration(cfg)
    n = sum(p.numel() for p in model.parameters())
    if name == "llama-vid-7b":
        vision = sum(p.numel() for p in model.vision_tower.parameters())
        assert 0.95e9 < vision < 1.05e9  # EVA-ViT-G ~0.99 B (SPEC §2.3)
        assert model.llamavid.vlm_att_query.shape == (1, 32, 768)
        assert model.llamavid.vlm_att_val_projector.weight.shape == (4096, 1408)
        assert 7.5e9 < n < 8.5e9
    else:
        assert 1.0e8 < n < 3.0e8


def test_every_preset_yaml_validates():
    for name in preset_names():
        cfg = build_config(name)
        assert isinstance(cfg, EmoLlamaConfig)
        assert cfg.qformer_config.encoder_hidden_size == cfg.vision_config.hidden_size


def test_overrides_and_yaml_files(tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text("num_query: 8\nface_config:\n  num_queries: 2\n")
    cfg = build_config(["tiny", str(extra)], ["text_config.hidden_size=64", "compress_type=grid:2"])
    assert (cfg.num_query, cfg.face_config.num_queries, cfg.text_config.hidden_size) == (8, 2, 64)
    assert cfg.compress_type == "grid:2"
    assert cfg.face_config.hidden_size == 16  # untouched keys keep the preset's value


def test_unknown_keys_list_valid_keys():
    with pytest.raises(KeyError, match="unknown config key 'num_querys'.*'num_query'"):
        build_config("tiny", ["num_querys=3"])
    with pytest.raises(KeyError, match="unknown config key 'face_config.num_query'.*'num_queries'"):
        build_config("tiny", ["face_config.num_query=3"])
    with pytest.raises(KeyError, match="unknown model preset 'tinny'"):
        build_config("tinny")


@pytest.mark.parametrize("override, match", [
    ("compress_type=grid:x", "invalid compress_type"),
    ("conv_template=llama3", "conv_template must be"),
    ("face_config.num_queries=0", "num_queries must be >= 1"),
])
def test_bad_values_name_the_field(override, match):
    with pytest.raises(ValueError, match=match):
        build_config("tiny", [override])


def test_resolved_config_roundtrip(tmp_path):
    cfg = build_config("tiny", ["num_query=6"])
    cfg.save_pretrained(tmp_path)
    back = EmoLlamaConfig.from_pretrained(tmp_path)
    assert back.to_dict() == cfg.to_dict()
    assert "num_query: 6" in config_to_yaml(cfg)
