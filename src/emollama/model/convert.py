"""`convert_llamavid`: a LLaMA-VID checkpoint directory (+ LAVIS `eva_vit_g.pth`) -> an emollama model directory.

Reads shards with `torch.load(weights_only=True, mmap=True)` (or safetensors), routes keys by prefix (SPEC §3.8),
checks every shape before loading, loads strictly per component into a model built on the meta device, and
writes safetensors via `emollama.model.checkpoint.save_pretrained`. Name maps: `convert_names`; config:
`convert_config`. Face Info Mining is new in EMO-LLaMA and stays randomly initialised.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path

import torch
from transformers import AutoTokenizer, BertTokenizer, LlamaConfig, PreTrainedTokenizerBase

from emollama.model import convert_names as names
from emollama.model.checkpoint import save_pretrained
from emollama.model.configuration import EmoLlamaConfig
from emollama.model.convert_config import DEFAULT_FACE_PRESET, build_emollama_config, read_llamavid_config
from emollama.model.convert_io import (
    Tensors,
    checkpoint_files,
    first_names,
    fused_qkv_bias,
    interpolate_pos_embed,
    load_eva,
    route_shards,
)
from emollama.model.modeling import EmoLlamaForConditionalGeneration
from emollama.model.processor import EmoLlamaProcessor

logger = logging.getLogger(__name__)


def check_shapes(
    state: Tensors, sources: dict[str, str], expected: dict[str, torch.Size], config: EmoLlamaConfig
) -> None:
    """Raise ValueError on the first tensor whose shape differs from the model built from ``config``."""
    for src_key, (shape, why) in names.llamavid_shape_table(config).items():
        ours = "llamavid." + src_key[len("model.") :]
        if ours in state and tuple(state[ours].shape) != shape:
            raise ValueError(
                f"{src_key}: expected shape {shape}, got {tuple(state[ours].shape)}; {why} — is this a different "
                "LLaMA-VID variant?"
            )
    for ours, value in state.items():
        if ours in expected and value.shape != expected[ours]:
            raise ValueError(
                f"{sources.get(ours, ours)} (-> {ours}): expected shape {tuple(expected[ours])}, got "
                f"{tuple(value.shape)}; {names.shape_hint(ours, config)} — is this a different LLaMA-VID variant?"
            )


def check_components(state: Tensors, expected: dict[str, torch.Size]) -> list[str]:
    """Strict per-component key check; returns our names left to random init (face modules, unused post-norm)."""
    problems = []
    for comp, prefix in names.COMPONENT_PREFIX.items():
        want = {k for k in expected if k.startswith(prefix) and not k.startswith(names.UNUSED_OURS)}
        if comp == names.CONTEXT:
            want = {k for k in want if not k.startswith(names.COMPONENT_PREFIX[names.QFORMER])}
        have = {k for k in state if k.startswith(prefix)}
        if comp == names.CONTEXT:
            have = {k for k in have if not k.startswith(names.COMPONENT_PREFIX[names.QFORMER])}
        missing, unexpected = sorted(want - have), sorted(have - want)
        logger.info(
            "%s: %d tensors loaded, %d missing, %d unexpected", comp, len(have & want), len(missing), len(unexpected)
        )
        if missing:
            problems.append(f"{comp}: {len(missing)} missing, e.g. {first_names(missing)}")
        if unexpected:
            problems.append(f"{comp}: {len(unexpected)} unexpected, e.g. {first_names(unexpected)}")
    if problems:
        raise ValueError("checkpoint does not match the model built from its config: " + "; ".join(problems))
    return sorted(set(expected) - set(state))


def build_model(config: EmoLlamaConfig, state: Tensors, dtype: torch.dtype) -> EmoLlamaForConditionalGeneration:
    """Model on the meta device, converted tensors assigned, everything else (face modules) initialised."""
    with torch.device("meta"):  # no 7B random init, no second copy of the weights
        model = EmoLlamaForConditionalGeneration(config)
    state = {k: v.to(dtype) for k, v in state.items()}
    model.load_state_dict(state, strict=False, assign=True)
    loaded = dict(model.named_parameters()) | dict(model.named_buffers())
    for key in state:  # flag the module's own tensor objects: assign=True wraps ours in new Parameters
        loaded[key]._is_hf_initialized = True  # transformers' init helpers skip flagged tensors
    fresh: dict[str, torch.Tensor] = {}
    for mod_name, mod in model.named_modules():
        for store in (mod._parameters, mod._buffers):
            for key, t in store.items():
                if t is not None and t.is_meta:
                    # NaN marks "not initialised": anything _init_weights does not cover is caught below
                    value = torch.full_like(t, float("nan") if t.is_floating_point() else 0, device="cpu")
                    if key in mod._parameters:
                        value = torch.nn.Parameter(value, requires_grad=t.requires_grad)
                    store[key] = fresh[f"{mod_name}.{key}".lstrip(".")] = value
        mod._is_hf_initialized = False  # construction marked every module done; re-run init for unloaded tensors
    model.initialize_weights()
    uninit = [k for k, v in fresh.items() if v.is_floating_point() and bool(torch.isnan(v).any())]
    if uninit:
        raise RuntimeError(
            f"no initialiser ran for {first_names(uninit)}; cover them in EmoLlamaPreTrainedModel._init_weights"
        )
    return model.to(dtype).eval()


def load_tokenizers(src: Path, qformer_tokenizer: str | os.PathLike | None) -> tuple[PreTrainedTokenizerBase, ...]:
    """(LM tokenizer from SRC, BERT-uncased Q-Former tokenizer + [DEC] bos, left truncation)."""
    if not (src / "tokenizer.json").is_file() and (src / "tokenizer.model").is_file():
        if importlib.util.find_spec("sentencepiece") is None:
            raise ImportError(
                f"{src / 'tokenizer.model'} is a SentencePiece model; converting it to a fast tokenizer needs "
                "sentencepiece once: pip install sentencepiece"
            )
    try:
        # an explicit LlamaConfig keeps AutoTokenizer away from config.json ("llava" is transformers' LLaVA)
        tok = AutoTokenizer.from_pretrained(src, config=LlamaConfig(), use_fast=True)
    except (OSError, ValueError) as err:
        raise FileNotFoundError(
            f"cannot load the LM tokenizer from {src} ({err}); copy tokenizer.model/"
            "tokenizer_config.json of the LLaMA-VID release into SRC"
        ) from err
    if tok.pad_token is None:  # LLaMA-VID pads with unk (vicuna_v1)
        tok.pad_token = tok.unk_token
    if qformer_tokenizer is None:
        raise FileNotFoundError(
            "the Q-Former tokenizer is not part of a LLaMA-VID checkpoint (SPEC §3.4); pass "
            "--qformer-tokenizer DIR, a bert-base-uncased tokenizer directory (vocab.txt)"
        )
    qdir = Path(qformer_tokenizer)
    if any((qdir / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json")):
        qtok = AutoTokenizer.from_pretrained(qdir, use_fast=True)
    elif (qdir / "vocab.txt").is_file():
        qtok = BertTokenizer(vocab=str(qdir / "vocab.txt"), do_lower_case=True)
    else:
        raise FileNotFoundError(
            f"--qformer-tokenizer {str(qdir)!r} has no tokenizer.json, tokenizer_config.json or "
            "vocab.txt; point it at a bert-base-uncased tokenizer directory"
        )
    if qtok.bos_token != "[DEC]":
        qtok.add_special_tokens({"bos_token": "[DEC]"})
    qtok.truncation_side = "left"
    return tok, qtok


def resize_embeddings(model: EmoLlamaForConditionalGeneration, n_tokens: int) -> None:
    """Grow embeddings and lm_head to ``n_tokens`` rows; new rows = mean of the old rows."""
    old = model.get_input_embeddings().weight.shape[0]
    if n_tokens <= old:
        return
    model.resize_token_embeddings(n_tokens, mean_resizing=False)
    with torch.no_grad():
        for w in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
            w[old:] = w[:old].mean(dim=0, keepdim=True)
    logger.info("resized token embeddings %d -> %d (placeholder tokens; new rows = mean)", old, n_tokens)


def convert_llamavid(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    eva: str | os.PathLike | None = None,
    qformer_tokenizer: str | os.PathLike | None = None,
    face_preset: str = DEFAULT_FACE_PRESET,
    overrides: list[str] | None = None,
    dtype: torch.dtype = torch.bfloat16,
) -> Path:
    """Convert a LLaMA-VID directory into an emollama model directory at ``dst`` (must be new or empty)."""
    src, dst = Path(src), Path(dst)
    if dst.exists() and any(dst.iterdir()):
        raise FileExistsError(f"destination {str(dst)!r} is not empty; choose a new directory")
    cfg = read_llamavid_config(src)
    tok, qtok = load_tokenizers(src, qformer_tokenizer)  # cheap: fail before touching the weights
    parts, sources = route_shards(checkpoint_files(src))
    if parts.get("unknown"):
        unknown = sorted(parts["unknown"])
        raise ValueError(f"{len(unknown)} checkpoint keys match no LLaMA-VID component: {first_names(unknown)}")
    qformer = {k[len(names.COMPONENT_PREFIX[names.QFORMER]) :]: v for k, v in parts.get(names.QFORMER, {}).items()}
    if not qformer:
        raise ValueError(f"no {names.QFORMER_SRC}* keys in {src}: is this a stage-1 'pretrain' directory?")
    fused = fused_qkv_bias()
    eva_state, eva_src = load_eva(src, cfg, eva, parts.get(names.VISION, {}), fused)
    config = build_emollama_config(
        cfg,
        names.infer_vision_fields(eva_state),
        names.infer_qformer_fields(qformer),
        face_preset=face_preset,
        overrides=overrides,
    )
    grid = config.vision_config.image_size // config.vision_config.patch_size
    eva_state["embeddings.position_embedding"] = interpolate_pos_embed(eva_state["embeddings.position_embedding"], grid)
    state: Tensors = {}
    for comp in (names.LM, names.PROJECTOR, names.CONTEXT, names.QFORMER):
        state.update(parts.get(comp, {}))
    state.update({"vision_tower.model." + k: v for k, v in eva_state.items()})
    processor = EmoLlamaProcessor(tok, qtok, config)  # adds <image>/<video>/<face>; writes their ids into config
    if len(qtok) > config.qformer_config.vocab_size:
        raise ValueError(
            f"Q-Former tokenizer has {len(qtok)} tokens > Q-Former vocab {config.qformer_config.vocab_size}"
        )
    with torch.device("meta"):
        expected = {k: v.shape for k, v in EmoLlamaForConditionalGeneration(config).state_dict().items()}
    check_shapes(state, sources, expected, config)
    fresh = check_components(state, expected)
    model = build_model(config, state, dtype)
    new = [k for k in fresh if k.startswith(names.NEW_IN_EMO)]
    logger.warning(
        "Face Info Mining is new in EMO-LLaMA: %d tensors randomly initialised (%s); train them before use",
        len(new),
        first_names(new, 3),
    )
    resize_embeddings(model, len(tok))
    model.config.text_config.vocab_size = model.get_input_embeddings().weight.shape[0]
    logger.info("EVA from %s", eva_src)
    return save_pretrained(model, processor, dst)
