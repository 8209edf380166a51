"""LLaMA-VID `config.json` (read as plain JSON, SPEC §3.2) + weight shapes -> a validated `EmoLlamaConfig`.

Never passes the file to `AutoConfig`: its `model_type: "llava"` collides with transformers' own LLaVA.
Face Info Mining settings come from an emollama preset, since LLaMA-VID has no face modules.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from emollama.model.configuration import EmoLlamaConfig
from emollama.model.presets import apply_overrides, load_yaml, validate_keys

logger = logging.getLogger(__name__)

# LlamaConfig fields copied verbatim when present (rope_scaling/rope_theta are translated, see `text_fields`)
LLAMA_FIELDS = (
    "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
    "num_key_value_heads", "hidden_act", "max_position_embeddings", "initializer_range", "rms_norm_eps",
    "bos_token_id", "eos_token_id", "pad_token_id", "tie_word_embeddings", "attention_bias", "mlp_bias", "head_dim",
)  # fmt: skip
# fields LLaMA-VID's public code writes or reads; consumed here or deliberately ignored (SPEC §3.2)
KNOWN_FIELDS = set(LLAMA_FIELDS) | {
    "rope_scaling", "rope_theta", "model_type", "architectures", "torch_dtype", "transformers_version",
    "_name_or_path", "use_cache", "pretraining_tp", "mm_vision_tower", "image_processor", "use_mm_proj",
    "mm_projector_type", "mm_hidden_size", "mm_vision_select_layer", "mm_vision_select_feature", "max_token",
    "bert_type", "num_query", "num_qformer", "compress_type", "image_aspect_ratio", "image_grid_pinpoints",
    "tune_mm_mlp_adapter", "freeze_mm_mlp_adapter", "mm_use_im_start_end", "mm_use_im_patch_token",
}  # fmt: skip
EVA_HEAD_DIM, BERT_HEAD_DIM = 88, 64  # EVA-G: 1408 / 16 heads; BERT-base: 768 / 12 heads
DEFAULT_FACE_PRESET = "llama-vid-7b"


def read_llamavid_config(src: str | os.PathLike) -> dict[str, Any]:
    """config.json of a LLaMA-VID directory as a dict; raises if it is missing or not a LLaMA-VID config."""
    path = Path(src) / "config.json"
    if not path.is_file():
        found = sorted(p.name for p in Path(src).iterdir()) if Path(src).is_dir() else []
        raise FileNotFoundError(f"{str(path)!r} not found (found {found}); SRC must be a LLaMA-VID model directory")
    cfg = json.loads(path.read_text())
    if "bert_type" not in cfg and "mm_vision_tower" not in cfg:
        raise ValueError(
            f"{path} has no LLaMA-VID fields (bert_type, mm_vision_tower); model_type={cfg.get('model_type')!r}. "
            "Is SRC a LLaMA-VID checkpoint (e.g. YanweiLi/llama-vid-7b-full-224-video-fps-1)?"
        )
    unknown = sorted(set(cfg) - KNOWN_FIELDS)
    if unknown:
        logger.info("ignoring config.json fields unused by LLaMA-VID's public code: %s", unknown)
    return cfg


def parse_compress_type(value: str | None) -> str | None:
    """LLaMA-VID substring rule (SPEC §2.5): 'grid:n' anywhere -> 'grid:n'; 'mean' anywhere -> 'mean'; None -> None."""
    if value is None or str(value).lower() in ("none", "null", ""):
        return None
    m = re.search(r"grid:(\d+)", value)
    if m:
        return f"grid:{m.group(1)}"
    if "mean" in value:
        return "mean"
    raise ValueError(f"unsupported compress_type {value!r} in config.json; LLaMA-VID uses 'mean', 'grid:N' or null")


def check_bert_type(value: str | None) -> None:
    """Only the released Q-Former variant is supported: 'qformer' + 'pretrain' (EVA width, vlm_att_ln)."""
    value = value or ""
    if "qformer" not in value or "pretrain" not in value:
        raise ValueError(
            f"unsupported bert_type {value!r}: emollama converts the instruction-aware Q-Former variant "
            "('qformer_pretrain...', every released LLaMA-VID model); the raw-BERT path has no converter"
        )


def text_fields(cfg: dict[str, Any]) -> dict[str, Any]:
    """The LLaMA text_config from the top-level LLaMA fields (rope_scaling -> rope_parameters)."""
    out: dict[str, Any] = {"model_type": "llama"}
    out.update({k: cfg[k] for k in LLAMA_FIELDS if cfg.get(k) is not None})
    out.setdefault("num_key_value_heads", cfg.get("num_attention_heads"))
    rope: dict[str, Any] = {"rope_type": "default", "rope_theta": float(cfg.get("rope_theta") or 10000.0)}
    scaling = cfg.get("rope_scaling")
    if scaling:  # transformers 4.31 writes {"type": "linear", "factor": 16.0} (long-video model)
        rope.update({k: v for k, v in scaling.items() if k != "type"})
        rope["rope_type"] = scaling.get("rope_type") or scaling.get("type")
    out["rope_parameters"] = rope
    return {k: v for k, v in out.items() if v is not None}


def image_size_from_name(cfg: dict[str, Any]) -> int | None:
    """224/336 from the `image_processor` path name (e.g. 'clip-patch14-224'); None if the name has neither."""
    name = Path(str(cfg.get("image_processor") or "")).name
    sizes = [int(s) for s in re.findall(r"(?<!\d)(224|336)(?!\d)", name)]
    return sizes[-1] if sizes else None


def _heads(width: int, head_dim: int, preset: dict[str, Any], what: str, override: Any = None) -> int:
    """Attention heads of a sub-model of width ``width``: an explicit `--set {what}.num_attention_heads=N` wins,
    then width / the standard head width, then the face preset's count when it has the same width."""
    if isinstance(override, dict) and override.get("num_attention_heads") is not None:
        n = int(override["num_attention_heads"])
        if n < 1 or width % n:
            raise ValueError(f"--set {what}.num_attention_heads={n}: must divide the width {width} of the weights")
        return n
    if width % head_dim == 0:
        return width // head_dim
    if preset.get("hidden_size") == width and "num_attention_heads" in preset:
        return int(preset["num_attention_heads"])
    raise ValueError(
        f"cannot infer {what}.num_attention_heads for width {width} (not a multiple of {head_dim}); "
        f"pass --set {what}.num_attention_heads=N with N dividing {width}"
    )


