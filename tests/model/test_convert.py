"""`emollama convert llama-vid`: name maps, round trip through LLaMA-VID's on-disk layout, parity, errors."""

from __future__ import annotations

import json
import logging
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tests.model.llamavid_fixture import SHARDS, randomize_, write_llamavid_dir
from tests.numerics import assert_close_numerics
from transformers import InstructBlipQFormerModel

from emollama.cli.__main__ import main
from emollama.model import convert_names as names
from emollama.model.build import build_tiny
from emollama.model.checkpoint import load_pretrained
from emollama.model.convert import convert_llamavid
from emollama.model.convert_config import build_emollama_config, parse_compress_type, read_llamavid_config
from emollama.model.convert_io import interpolate_pos_embed
from emollama.model.presets import load_yaml


@pytest.fixture
def source(tmp_path):
    """A random tiny model and its LLaMA-VID export (2 shards + index, eva_vit_g.pth, tokenizers)."""
    model, processor = build_tiny()
    randomize_(model)
    return model, processor, write_llamavid_dir(model, tmp_path)


def _convert(paths, dst, *extra: str, eva: bool = True) -> int:
    argv = ["convert", "llama-vid", str(paths["src"]), str(dst), "--qformer-tokenizer",
            str(paths["qformer_tokenizer"]), "--face-preset", "tiny", "--dtype", "float32", *extra]  # fmt: skip
    return main(argv + (["--eva", str(paths["eva"])] if eva else []))


def _inputs(processor, seed: int = 0):
    frame = (np.random.default_rng(seed).random((40, 48, 3)) * 255).astype(np.uint8)
    conv = [{"role": "user", "content": "<image>\nwhat is the expression ?"}, {"role": "assistant", "content": "happy"}]
    return processor(conv, media=[frame])


def _logits(model, batch) -> torch.Tensor:
    with torch.no_grad():
        return model(**batch).logits


# --- pure name maps -------------------------------------------------------------------------------------------
def test_qformer_and_lm_routing():
    assert names.route_key("model.layers.3.self_attn.rotary_emb.inv_freq") is None
    assert names.route_key("lm_head.weight") == (names.LM, "language_model.lm_head.weight")
    assert names.route_key("model.vlm_att_query") == (names.CONTEXT, "llamavid.vlm_att_query")
    assert names.route_key("model.vlm_att_encoder.bert.embeddings.position_ids") is None
    q = "model.vlm_att_encoder.bert.encoder.layer.2.crossattention.self.key.weight"
    assert names.route_key(q) == (
        names.QFORMER,
        "llamavid.vlm_att_encoder.encoder.layer.2.crossattention.attention.key.weight",
    )
    assert names.qformer_name("embeddings.LayerNorm.bias") == "embeddings.layernorm.bias"
    assert names.qformer_name("encoder.layer.0.attention.output.LayerNorm.weight").endswith("output.LayerNorm.weight")
    assert names.route_key("model.vlm_att_bert_proj.weight") == ("unknown", "model.vlm_att_bert_proj.weight")


def test_eva_bias_fusion_matches_installed_blip2():
    fused = "encoder.layers.0.self_attn.qkv.bias" in build_tiny()[0].vision_tower.model.state_dict()
    q, v = torch.randn(4), torch.randn(4)
    out, ignored = names.eva_to_hf({"blocks.0.attn.q_bias": q, "blocks.0.attn.v_bias": v, "head.weight": q}, fused)
    assert ignored == ["head.weight"]
    if fused:
        assert torch.equal(out["encoder.layers.0.self_attn.qkv.bias"], torch.cat([q, torch.zeros(4), v]))
    else:
        assert torch.equal(out["encoder.layers.0.self_attn.q_bias"], q)


def test_compress_type_and_pos_embed():
    assert parse_compress_type("mean_concat") == "mean"
    assert parse_compress_type("grid:4") == "grid:4"
    assert parse_compress_type(None) is None
    pos = torch.randn(1, 1 + 16, 8)
    assert interpolate_pos_embed(pos, 4) is pos
    big = interpolate_pos_embed(pos, 6)
    assert big.shape == (1, 37, 8) and torch.equal(big[:, 0], pos[:, 0])


