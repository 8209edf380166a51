"""Write a tiny checkpoint in LLaMA-VID's exact on-disk layout from one of our models (test helper).

The inverse name map here is written independently of `emollama.model.convert_names` (straight from SPEC §3.3,
§3.5-3.7), so a round trip through the converter checks both directions.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import torch

from emollama.model.tiny import tiny_lm_tokenizer, tiny_qformer_tokenizer

SHARDS = ("pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin")


def randomize_(model: torch.nn.Module, std: float = 0.3) -> None:
    """Every parameter ~ N(0, std) (LayerNorms included), except EVA's k-bias, which LAVIS fixes at zero."""
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, std)
        for layer in model.vision_tower.model.encoder.layers:
            d = layer.self_attn.qkv.weight.shape[1]
            layer.self_attn.qkv.bias[d : 2 * d] = 0.0


def _qformer_to_lavis(rel: str) -> str:
    rel = rel.replace("embeddings.layernorm.", "embeddings.LayerNorm.")
    rel = rel.replace(".crossattention.attention.", ".crossattention.self.")
    return rel.replace(".attention.attention.", ".attention.self.")


def _eva_to_lavis(rel: str, value: torch.Tensor) -> dict[str, torch.Tensor]:
    fixed = {
        "embeddings.class_embedding": "cls_token",
        "embeddings.position_embedding": "pos_embed",
        "embeddings.patch_embedding.weight": "patch_embed.proj.weight",
        "embeddings.patch_embedding.bias": "patch_embed.proj.bias",
    }
    if rel in fixed:
        return {fixed[rel]: value}
    if rel.startswith("post_layernorm."):  # BLIP-2's ln_vision; eva_vit_g.pth has no final norm
        return {}
    i, rest = rel[len("encoder.layers.") :].split(".", 1)
    if rest == "self_attn.qkv.bias":
        d = value.shape[0] // 3
        assert torch.all(value[d : 2 * d] == 0), "LAVIS cannot represent a non-zero k bias"
        return {f"blocks.{i}.attn.q_bias": value[:d], f"blocks.{i}.attn.v_bias": value[2 * d :]}
    rest = rest.replace("layer_norm1.", "norm1.").replace("layer_norm2.", "norm2.")
    rest = rest.replace("self_attn.qkv.", "attn.qkv.").replace("self_attn.projection.", "attn.proj.")
    return {f"blocks.{i}.{rest}": value}


def export_llamavid(model) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Our state dict -> (LLaMA-VID shard tensors, LAVIS eva_vit_g.pth tensors). Face modules are dropped."""
    lv: dict[str, torch.Tensor] = OrderedDict()
    eva: dict[str, torch.Tensor] = OrderedDict()
    for key, value in model.state_dict().items():
        value = value.detach().clone()
        if key.startswith("language_model."):
            lv[key[len("language_model.") :]] = value
        elif key.startswith("llamavid.vlm_att_encoder."):
            lv["model.vlm_att_encoder.bert." + _qformer_to_lavis(key[len("llamavid.vlm_att_encoder.") :])] = value
        elif key.startswith("llamavid."):
            lv["model." + key[len("llamavid.") :]] = value
        elif key.startswith("vision_tower.model."):
            eva.update(_eva_to_lavis(key[len("vision_tower.model.") :], value))
        else:
            assert key.startswith("face_mining."), key
    qcfg = model.config.qformer_config
    lv["model.vlm_att_encoder.bert.embeddings.position_ids"] = torch.arange(qcfg.max_position_embeddings)[None]
    head_dim = model.config.text_config.head_dim
    lv["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.ones(head_dim // 2)  # transformers 4.31 buffer
    return lv, eva


def llamavid_config(model, **extra) -> dict:
    """config.json as LLaMA-VID writes it (LlavaConfig: LLaMA fields at top level + multimodal fields)."""
    t, c = model.config.text_config, model.config
    cfg = {
        "_name_or_path": "./work_dirs/llama-vid/llama-vid-7b-full-224-video-fps-1",
        "architectures": ["LlavaLlamaAttForCausalLM"],
        "model_type": "llava",
        "bert_type": "qformer_pretrain",
        "num_query": c.num_query,
        "compress_type": c.compress_type,
        "image_aspect_ratio": "pad",
        "image_grid_pinpoints": None,
        "image_processor": "./llamavid/processor/clip-patch8-tiny",
        "mm_hidden_size": c.vision_config.hidden_size,
        "mm_projector_type": c.mm_projector_type,
        "mm_use_im_patch_token": False,
        "mm_use_im_start_end": False,
        "mm_vision_select_feature": "patch",
        "mm_vision_select_layer": -2,
        "mm_vision_tower": "./model_zoo/LAVIS/eva_vit_g.pth",
        "max_token": 2048,
        "freeze_mm_mlp_adapter": False,
        "tune_mm_mlp_adapter": False,
        "use_mm_proj": True,
        "bos_token_id": t.bos_token_id,
        "eos_token_id": t.eos_token_id,
        "pad_token_id": t.pad_token_id,
        "hidden_act": t.hidden_act,
        "hidden_size": t.hidden_size,
        "initializer_range": t.initializer_range,
        "intermediate_size": t.intermediate_size,
        "max_position_embeddings": t.max_position_embeddings,
        "num_attention_heads": t.num_attention_heads,
        "num_hidden_layers": t.num_hidden_layers,
        "num_key_value_heads": t.num_key_value_heads,
        "pretraining_tp": 1,
        "rms_norm_eps": t.rms_norm_eps,
        "rope_scaling": None,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "transformers_version": "4.31.0",
        "use_cache": True,
        "vocab_size": t.vocab_size,
    }
    cfg.update(extra)
    return cfg


def write_llamavid_dir(
    model,
    root: Path,
    *,
    eva_in_shards: bool = False,
    write_eva: bool = True,
    config_extra: dict | None = None,
    lm_tokenizer=None,
) -> dict[str, Path]:
    """Write `root/llama-vid` (config, 2 shards + index, tokenizer), `root/lavis/eva_vit_g.pth`, `root/bert`.

    Returns the paths: src, eva, qformer_tokenizer.
    """
    src, lavis, bert = root / "llama-vid", root / "lavis", root / "bert"
    for d in (src, lavis, bert):
        d.mkdir(parents=True, exist_ok=True)
    lv, eva = export_llamavid(model)
    if eva_in_shards:  # the released shards probably carry a bf16 EVA copy (SPEC §3.4)
        lv.update({"model.vision_tower.vision_tower." + k: v for k, v in eva.items()})
    keys = list(lv)
    split = len(keys) // 2
    weight_map = {}
    for shard, part in zip(SHARDS, (keys[:split], keys[split:]), strict=True):
        torch.save(OrderedDict((k, lv[k]) for k in part), src / shard)
        weight_map.update(dict.fromkeys(part, shard))
    total = sum(v.numel() * v.element_size() for v in lv.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (src / "pytorch_model.bin.index.json").write_text(json.dumps(index, indent=2))
    (src / "config.json").write_text(json.dumps(llamavid_config(model, **(config_extra or {})), indent=2))
    (src / "generation_config.json").write_text(json.dumps({"bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}))
    (lm_tokenizer or tiny_lm_tokenizer()).save_pretrained(src)
    tiny_qformer_tokenizer().save_pretrained(bert)
    if write_eva:
        torch.save(OrderedDict(eva), lavis / "eva_vit_g.pth")
    return {"src": src, "eva": lavis / "eva_vit_g.pth", "qformer_tokenizer": bert}
