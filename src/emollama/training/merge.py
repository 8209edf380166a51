"""Checkpoint -> model: rebuild the frozen base, load trainables + adapter, and optionally fold LoRA in.

`merge_checkpoint` writes a plain emollama model directory (emollama.model.checkpoint layout) that
`load_pretrained` reads with no peft involved.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from torch import nn

from emollama.model.checkpoint import save_pretrained
from emollama.model.processor import EmoLlamaProcessor
from emollama.training.args import LoraArgs, ModelArgs, TrainConfig
from emollama.training.checkpoint import load_checkpoint, read_meta
from emollama.training.lora import attach_lora, merge_lora

logger = logging.getLogger(__name__)


def load_trained(ckpt: str | os.PathLike) -> tuple[nn.Module, EmoLlamaProcessor]:
    """(model, processor) of a training checkpoint; the model is a peft model when the run used LoRA.

    The frozen base is rebuilt from the spec recorded in the checkpoint (preset + overrides + seed, or a path).
    """
    from emollama.training.trainer import build_base

    meta = read_meta(ckpt)
    cfg = TrainConfig(model=ModelArgs(**meta["base"]))
    model, _ = build_base(cfg)
    if meta.get("lora"):
        model = attach_lora(model, LoraArgs(**meta["lora"]))
    load_checkpoint(model, ckpt, strict=False)  # the rebuilt model has no stage flags; every saved key must fit
    processor = EmoLlamaProcessor.from_pretrained(ckpt, (model.get_base_model() if meta.get("lora") else model).config)
    return model.eval(), processor


def merge_checkpoint(ckpt: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write ``ckpt`` (trainables + LoRA folded into the base weights) as a loadable emollama model dir."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"output directory {str(out)!r} is not empty; choose a new one")
    model, processor = load_trained(ckpt)
    merged = merge_lora(model)
    save_pretrained(merged, processor, out)
    logger.info("merged %s into %s", ckpt, out)
    return out
