"""Training stages as data: stage name -> which parameters train (regexes over base-model parameter names).

There is one loop (`emollama.training.trainer`); a stage only decides `requires_grad` and whether LoRA adapters
are attached. Names are matched on the *base* model (`face_mining.query`, `llamavid.mm_projector.0.weight`), also
when the model is wrapped by peft (`base_model.model.` is stripped first).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from torch import nn

logger = logging.getLogger(__name__)

PEFT_PREFIX = "base_model.model."
# parameter groups (regexes, full match on the base-model name)
FACE = (r"face_mining\..*",)
PROJECTORS = (r"llamavid\.(mm_projector|vlm_att_projector|vlm_att_key_projector|vlm_att_val_projector)\..*",)
QFORMER = (r"llamavid\.(vlm_att_encoder\..*|vlm_att_query|vlm_att_ln\..*)",)
LM = (r"language_model\..*",)
ALWAYS_FROZEN = (r"vision_tower\..*",)  # EVA-G (and the face prior network, which is not in the model) never train
LORA_PARAM = re.compile(r".*\.lora_(A|B|embedding_A|embedding_B|magnitude_vector)\..*")


@dataclass(frozen=True)
class Stage:
    """What one stage trains.

    Attributes:
        train: regexes of parameters that train.
        lora: attach LoRA adapters to the LM (emollama.training.lora) and train them.
        optional: option name -> extra regexes switched on by `StageArgs` (e.g. train_qformer).
        doc: one line for `--help` and docs.
    """

    train: tuple[str, ...]
    lora: bool
    optional: tuple[tuple[str, tuple[str, ...]], ...] = ()
    doc: str = ""


STAGES: dict[str, Stage] = {
    "align": Stage(train=FACE + PROJECTORS, lora=False,
                   optional=(("train_qformer", QFORMER),),
                   doc="projectors + face modules; LM, Q-Former and vision tower frozen (LLaMA-VID stage 1)"),
    "instruct": Stage(train=FACE + PROJECTORS, lora=True,
                      optional=(("train_qformer", QFORMER),),
                      doc="LoRA on the LM + face modules + projectors (+ Q-Former with train_qformer); EMO-LLaMA"),
    "full": Stage(train=FACE + PROJECTORS + QFORMER + LM, lora=False,
                  doc="everything but the vision tower (LLaMA-VID stage 2 without LoRA)"),
}


def get_stage(name: str) -> Stage:
    """The stage called ``name``; KeyError lists the valid names."""
    if name not in STAGES:
        raise KeyError(f"unknown training stage {name!r}; available: {sorted(STAGES)}")
    return STAGES[name]


def base_name(name: str) -> str:
    """Parameter name on the unwrapped model (peft's `base_model.model.` prefix removed)."""
    return name[len(PEFT_PREFIX):] if name.startswith(PEFT_PREFIX) else name


def trainable_patterns(stage: Stage, options: dict[str, bool] | None = None,
                       extra: list[str] | None = None) -> list[str]:
    """The stage's regexes plus switched-on optional groups plus ``extra``."""
    pats = list(stage.train)
    for opt, group in stage.optional:
        if (options or {}).get(opt):
            pats.extend(group)
    return pats + list(extra or [])


def apply_stage(model: nn.Module, stage: Stage, options: dict[str, bool] | None = None,
                extra: list[str] | None = None) -> list[str]:
    """Set `requires_grad` per the stage (LoRA params keep theirs). Returns the trainable base names.

    Raises ValueError if a pattern matches nothing, so a renamed module cannot silently stop training.
    """
    pats = trainable_patterns(stage, options, extra)
    compiled = [re.compile(p) for p in pats]
    frozen = [re.compile(p) for p in (*ALWAYS_FROZEN, *never_used(model))]
    hits = [0] * len(compiled)
    names = []
    for name, p in model.named_parameters():
        if LORA_PARAM.fullmatch(name):
            p.requires_grad_(stage.lora)
            if stage.lora:
                names.append(base_name(name))
            continue
        bn = base_name(name)
        match = [i for i, c in enumerate(compiled) if c.fullmatch(bn)]
        for i in match:
            hits[i] += 1
        on = bool(match) and not any(f.fullmatch(bn) for f in frozen)
        p.requires_grad_(on)
        if on:
            names.append(bn)
    dead = [p for p, h in zip(pats, hits, strict=True) if h == 0 and not _optional_module_absent(p, model)]
    if dead:
        raise ValueError(f"stage patterns {dead} match no parameter; check the model (e.g. face_config.enabled)")
    return names


def never_used(model: nn.Module) -> list[str]:
    """Regexes of parameters no loss can reach, so no stage trains them.

    Both Q-Formers return only the query positions of their last layer; that layer's text-branch feed-forward
    (`intermediate.` / `output.`, not the `*_query` twins) transforms the instruction tokens after the last
    attention has read them, so its output is discarded (it would get all-zero gradients and waste optimizer state).
    The context token's key-projector bias adds the same logit to every key of a query, and softmax is shift
    invariant: its exact gradient is zero, and Adam would turn the rounding noise into full-size random steps.
    """
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    cfg = getattr(inner, "config", None)
    if cfg is None or not hasattr(cfg, "qformer_config"):
        return []
    last_q = cfg.qformer_config.num_hidden_layers - 1
    out = [rf"llamavid\.vlm_att_encoder\.encoder\.layer\.{last_q}\.(intermediate|output)\..*",
           r"llamavid\.vlm_att_key_projector\.bias"]
    if getattr(inner, "face_mining", None) is not None:
        last_f = cfg.face_config.num_hidden_layers - 1
        out.append(rf"face_mining\.aggregator\.encoder\.layer\.{last_f}\.(intermediate|output)\..*")
    return out


def _optional_module_absent(pattern: str, model: nn.Module) -> bool:
    # the face branch may be disabled in the model config; its patterns then legitimately match nothing
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return pattern.startswith("face_mining") and getattr(inner, "face_mining", True) is None


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    return sum(p.numel() for p in model.parameters() if p.requires_grad), total


def log_trainable(model: nn.Module) -> str:
    """Log and return 'trainable params: X || all params: Y || trainable%: Z'."""
    trainable, total = count_parameters(model)
    line = f"trainable params: {trainable:,} || all params: {total:,} || trainable%: {100 * trainable / total:.4f}"
    logger.info(line)
    return line