def _llamavid_7b_shapes() -> dict[str, tuple[int, ...]]:
    """Every tensor of llama-vid-7b-full-224 with its shape, transcribed from SPEC §3.3 (LAVIS Q-Former names)."""
    h, f, b = 4096, 11008, "model.vlm_att_encoder.bert."
    k: dict[str, tuple[int, ...]] = {"model.embed_tokens.weight": (32000, h), "model.norm.weight": (h,)}
    k["lm_head.weight"] = (32000, h)
    for i in range(32):
        p = f"model.layers.{i}."
        k.update({f"{p}self_attn.{n}_proj.weight": (h, h) for n in "qkvo"})
        k.update(
            {f"{p}mlp.gate_proj.weight": (f, h), f"{p}mlp.up_proj.weight": (f, h), f"{p}mlp.down_proj.weight": (h, f)}
        )
        k.update({f"{p}input_layernorm.weight": (h,), f"{p}post_attention_layernorm.weight": (h,)})
    for name, (out, inp) in {"mm_projector.0": (h, 1408), "mm_projector.2": (h, h), "vlm_att_projector": (1408, 768),
                             "vlm_att_key_projector": (1408, 1408), "vlm_att_val_projector": (h, 1408),
                             "vlm_att_ln": (1408, None)}.items():  # fmt: skip
        k[f"model.{name}.weight"] = (out, inp) if inp else (out,)
        k[f"model.{name}.bias"] = (out,)
    k["model.vlm_att_query"] = (1, 32, 768)
    k.update({f"{b}embeddings.word_embeddings.weight": (30523, 768), f"{b}embeddings.position_ids": (1, 512)})
    k.update({f"{b}embeddings.position_embeddings.weight": (512, 768), f"{b}embeddings.LayerNorm.weight": (768,)})
    k[f"{b}embeddings.LayerNorm.bias"] = (768,)
    for i in range(12):
        p = f"{b}encoder.layer.{i}."
        for att in ("attention", "crossattention") if i % 2 == 0 else ("attention",):
            width = 1408 if att == "crossattention" else 768
            for n, shape in {"self.query": (768, 768), "self.key": (768, width), "self.value": (768, width),
                             "output.dense": (768, 768)}.items():  # fmt: skip
                k[f"{p}{att}.{n}.weight"], k[f"{p}{att}.{n}.bias"] = shape, (768,)
            k[f"{p}{att}.output.LayerNorm.weight"] = k[f"{p}{att}.output.LayerNorm.bias"] = (768,)
        for mid, out in (("intermediate", "output"), ("intermediate_query", "output_query")):
            k[f"{p}{mid}.dense.weight"], k[f"{p}{mid}.dense.bias"] = (3072, 768), (3072,)
            k[f"{p}{out}.dense.weight"], k[f"{p}{out}.dense.bias"] = (768, 3072), (768,)
            k[f"{p}{out}.LayerNorm.weight"] = k[f"{p}{out}.LayerNorm.bias"] = (768,)
    return k


def _eva_g_shapes() -> dict[str, tuple[int, ...]]:
    """eva_vit_g.pth, SPEC §3.5."""
    d = 1408
    k = {"cls_token": (1, 1, d), "pos_embed": (1, 257, d), "patch_embed.proj.weight": (d, 3, 14, 14)}
    k["patch_embed.proj.bias"] = (d,)
    for i in range(39):
        p = f"blocks.{i}."
        for n in ("norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias", "attn.q_bias", "attn.v_bias",
                  "attn.proj.bias", "mlp.fc2.bias"):  # fmt: skip
            k[p + n] = (d,)
        k.update({f"{p}attn.qkv.weight": (3 * d, d), f"{p}attn.proj.weight": (d, d)})
        k.update({f"{p}mlp.fc1.weight": (6144, d), f"{p}mlp.fc1.bias": (6144,), f"{p}mlp.fc2.weight": (d, 6144)})
    return k


