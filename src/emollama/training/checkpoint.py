"""Training checkpoints: what a stage trained, beside the adapter, plus enough to rebuild the frozen base.

    <run>/checkpoint-<step>/
      emollama_train.json        format version, stage, base-model spec (preset|path, overrides, seed), step
      trainables.safetensors     every non-LoRA trainable parameter (base-model names)
      adapter_model.safetensors  + adapter_config.json  (peft; LoRA stages only)
      config.json processor.json tokenizer/ qformer_tokenizer/
      optimizer.pt scheduler.pt rng_state.pth trainer_state.json   (transformers.Trainer, for --resume)

A checkpoint is complete once trainer_state.json exists (the Trainer writes it last); `latest_checkpoint` skips
torn ones left by a kill mid-save. Weights are safetensors only.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

import torch
from peft import PeftModel, set_peft_model_state_dict
from safetensors.torch import load_file, save_file
from torch import nn

from emollama.training.stages import LORA_PARAM, PEFT_PREFIX, base_name

logger = logging.getLogger(__name__)
FORMAT = "emollama-train-ckpt/1"
META = "emollama_train.json"
TRAINABLES = "trainables.safetensors"
ADAPTER = "adapter_model.safetensors"
_CKPT_RE = re.compile(r"checkpoint-(\d+)$")


def trainable_state(model: nn.Module, state_dict: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Non-LoRA trainable tensors under base-model names (from ``state_dict`` when given, e.g. DeepSpeed's)."""
    out, seen = {}, set()
    for name, p in model.named_parameters():
        if not p.requires_grad or LORA_PARAM.fullmatch(name):
            continue
        t = (state_dict[name] if state_dict is not None and name in state_dict else p).detach().cpu().contiguous()
        if t.data_ptr() in seen:  # tied weights: safetensors refuses shared storage
            t = t.clone()
        seen.add(t.data_ptr())
        out[base_name(name)] = t
    return out


def save_checkpoint(model: nn.Module, processor: Any, out_dir: str | os.PathLike, meta: dict[str, Any],
                    state_dict: dict[str, torch.Tensor] | None = None) -> Path:
    """Write trainables (+ adapter), config, processor and meta into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file(trainable_state(model, state_dict), str(out / TRAINABLES), metadata={"format": "pt"})
    if isinstance(model, PeftModel):
        # peft extracts the adapter keys itself; given the full (possibly gathered) state dict it uses that one
        model.save_pretrained(str(out), state_dict=state_dict, safe_serialization=True)
        (out / "README.md").unlink(missing_ok=True)  # peft's model-card stub says nothing about this run
        base = model.get_base_model()
    else:
        base = model
    base.config.save_pretrained(out)
    processor.save_pretrained(out)
    (out / META).write_text(json.dumps({"format": FORMAT, **meta}, indent=2))
    return out


def load_checkpoint(model: nn.Module, ckpt: str | os.PathLike, strict: bool = True) -> None:
    """Load trainables (+ adapter) of ``ckpt`` into ``model`` (a peft model when the run used LoRA)."""
    ckpt = Path(ckpt)
    files = sorted(p.name for p in ckpt.iterdir()) if ckpt.is_dir() else []
    if not (ckpt / TRAINABLES).exists():
        raise FileNotFoundError(f"checkpoint {str(ckpt)!r} is missing {TRAINABLES!r}; found {files}. "
                                "Was it written by `emollama train`?")
    tensors = load_file(str(ckpt / TRAINABLES))
    params = dict(model.named_parameters())
    prefix = PEFT_PREFIX if isinstance(model, PeftModel) else ""
    unknown = [k for k in tensors if prefix + k not in params]
    if unknown:
        raise KeyError(f"{ckpt / TRAINABLES}: {len(unknown)} tensors not in the model, e.g. {unknown[:3]}; "
                       "was it trained with a different stage or model config?")
    with torch.no_grad():
        for k, v in tensors.items():
            params[prefix + k].copy_(v)
    if strict:
        missing = [base_name(n) for n, p in model.named_parameters()
                   if p.requires_grad and not LORA_PARAM.fullmatch(n) and base_name(n) not in tensors]
        if missing:
            raise KeyError(f"{ckpt / TRAINABLES} lacks {len(missing)} trainable tensors, e.g. {missing[:3]}")
    if isinstance(model, PeftModel):
        if not (ckpt / ADAPTER).exists():
            raise FileNotFoundError(f"checkpoint {str(ckpt)!r} has no {ADAPTER} but the model uses LoRA; found {files}")
        result = set_peft_model_state_dict(model, load_file(str(ckpt / ADAPTER)))
        bad = [k for k in result.unexpected_keys if "lora_" in k]
        if bad:
            raise KeyError(f"{ckpt / ADAPTER}: unexpected LoRA keys {bad[:3]}")
    logger.info("loaded %d trainable tensors%s from %s", len(tensors),
                " + LoRA adapter" if isinstance(model, PeftModel) else "", ckpt)


def read_meta(ckpt: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint's emollama_train.json (format-checked)."""
    path = Path(ckpt) / META
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: {str(ckpt)!r} is not an `emollama train` checkpoint")
    meta = json.loads(path.read_text())
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path}: format {meta.get('format')!r}; this emollama reads {FORMAT!r}")
    return meta


def list_checkpoints(run_dir: str | os.PathLike, complete_only: bool = True) -> list[Path]:
    """checkpoint-N directories of a run in step order (complete ones only by default)."""
    run = Path(run_dir)
    if not run.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in run.iterdir() if p.is_dir() and (m := _CKPT_RE.search(p.name))]
    ok = [p for _, p in sorted(found) if not complete_only or
          ((p / "trainer_state.json").exists() and (p / TRAINABLES).exists())]
    return ok


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    """The newest complete checkpoint of a run, or None."""
    ckpts = list_checkpoints(run_dir)
    return ckpts[-1] if ckpts else None
