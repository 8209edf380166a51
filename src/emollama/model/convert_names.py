"""Pure name maps and shape tables: LLaMA-VID / LAVIS checkpoint names -> `EmoLlamaForConditionalGeneration` names.

SPEC §3.3 (LLaMA-VID keys), §3.5 (LAVIS EVA), §3.6 (Q-Former -> InstructBlipQFormerModel), §3.7 (EVA ->
Blip2VisionModel). No file IO and no model building here: `emollama.model.convert` does that.
"""

from __future__ import annotations

import re

import torch

from emollama.model.configuration import EmoLlamaConfig

# components of a LLaMA-VID checkpoint, in report order (SPEC §3.8 routing)
LM, PROJECTOR, CONTEXT, QFORMER, VISION = "language_model", "mm_projector", "context", "qformer", "vision_tower"
COMPONENT_PREFIX = {  # component -> prefix of our parameter names
    LM: "language_model.",
    PROJECTOR: "llamavid.mm_projector.",
    CONTEXT: "llamavid.vlm_att_",
    QFORMER: "llamavid.vlm_att_encoder.",
    VISION: "vision_tower.model.",
}
QFORMER_SRC = "model.vlm_att_encoder.bert."
SHARD_EVA_PREFIX = "model.vision_tower.vision_tower."
CONTEXT_NAMES = ("vlm_att_query", "vlm_att_ln", "vlm_att_projector", "vlm_att_key_projector", "vlm_att_val_projector")
# prefixes stripped from EVA sources: BLIP-2/InstructBLIP checkpoints, LLaMA-VID shards, none in eva_vit_g.pth
EVA_PREFIXES = ("visual_encoder.", SHARD_EVA_PREFIX)
# our parameters no LLaMA-VID source provides: Blip2VisionModel's post-norm is never used by EvaTower (raw output)
UNUSED_OURS = ("vision_tower.model.post_layernorm.",)
NEW_IN_EMO = ("face_mining.",)  # Face Info Mining is new in EMO-LLaMA: randomly initialised


def route_key(key: str) -> tuple[str, str] | None:
    """A LLaMA-VID shard key -> (component, our name); None for keys to ignore; ('unknown', key) otherwise.

    EVA copies inside the shards come back as (VISION, key) untouched: they are only a fallback source.
    """
    if key.endswith("rotary_emb.inv_freq"):  # buffers written by transformers 4.31; recomputed from config
        return None
    if key.startswith(("model.embed_tokens.", "model.layers.", "model.norm.", "lm_head.")):
        return LM, "language_model." + key
    if key.startswith("model.mm_projector."):
        return PROJECTOR, "llamavid." + key[len("model.") :]
    if key.startswith(QFORMER_SRC):
        name = qformer_name(key[len(QFORMER_SRC) :])
        return None if name is None else (QFORMER, "llamavid.vlm_att_encoder." + name)
    if key.startswith("model.vlm_att_"):
        head = key[len("model.") :].split(".", 1)[0]
        if head in CONTEXT_NAMES:
            return CONTEXT, "llamavid." + key[len("model.") :]
    if key.startswith(SHARD_EVA_PREFIX):
        return VISION, key
    return "unknown", key


def qformer_name(rel: str) -> str | None:
    """LAVIS BERT name (after `bert.`) -> `InstructBlipQFormerModel` name; None for the position_ids buffer."""
    if rel == "embeddings.position_ids":  # non-persistent in HF (SPEC §3.6 rule 5)
        return None
    if rel.startswith("embeddings.LayerNorm."):  # the only LayerNorm renamed (rule 2)
        return "embeddings.layernorm." + rel[len("embeddings.LayerNorm.") :]
    return rel.replace(".attention.self.", ".attention.attention.").replace(
        ".crossattention.self.", ".crossattention.attention."
    )


_EVA_RULES = (
    (r"cls_token", "embeddings.class_embedding"),
    (r"pos_embed", "embeddings.position_embedding"),
    (r"patch_embed\.proj\.(weight|bias)", r"embeddings.patch_embedding.\1"),
    (r"blocks\.(\d+)\.norm1\.(weight|bias)", r"encoder.layers.\1.layer_norm1.\2"),
    (r"blocks\.(\d+)\.norm2\.(weight|bias)", r"encoder.layers.\1.layer_norm2.\2"),
    (r"blocks\.(\d+)\.attn\.qkv\.weight", r"encoder.layers.\1.self_attn.qkv.weight"),
    (r"blocks\.(\d+)\.attn\.(q_bias|v_bias)", r"encoder.layers.\1.self_attn.\2"),
    (r"blocks\.(\d+)\.attn\.proj\.(weight|bias)", r"encoder.layers.\1.self_attn.projection.\2"),
    (r"blocks\.(\d+)\.mlp\.(fc1|fc2)\.(weight|bias)", r"encoder.layers.\1.mlp.\2.\3"),
)


def eva_name(lavis: str) -> str | None:
    """LAVIS EVA name (prefix stripped) -> Blip2VisionModel name (q_bias/v_bias kept separate); None if unknown."""
    for pattern, repl in _EVA_RULES:
        if re.fullmatch(pattern, lavis):
            return re.sub(pattern, repl, lavis)
    return None


