"""peft LoRA on the language model: config builder, attach, merge.

Defaults follow LLaMA-VID `train.py` (SPEC §2.11): r=64, alpha=16, dropout 0.05, bias none, targets = every
`nn.Linear` leaf of the LM except `lm_head`. Only modules under `language_model.` are adapted; the projectors,
Q-Former and face modules train fully (or stay frozen) per the stage, never through LoRA.
"""

from __future__ import annotations

import logging
import re

from peft import LoraConfig, PeftModel, get_peft_model
from torch import nn

from emollama.training.args import LoraArgs

logger = logging.getLogger(__name__)
LM_PREFIX = "language_model."
EXCLUDED_LEAVES = ("lm_head",)


def lm_linear_leaves(model: nn.Module) -> list[str]:
    """Sorted leaf names of every nn.Linear inside the LM except lm_head (e.g. q_proj ... down_proj)."""
    leaves = {
        name.rsplit(".", 1)[-1]
        for name, mod in model.named_modules()
        if name.startswith(LM_PREFIX) and isinstance(mod, nn.Linear)
    }
    return sorted(leaves - set(EXCLUDED_LEAVES))


def target_regex(leaves: list[str]) -> str:
    """peft `target_modules` regex (full match on module names) restricted to the LM."""
    if not leaves:
        raise ValueError("LoRA needs at least one target module leaf name")
    bad = [x for x in leaves if x in EXCLUDED_LEAVES]
    if bad:
        raise ValueError(f"LoRA targets {bad}: lm_head is never adapted (LLaMA-VID excludes it)")
    return rf"{re.escape(LM_PREFIX)}.*\.({'|'.join(re.escape(x) for x in leaves)})"


def build_lora_config(model: nn.Module, args: LoraArgs) -> LoraConfig:
    """LoraConfig for ``model``; ``args.targets`` None means every LM linear leaf except lm_head."""
    leaves = list(args.targets) if args.targets else lm_linear_leaves(model)
    missing = [x for x in leaves if x not in lm_linear_leaves(model)]
    if missing:
        raise ValueError(f"lora.targets {missing} are not nn.Linear leaves of the LM; available: "
                         f"{lm_linear_leaves(model)}")
    return LoraConfig(
        r=args.r,
        lora_alpha=args.alpha,
        lora_dropout=args.dropout,
        bias=args.bias,
        target_modules=target_regex(leaves),
    )


def attach_lora(model: nn.Module, args: LoraArgs) -> PeftModel:
    """Wrap ``model`` with LoRA adapters (peft freezes the base; `stages.apply_stage` then unfreezes per stage)."""
    cfg = build_lora_config(model, args)
    peft_model = get_peft_model(model, cfg)
    n = sum(1 for name, _ in peft_model.named_modules() if name.endswith(".lora_A"))
    logger.info("LoRA r=%d alpha=%d dropout=%.3g on %d LM linear layers (%s)", args.r, args.alpha, args.dropout, n,
                cfg.target_modules)
    return peft_model


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold LoRA deltas into the base weights and return the plain model (no-op for a non-peft model)."""
    if isinstance(model, PeftModel):
        return model.merge_and_unload()
    return model


def unwrap(model: nn.Module) -> nn.Module:
    """The base EmoLlama model under a peft wrapper (or the model itself)."""
    return model.get_base_model() if isinstance(model, PeftModel) else model
