"""Self-describing model directories: `save_pretrained` / `load_pretrained` for model + processor together.

Layout (safetensors only): config.json, model.safetensors, generation_config.json, processor.json,
tokenizer/, qformer_tokenizer/, format_version.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from emollama.model.configuration import EmoLlamaConfig
from emollama.model.modeling import EmoLlamaForConditionalGeneration
from emollama.model.processor import EmoLlamaProcessor

logger = logging.getLogger(__name__)
FORMAT_VERSION = "emollama-ckpt/1"
REQUIRED = ("config.json", "processor.json", "tokenizer", "qformer_tokenizer")


def save_pretrained(
    model: EmoLlamaForConditionalGeneration, processor: EmoLlamaProcessor, path: str | os.PathLike
) -> Path:
    """Write model weights (safetensors), config, processor and tokenizers into ``path``."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    processor.save_pretrained(path)
    (path / "format_version").write_text(FORMAT_VERSION + "\n")
    logger.info("saved emollama model to %s", path)
    return path


def check_model_dir(path: str | os.PathLike) -> Path:
    """Raise FileNotFoundError naming what is missing from an emollama model directory."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"model directory {str(path)!r} does not exist")
    found = sorted(p.name for p in path.iterdir())
    missing = [f for f in REQUIRED if not (path / f).exists()]
    has_weights = any(n.endswith(".safetensors") or n == "model.safetensors.index.json" for n in found)
    if missing or not has_weights:
        missing += [] if has_weights else ["model.safetensors"]
        hint = "If this is a LLaMA-VID checkpoint, convert it first: emollama convert llama-vid SRC DST"
        raise FileNotFoundError(f"model dir {str(path)!r} is missing {missing}; found {found}. {hint}")
    return path


def load_pretrained(
    path: str | os.PathLike, device: str = "cpu", dtype: torch.dtype | None = None
) -> tuple[EmoLlamaForConditionalGeneration, EmoLlamaProcessor]:
    """Load (model, processor) saved by `save_pretrained` or `emollama convert`."""
    path = check_model_dir(path)
    version = (path / "format_version").read_text().strip() if (path / "format_version").exists() else None
    if version not in (None, FORMAT_VERSION):
        raise ValueError(f"{path} has format {version!r}; this emollama reads {FORMAT_VERSION!r}")
    config = EmoLlamaConfig.from_pretrained(path)
    processor = EmoLlamaProcessor.from_pretrained(path, config)
    model = EmoLlamaForConditionalGeneration.from_pretrained(path, config=config, dtype=dtype or torch.float32)
    return model.to(device).eval(), processor