def test_paper_scale_shape_tables_match_our_model():
    """All of llama-vid-7b + EVA-G (SPEC shapes, meta tensors) routes, checks and loads strictly into our 7B model."""
    from emollama.model.convert import check_components, check_shapes
    from emollama.model.convert_io import fused_qkv_bias
    from emollama.model.modeling import EmoLlamaForConditionalGeneration

    state, sources = {}, {}
    for key, shape in _llamavid_7b_shapes().items():
        routed = names.route_key(key)
        if routed is not None:
            state[routed[1]], sources[routed[1]] = torch.empty(shape, device="meta"), key
    eva = {k: torch.empty(s, device="meta") for k, s in _eva_g_shapes().items()}
    assert 0.98e9 < sum(t.numel() for t in eva.values()) < 1.0e9  # "≈0.99 B" (SPEC §2.3)
    eva, ignored = names.eva_to_hf(eva, fused_qkv_bias())
    assert not ignored
    qformer = {k[len("llamavid.vlm_att_encoder.") :]: v for k, v in state.items() if ".vlm_att_encoder." in k}
    cfg = {"bert_type": "qformer_pretrain", "num_query": 32, "compress_type": None, "mm_hidden_size": 1408,
           "image_processor": "./llamavid/processor/clip-patch14-224", "mm_projector_type": "mlp2x_gelu",
           "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
           "vocab_size": 32000, "max_position_embeddings": 4096, "rms_norm_eps": 1e-5}  # fmt: skip
    config = build_emollama_config(cfg, names.infer_vision_fields(eva), names.infer_qformer_fields(qformer))
    assert (config.qformer_config.cross_attention_frequency, config.vision_config.image_size) == (2, 224)
    state.update({"vision_tower.model." + k: v for k, v in eva.items()})
    with torch.device("meta"):
        expected = {k: v.shape for k, v in EmoLlamaForConditionalGeneration(config).state_dict().items()}
    check_shapes(state, sources, expected, config)
    fresh = check_components(state, expected)
    assert all(k.startswith(("face_mining.", "vision_tower.model.post_layernorm.")) for k in fresh)


# --- round trip and parity ------------------------------------------------------------------------------------
def test_roundtrip_gives_identical_logits(source, tmp_path):
    model, processor, paths = source
    assert _convert(paths, tmp_path / "out") == 0
    converted, proc2 = load_pretrained(tmp_path / "out")
    batch = _inputs(processor)
    assert torch.equal(batch["input_ids"], _inputs(proc2)["input_ids"])
    torch.testing.assert_close(_logits(converted, batch), _logits(model, batch), rtol=0, atol=0)
    assert converted.config.face_config.num_queries == model.config.face_config.num_queries
    assert (tmp_path / "out" / "model.safetensors").is_file() and not list((tmp_path / "out").rglob("*.bin"))


def test_context_token_parity_without_our_modules(source, tmp_path):
    """SPEC §2.5 from the LLaMA-VID-named tensors + HF InstructBlipQFormerModel == our converted model."""
    _, _, paths = source
    assert _convert(paths, tmp_path / "out") == 0
    ours, proc = load_pretrained(tmp_path / "out")
    lv = {}
    for shard in SHARDS:
        lv.update(torch.load(paths["src"] / shard, weights_only=True))
    prefix = "model.vlm_att_encoder.bert."
    qformer = InstructBlipQFormerModel(ours.config.qformer_config).eval()
    # SPEC §3.6 rules applied by hand (not through convert_names): LayerNorm rename, attention.self, no position_ids
    renamed = {
        k[len(prefix) :]
        .replace("embeddings.LayerNorm.", "embeddings.layernorm.")
        .replace("attention.self.", "attention.attention."): v
        for k, v in lv.items()
        if k.startswith(prefix) and not k.endswith("position_ids")
    }
    qformer.load_state_dict(renamed, strict=True)
    feats = torch.randn(2, 17, ours.config.vision_config.hidden_size)  # (R, 1 + P, Dv) raw EVA output
    q = proc.qformer_tokenizer(["what is the expression", "happy"], padding="longest", return_tensors="pt")
    queries = lv["model.vlm_att_query"].expand(2, -1, -1)
    ln = F.layer_norm(feats, feats.shape[-1:], lv["model.vlm_att_ln.weight"], lv["model.vlm_att_ln.bias"], 1e-5)
    mask = torch.cat([torch.ones(queries.shape[:2], dtype=q["attention_mask"].dtype), q["attention_mask"]], 1)
    with torch.no_grad():
        out = qformer(input_ids=q["input_ids"], attention_mask=mask, query_embeds=queries, encoder_hidden_states=ln)
        qt = F.linear(
            out.last_hidden_state[:, : queries.shape[1]],
            lv["model.vlm_att_projector.weight"],
            lv["model.vlm_att_projector.bias"],
        )  # (R, 4, Dv)
        v = feats[:, 1:]
        k = F.linear(v, lv["model.vlm_att_key_projector.weight"], lv["model.vlm_att_key_projector.bias"])
        a = torch.softmax(qt @ k.transpose(1, 2) / math.sqrt(v.shape[-1]), dim=-1)  # (R, 4, P)
        ctx = F.linear(
            (a @ v).mean(1, keepdim=True),
            lv["model.vlm_att_val_projector.weight"],
            lv["model.vlm_att_val_projector.bias"],
        )  # (R, 1, Dt)
        content = F.linear(F.gelu(F.linear(v.mean(1, keepdim=True), lv["model.mm_projector.0.weight"],
                                           lv["model.mm_projector.0.bias"])),
                           lv["model.mm_projector.2.weight"], lv["model.mm_projector.2.bias"])  # fmt: skip
        got = ours.llamavid(feats, q["input_ids"], q["attention_mask"])
    assert_close_numerics(got, torch.cat([ctx, content], 1))  # HF Q-Former + F.linear vs ours: up to rounding