def build_emollama_config(
    cfg: dict[str, Any],
    vision: dict[str, Any],
    qformer: dict[str, Any],
    *,
    face_preset: str = DEFAULT_FACE_PRESET,
    overrides: list[str] | None = None,
) -> EmoLlamaConfig:
    """LLaMA-VID config.json + shape-inferred vision/Q-Former fields + face preset + overrides -> config.

    Args:
        cfg: config.json as a dict.
        vision: Blip2VisionConfig fields from EVA shapes (`convert_names.infer_vision_fields`).
        qformer: InstructBlipQFormerConfig fields from Q-Former shapes (`convert_names.infer_qformer_fields`).
        face_preset: emollama preset (or YAML) whose face_config is used; also supplies head counts that the
            weights cannot reveal for non-standard widths.
        overrides: dotted `key=value` strings applied last (e.g. `face_config.num_queries=16`); a
            `vision_config.num_attention_heads` / `qformer_config.num_attention_heads` among them is also what the
            head inference uses, so odd widths convert with an explicit head count.
    """
    check_bert_type(cfg.get("bert_type"))
    preset = load_yaml(face_preset)
    # overrides are applied last, but head counts cannot be read off the weights: take them from the overrides first
    ov = apply_overrides({}, overrides or [])
    pv, pq = preset.get("vision_config", {}), preset.get("qformer_config", {})
    vision = dict(vision)
    size = image_size_from_name(cfg)
    if size is not None and size != vision["image_size"]:  # 336 models: pos_embed is interpolated at load
        logger.info(
            "image size %d from image_processor %r (EVA weights have %d)",
            size,
            cfg["image_processor"],
            vision["image_size"],
        )
        vision["image_size"] = size
    mm_hidden = cfg.get("mm_hidden_size")
    if mm_hidden is not None and mm_hidden != vision["hidden_size"]:
        raise ValueError(
            f"config.json mm_hidden_size={mm_hidden} but the EVA weights have width {vision['hidden_size']}"
        )
    if cfg.get("mm_vision_select_feature", "patch") != "patch":
        logger.warning(
            "mm_vision_select_feature=%r: emollama always drops CLS ('patch')", cfg["mm_vision_select_feature"]
        )
    if cfg.get("mm_use_im_start_end"):
        logger.warning("mm_use_im_start_end=true: emollama does not wrap media in <im_start>/<im_end>")
    num_query = cfg.get("num_query") or cfg.get("num_qformer") or 32
    data: dict[str, Any] = {
        "vision_config": {
            "model_type": "blip_2_vision_model", **vision, "layer_norm_eps": 1e-6, "hidden_act": "gelu",
            "qkv_bias": True, "num_attention_heads": _heads(vision["hidden_size"], EVA_HEAD_DIM, pv, "vision_config",
                                          ov.get("vision_config")),
        },
        "qformer_config": {
            **qformer, "layer_norm_eps": 1e-12,
            "num_attention_heads": _heads(qformer["hidden_size"], BERT_HEAD_DIM, pq, "qformer_config",
                                          ov.get("qformer_config")),
        },
        "text_config": text_fields(cfg),
        "face_config": dict(preset.get("face_config", {})),
        "num_query": int(num_query),
        "compress_type": parse_compress_type(cfg.get("compress_type")),
        "mm_projector_type": cfg.get("mm_projector_type") or "linear",
        "vision_feature_layer": -1,  # raw last EVA block (mm_vision_select_layer is ignored for EVA, SPEC §2.3)
        "conv_template": "vicuna_v1",
        "qformer_max_length": 256,
    }  # fmt: skip
    for key in ("frame_sampling", "agr_template"):  # not in LLaMA-VID: take the face preset's project defaults
        if key in preset:
            data[key] = preset[key]
    data = apply_overrides(data, overrides or [])
    validate_keys(data)
    config = EmoLlamaConfig(**data)
    logger.info(
        "LLaMA-VID config: num_query=%d compress_type=%r mm_projector_type=%r image_size=%d EVA layers=%d "
        "Q-Former layers=%d LLM hidden=%d x %d layers", config.num_query, config.compress_type,
        config.mm_projector_type, config.vision_config.image_size, config.vision_config.num_hidden_layers,
        config.qformer_config.num_hidden_layers, config.text_config.hidden_size, config.text_config.num_hidden_layers,
    )  # fmt: skip
    return config
