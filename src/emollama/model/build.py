"""Factories that return a ready (model, processor) pair for a preset.

`tiny` needs nothing on disk. Other presets take their tokenizers/LM weights from assets (see `build_small`).
"""

from __future__ import annotations

import logging

import torch

from emollama.model.modeling import EmoLlamaForConditionalGeneration
from emollama.model.presets import build_config
from emollama.model.processor import EmoLlamaProcessor

logger = logging.getLogger(__name__)


def build_tiny(overrides: list[str] | None = None, seed: int = 0) -> tuple[EmoLlamaForConditionalGeneration, EmoLlamaProcessor]:
    """Random-weight `tiny` model (< 100k parameters) with its in-memory tokenizers."""
    from emollama.model.tiny import tiny_lm_tokenizer, tiny_qformer_tokenizer

    config = build_config("tiny", overrides)
    processor = EmoLlamaProcessor(tiny_lm_tokenizer(), tiny_qformer_tokenizer(), config)
    torch.manual_seed(seed)
    model = EmoLlamaForConditionalGeneration(config).eval()
    logger.info("built tiny model: %d parameters", sum(p.numel() for p in model.parameters()))
    return model, processor