def test_eva_from_shards_and_num_qformer(tmp_path):
    """Long-video style config (num_qformer, extra internal keys) + EVA only inside the shards."""
    model, processor = build_tiny()
    randomize_(model)
    extra = {"num_query": None, "num_qformer": 4, "cross_att_freq": 2, "fusion_type": "attention_concat_all_query"}
    paths = write_llamavid_dir(model, tmp_path, eva_in_shards=True, write_eva=False, config_extra=extra)
    cfg = json.loads((paths["src"] / "config.json").read_text())
    cfg.pop("num_query")
    (paths["src"] / "config.json").write_text(json.dumps(cfg))
    assert _convert(paths, tmp_path / "out", "--set", "face_config.num_queries=2", eva=False) == 0
    converted, _ = load_pretrained(tmp_path / "out")
    assert converted.config.num_query == 4 and converted.config.face_config.num_queries == 2
    batch = _inputs(processor, seed=1)
    torch.testing.assert_close(_logits(converted, batch), _logits(model, batch), rtol=0, atol=0)


def test_odd_width_head_counts_come_from_set(source, tmp_path, capsys):
    """Widths that are no multiple of 88 / 64 and absent from the face preset: the error's advice (--set
    ...num_attention_heads=N) is what makes the conversion work, and the converted model is the source model."""
    import yaml

    model, processor, paths = source
    preset = tmp_path / "face_only.yaml"  # tiny's face modules, but no vision/Q-Former widths to borrow heads from
    preset.write_text(yaml.safe_dump({"face_config": load_yaml("tiny")["face_config"], "frame_sampling": "uniform:4"}))
    assert _convert(paths, tmp_path / "bad", "--face-preset", str(preset)) == 1
    err = capsys.readouterr().err
    assert "--set vision_config.num_attention_heads=N" in err
    sets = ["--set", "vision_config.num_attention_heads=2", "--set", "qformer_config.num_attention_heads=2"]
    assert _convert(paths, tmp_path / "out", "--face-preset", str(preset), *sets) == 0
    converted, _ = load_pretrained(tmp_path / "out")
    assert converted.config.vision_config.num_attention_heads == 2
    assert converted.config.qformer_config.num_attention_heads == 2
    batch = _inputs(processor)
    torch.testing.assert_close(_logits(converted, batch), _logits(model, batch), rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"num_attention_heads=3: must divide the width 16"):
        build_emollama_config(read_llamavid_config(paths["src"]), {"hidden_size": 16, "intermediate_size": 32,
                              "num_hidden_layers": 1, "patch_size": 8, "image_size": 32},
                              {"hidden_size": 16, "vocab_size": 160}, face_preset=str(preset),
                              overrides=["vision_config.num_attention_heads=3"])  # fmt: skip


def test_single_safetensors_file(source, tmp_path):
    from safetensors.torch import save_file

    model, processor, paths = source
    merged = {}
    for shard in SHARDS:
        merged.update(torch.load(paths["src"] / shard, weights_only=True))
        (paths["src"] / shard).unlink()
    (paths["src"] / "pytorch_model.bin.index.json").unlink()
    save_file({k: v.contiguous().clone() for k, v in merged.items()}, paths["src"] / "model.safetensors")
    assert _convert(paths, tmp_path / "out") == 0
    converted, _ = load_pretrained(tmp_path / "out")
    batch = _inputs(processor)
    torch.testing.assert_close(_logits(converted, batch), _logits(model, batch), rtol=0, atol=0)