def strip_eva_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keys under the first EVA_PREFIXES entry present (BLIP-2 `visual_encoder.`, LLaMA-VID shards), stripped."""
    for prefix in EVA_PREFIXES:
        picked = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if picked:
            return picked
    return dict(state)


def eva_to_hf(state: dict[str, torch.Tensor], fused_qkv_bias: bool) -> tuple[dict[str, torch.Tensor], list[str]]:
    """LAVIS EVA state dict (no prefix) -> (Blip2VisionModel state dict, ignored LAVIS keys).

    fused_qkv_bias: the installed Blip2Attention holds one `qkv.bias` (3D,) = [q_bias; zeros(D); v_bias]
        (transformers >= 4.3x) instead of separate `q_bias`/`v_bias` params (D,).
    """
    out: dict[str, torch.Tensor] = {}
    ignored: list[str] = []
    for key, value in state.items():
        name = eva_name(key)
        if name is None:
            ignored.append(key)
        else:
            out[name] = value
    if fused_qkv_bias:
        for qname in [k for k in out if k.endswith(".self_attn.q_bias")]:
            base = qname[: -len("q_bias")]
            q = out.pop(qname)
            v = out.pop(base + "v_bias", None)
            if v is None:
                raise ValueError(f"EVA: {qname} has no matching v_bias")
            out[base + "qkv.bias"] = torch.cat([q, torch.zeros_like(q), v])  # LAVIS fixes the k bias at zero
    return out, ignored


def _count_layers(names, pattern: str) -> int:
    idx = {int(m.group(1)) for n in names if (m := re.match(pattern, n))}
    if idx != set(range(len(idx))):
        raise ValueError(f"layer indices {sorted(idx)} of {pattern!r} are not contiguous from 0")
    return len(idx)


def infer_vision_fields(eva: dict[str, torch.Tensor]) -> dict:
    """Blip2VisionConfig fields readable from EVA shapes (Blip2VisionModel names): width, depth, MLP, patch, grid."""
    hidden = eva["embeddings.class_embedding"].shape[-1]
    patch = eva["embeddings.patch_embedding.weight"].shape[-1]
    grid = int(round((eva["embeddings.position_embedding"].shape[1] - 1) ** 0.5))
    return {
        "hidden_size": hidden,
        "intermediate_size": eva["encoder.layers.0.mlp.fc1.weight"].shape[0],
        "num_hidden_layers": _count_layers(eva, r"encoder\.layers\.(\d+)\."),
        "patch_size": patch,
        "image_size": grid * patch,
    }


def infer_qformer_fields(qformer: dict[str, torch.Tensor]) -> dict:
    """InstructBlipQFormerConfig fields readable from Q-Former shapes (HF names, component prefix stripped)."""
    n = _count_layers(qformer, r"encoder\.layer\.(\d+)\.")
    cross = sorted({int(m.group(1)) for k in qformer if (m := re.match(r"encoder\.layer\.(\d+)\.crossattention\.", k))})
    freq = cross[1] - cross[0] if len(cross) > 1 else max(n, 1)
    if cross and (cross[0] != 0 or cross != list(range(0, n, freq))):
        raise ValueError(f"Q-Former cross-attention layers {cross} are not every k-th layer from 0; unsupported")
    word = qformer["embeddings.word_embeddings.weight"]
    return {
        "vocab_size": word.shape[0],
        "hidden_size": word.shape[1],
        "max_position_embeddings": qformer["embeddings.position_embeddings.weight"].shape[0],
        "num_hidden_layers": n,
        "intermediate_size": qformer["encoder.layer.0.intermediate.dense.weight"].shape[0],
        "cross_attention_frequency": freq,
    }


def llamavid_shape_table(config: EmoLlamaConfig) -> dict[str, tuple[tuple[int, ...], str]]:
    """LLaMA-VID context/projector keys -> (expected shape, the config fields that set it). SPEC §3.3 table."""
    dv, hq, dt = config.vision_config.hidden_size, config.qformer_config.hidden_size, config.text_config.hidden_size
    why_q = f"config num_query={config.num_query}, Q-Former hidden={hq}"
    table = {
        "model.vlm_att_query": ((1, config.num_query, hq), why_q),
        "model.vlm_att_ln.weight": ((dv,), f"EVA hidden={dv}"),
        "model.vlm_att_ln.bias": ((dv,), f"EVA hidden={dv}"),
        "model.vlm_att_projector.weight": ((dv, hq), f"EVA hidden={dv}, Q-Former hidden={hq}"),
        "model.vlm_att_projector.bias": ((dv,), f"EVA hidden={dv}"),
        "model.vlm_att_key_projector.weight": ((dv, dv), f"EVA hidden={dv}"),
        "model.vlm_att_key_projector.bias": ((dv,), f"EVA hidden={dv}"),
        "model.vlm_att_val_projector.weight": ((dt, dv), f"LLM hidden={dt}, EVA hidden={dv}"),
        "model.vlm_att_val_projector.bias": ((dt,), f"LLM hidden={dt}"),
    }
    if config.mm_projector_type != "identity":
        table["model.mm_projector.0.weight"] = ((dt, dv), f"mm_projector_type={config.mm_projector_type!r}")
    return table


def shape_hint(our_name: str, config: EmoLlamaConfig) -> str:
    """Which config field decides the shape of ``our_name``, for shape-mismatch errors."""
    tc = config.text_config
    if "embed_tokens" in our_name or "lm_head" in our_name:
        return f"config vocab_size={tc.vocab_size}, hidden_size={tc.hidden_size}"
    if our_name.startswith("language_model."):
        heads = f"{tc.num_attention_heads}/{tc.num_key_value_heads}"
        return f"config hidden_size={tc.hidden_size}, intermediate_size={tc.intermediate_size}, q/kv heads={heads}"
    if our_name.startswith("vision_tower."):
        return f"EVA hidden={config.vision_config.hidden_size}, image_size={config.vision_config.image_size}"
    return f"Q-Former hidden={config.qformer_config.hidden_size}, EVA hidden={config.vision_config.hidden_size}"