def test_336_processor_name_interpolates_pos_embed(source, tmp_path):
    """A '-336' image_processor with 224-grid EVA weights: pos_embed is resized bicubically, CLS kept (SPEC §2.3)."""
    from safetensors.torch import load_file

    model, _, paths = source
    cfg = json.loads((paths["src"] / "config.json").read_text())
    cfg["image_processor"] = "./llamavid/processor/clip-patch14-336"
    (paths["src"] / "config.json").write_text(json.dumps(cfg))
    assert _convert(paths, tmp_path / "out") == 0
    saved = load_file(tmp_path / "out" / "model.safetensors")["vision_tower.model.embeddings.position_embedding"]
    pos = model.vision_tower.model.embeddings.position_embedding.detach()  # (1, 1 + 4 * 4, 16)
    grid = 336 // 8
    ref = F.interpolate(pos[:, 1:].reshape(1, 4, 4, -1).permute(0, 3, 1, 2), size=(grid, grid), mode="bicubic",
                        align_corners=False).permute(0, 2, 3, 1).reshape(1, grid * grid, -1)  # fmt: skip
    assert saved.shape == (1, 1 + grid * grid, 16)
    assert torch.equal(saved[:, 0], pos[:, 0]) and torch.allclose(saved[:, 1:], ref)
    assert json.loads((tmp_path / "out" / "config.json").read_text())["vision_config"]["image_size"] == 336


def test_config_from_released_long_video_json(tmp_path, caplog):
    """SPEC §3.2: num_qformer instead of num_query, internal keys, 'mean_concat', RoPE x16; 7B sizes, no weights."""
    cfg = {
        "model_type": "llava", "architectures": ["LlavaLlamaAttForCausalLM"], "bert_type": "qformer_pretrain_freeze",
        "num_qformer": 32, "cross_att_freq": 2, "fusion_type": "attention_concat_all_query", "debug_use": False,
        "compress_type": "mean_concat", "image_processor": "./model_zoo/OpenAI/clip-vit-large-patch14",
        "mm_hidden_size": 1408, "mm_projector_type": "mlp2x_gelu", "mm_vision_tower": "./model_zoo/LAVIS/eva_vit_g.pth",
        "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
        "num_key_value_heads": 32, "vocab_size": 32000, "max_position_embeddings": 4096, "rms_norm_eps": 1e-5,
        "rope_scaling": {"type": "linear", "factor": 16.0}, "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0,
    }  # fmt: skip
    vision = {
        "hidden_size": 1408,
        "intermediate_size": 6144,
        "num_hidden_layers": 39,
        "patch_size": 14,
        "image_size": 224,
    }
    qformer = {"vocab_size": 30523, "hidden_size": 768, "max_position_embeddings": 512, "num_hidden_layers": 12,
               "intermediate_size": 3072, "cross_attention_frequency": 2}  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with caplog.at_level(logging.INFO, logger="emollama.model.convert_config"):
        c = build_emollama_config(
            read_llamavid_config(tmp_path), vision, qformer, overrides=["conv_template=chat_template"]
        )
    assert (c.num_query, c.compress_type, c.vision_config.num_attention_heads) == (32, "mean", 16)
    assert c.qformer_config.num_attention_heads == 12 and c.qformer_config.encoder_hidden_size == 1408
    assert c.text_config.rope_parameters["rope_type"] == "linear" and c.text_config.rope_parameters["factor"] == 16.0
    assert c.conv_template == "chat_template" and c.face_config.num_queries == 32
    assert caplog.text.count("cross_att_freq") == 1
    with pytest.raises(ValueError, match="unsupported bert_type 'raw_bert'"):
        build_emollama_config({**cfg, "bert_type": "raw_bert"}, vision, qformer)


def test_new_placeholder_rows_are_mean_initialised(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from emollama.model.tiny import PUNCT, tiny_words

    vocab = {t: i for i, t in enumerate(["<unk>", "<s>", "</s>", "<pad>", *PUNCT, *tiny_words()])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    plain = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                    pad_token="<pad>")  # fmt: skip
    model, _ = build_tiny([f"text_config.vocab_size={len(vocab)}"])
    paths = write_llamavid_dir(model, tmp_path, lm_tokenizer=plain)
    assert convert_llamavid(paths["src"], tmp_path / "out", eva=paths["eva"], face_preset="tiny", dtype=torch.float32,
                            qformer_tokenizer=paths["qformer_tokenizer"]).is_dir()  # fmt: skip
    converted, proc = load_pretrained(tmp_path / "out")
    n = len(vocab)
    emb = converted.get_input_embeddings().weight
    assert emb.shape[0] == n + 3 == converted.config.text_config.vocab_size
    old = model.get_input_embeddings().weight
    assert torch.equal(emb[:n], old) and torch.allclose(emb[n:], old.mean(0).expand(3, -1))
    assert proc.config.image_token_id >= n


def test_qformer_tokenizer_from_bare_vocab_txt(source, tmp_path):
    """A bert-base-uncased style vocab.txt without [DEC]: the converter adds it as BOS, left truncation."""
    from safetensors import safe_open

    from emollama.model.tiny import tiny_qformer_tokenizer

    _, _, paths = source
    vocab = sorted((i, t) for t, i in tiny_qformer_tokenizer().get_vocab().items() if t != "[DEC]")
    bare = tmp_path / "bert-vocab-only"
    bare.mkdir()
    (bare / "vocab.txt").write_text("".join(t + "\n" for _, t in vocab))
    paths = {**paths, "qformer_tokenizer": bare}
    assert _convert(paths, tmp_path / "out", "--dtype", "bfloat16") == 0  # the last --dtype wins
    with safe_open(tmp_path / "out" / "model.safetensors", "pt") as f:
        assert {f.get_slice(k).get_dtype() for k in f.keys()} == {"BF16"}
    _, proc = load_pretrained(tmp_path / "out")
    q = proc.qformer_tokenizer
    assert q.bos_token == "[DEC]" and q.truncation_side == "left" and len(q) == len(vocab) + 1
    assert q("What IS this")["input_ids"][0] == q.cls_token_id


# --- errors ---------------------------------------------------------------------------------------------------
def test_wrong_query_shape_names_key_and_shapes(source, tmp_path):
    _, _, paths = source
    cfg = json.loads((paths["src"] / "config.json").read_text())
    cfg["num_query"] = 8
    (paths["src"] / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"model\.vlm_att_query: expected shape \(1, 8, 16\), got \(1, 4, 16\); "
                       r"config num_query=8"):  # fmt: skip
        convert_llamavid(paths["src"], tmp_path / "out", eva=paths["eva"], qformer_tokenizer=paths["qformer_tokenizer"],
                         face_preset="tiny")  # fmt: skip


def test_missing_shard_names_the_file(source, tmp_path, capsys):
    _, _, paths = source
    (paths["src"] / SHARDS[1]).unlink()
    assert _convert(paths, tmp_path / "out") == 1
    assert SHARDS[1] in capsys.readouterr().err


def test_missing_qformer_tensor_is_reported_per_component(source, tmp_path):
    _, _, paths = source
    shard = paths["src"] / SHARDS[1]
    tensors = torch.load(shard, weights_only=True)
    victim = next(k for k in tensors if k.endswith("output_query.dense.bias"))
    del tensors[victim]
    torch.save(tensors, shard)
    with pytest.raises(ValueError, match=r"qformer: 1 missing, e\.g\. \['llamavid\.vlm_att_encoder\.encoder\.layer\."):
        convert_llamavid(paths["src"], tmp_path / "out", eva=paths["eva"], qformer_tokenizer=paths["qformer_tokenizer"],
                         face_preset="tiny")  # fmt: skip


def test_non_empty_destination_is_refused(source, tmp_path, capsys):
    _, _, paths = source
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("x")
    assert _convert(paths, tmp_path / "out") == 1
    assert "is not empty" in capsys.readouterr().err


def test_missing_eva_lists_places_tried(source, tmp_path, capsys):
    _, _, paths = source
    assert _convert(paths, tmp_path / "out", eva=False) == 1
    err = capsys.readouterr().err
    assert "eva_vit_g.pth" in err and str(paths["src"]) in err and "model.vision_tower.vision_tower." in err
    assert "--eva" in err


def test_incomplete_shard_eva_is_not_used(tmp_path, caplog):
    model, _ = build_tiny()
    paths = write_llamavid_dir(model, tmp_path, eva_in_shards=True, write_eva=False)
    index = json.loads((paths["src"] / "pytorch_model.bin.index.json").read_text())
    victim = "model.vision_tower.vision_tower.blocks.0.mlp.fc2.bias"
    shard = paths["src"] / index["weight_map"][victim]
    tensors = torch.load(shard, weights_only=True)
    del tensors[victim]
    torch.save(tensors, shard)
    with caplog.at_level(logging.WARNING), pytest.raises(FileNotFoundError, match="EVA-ViT-G weights not found"):
        convert_llamavid(paths["src"], tmp_path / "out", qformer_tokenizer=paths["qformer_tokenizer"],
                         face_preset="tiny")  # fmt: skip
    assert "encoder.layers.0.mlp.fc2.bias" in caplog.text


def test_help_names_each_path(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["convert", "llama-vid", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("SRC", "DST", "--eva", "eva_vit_g.pth", "--qformer-tokenizer", "bert-base-uncased", "--face-preset",
                 "--set", "--dtype"):  # fmt: skip
        assert flag in out
