"""Shipped checkpoints: what a run changed relative to its registry base, in fp16, and the loader that rebuilds it.

A shipped directory (e.g. ``emollama/resources/emollama_small``) holds only
  trainables.safetensors     every non-LoRA tensor the run trained (Q-Former, projectors, face modules), fp16
  adapter_model.safetensors  + adapter_config.json: the LoRA adapter, fp16
  emollama_train.json        the base-model spec (preset, overrides, seed), LoRA args, the frozen tower's sha256
  tower.safetensors          (emollama-small) the frozen emonet tower it was trained on, a copy of that
                             `emollama train-expression` file, fp16: the analyzer's expression model may be retrained
                             later without invalidating this checkpoint
  config.json processor.json the resolved model config and preprocessing (for reading; the build recreates both)
The frozen base (registry SmolLM2 + the tower) is rebuilt by the preset builder, so nothing the registry already has
is duplicated. Loading folds LoRA into the LM weights: inference runs no peft code.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from emollama.assets import sha256_file
from emollama.model.modeling import EmoLlamaForConditionalGeneration
from emollama.model.processor import EmoLlamaProcessor
from emollama.training.checkpoint import ADAPTER, META, TRAINABLES, read_meta

logger = logging.getLogger(__name__)
RESOURCES = Path(__file__).resolve().parent.parent / "resources"
# name -> packaged directory; `EmoLlama.from_pretrained(name)`, `--model name` everywhere
SHIPPED: dict[str, Path] = {"emollama-small": RESOURCES / "emollama_small"}
_COPIED = ("adapter_config.json", "config.json", "processor.json")
TOWER = "tower.safetensors"


def _tower_file(meta: dict[str, Any], directory: Path | None = None) -> Path | None:
    """The emonet file an emollama-small checkpoint's tower comes from: its own copy when ``directory`` has one
    (every export does), else the analyzer's packaged weights (what a training run builds on); None for others."""
    if meta["base"].get("preset") != "emollama-small":
        return None
    if directory is not None and (directory / TOWER).is_file():
        return directory / TOWER
    from emollama.faces.expression_net import DEFAULT_WEIGHTS

    return DEFAULT_WEIGHTS


def tower_record(meta: dict[str, Any]) -> dict[str, str]:
    """{"tower_sha256": ...} of the tower a run with this meta builds on (training records it), else {}."""
    tower = _tower_file(meta)
    return {"tower_sha256": sha256_file(tower)} if tower is not None else {}


def export_checkpoint(ckpt: str | os.PathLike, out: str | os.PathLike, extra: dict[str, Any] | None = None) -> Path:
    """Write the shipped form of training checkpoint ``ckpt`` into ``out`` (replaced): fp16 tensors, no
    tokenizers, no optimizer state. ``extra`` is merged into the meta (e.g. the git sha and the command)."""
    ckpt, out = Path(ckpt), Path(out)
    meta = read_meta(ckpt)
    tower = _tower_file(meta, ckpt)
    if tower is not None:
        sha = sha256_file(tower)
        if meta.get("tower_sha256", sha) != sha:  # recorded at training time (runs from before: not recorded)
            raise ValueError(f"{ckpt} was trained on an emonet tower of sha256 {meta['tower_sha256'][:12]}..., but "
                             f"{tower} is now {sha[:12]}... (the expression model was retrained since): export from "
                             "a checkout whose resources/expression/ holds the run's tower, or retrain")
        meta["tower_sha256"] = sha
    env = ckpt.parent / "env.json"  # the run's provenance (git sha of the recipe commit, versions)
    if env.is_file():
        run_env = json.loads(env.read_text())
        meta["train_git_sha"] = run_env.get("git_sha")
        meta["train_versions"] = run_env.get("versions")
    meta.update(extra or {})
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in (TRAINABLES, ADAPTER):
        if (ckpt / name).exists():
            tensors = {k: v.half() if v.is_floating_point() else v for k, v in load_file(str(ckpt / name)).items()}
            save_file(tensors, str(tmp / name), metadata={"format": "pt"})
    for name in _COPIED:
        if (ckpt / name).exists():
            shutil.copy2(ckpt / name, tmp / name)
    if tower is not None:
        shutil.copy2(tower, tmp / TOWER)
    (tmp / META).write_text(json.dumps(meta, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    size = sum(p.stat().st_size for p in out.iterdir())
    logger.info("exported %s -> %s (%.1f MB)", ckpt, out, size / 1e6)
    return out


def is_shipped_dir(path: str | os.PathLike) -> bool:
    """True for a directory written by `export_checkpoint` (a training meta, no tokenizer)."""
    p = Path(path)
    return (p / META).is_file() and (p / TRAINABLES).is_file() and not (p / "tokenizer").exists()


def shipped_path(name_or_path: str | os.PathLike) -> Path | None:
    """The shipped directory a ``--model`` value names (a name in `SHIPPED` or an exported dir), else None."""
    if str(name_or_path) in SHIPPED:
        path = SHIPPED[str(name_or_path)]
        if not is_shipped_dir(path):
            raise FileNotFoundError(f"{name_or_path}: its weights are missing from {path}; reinstall emollama "
                                    "(or train and export them: docs/emollama_small.md)")
        return path
    return Path(name_or_path) if is_shipped_dir(name_or_path) else None


def load_shipped(name_or_path: str | os.PathLike) -> tuple[EmoLlamaForConditionalGeneration, EmoLlamaProcessor]:
    """(model in eval mode, float32, LoRA merged; processor) of a shipped name or exported directory."""
    from emollama.training.args import LoraArgs, ModelArgs, TrainConfig
    from emollama.training.checkpoint import load_checkpoint
    from emollama.training.lora import attach_lora, merge_lora
    from emollama.training.trainer import build_base

    path = shipped_path(name_or_path)
    if path is None:
        raise FileNotFoundError(f"{name_or_path!r} is neither a shipped model ({sorted(SHIPPED)}) nor an exported "
                                "directory (emollama export)")
    meta = read_meta(path)
    tower = _tower_file(meta, path)
    if tower is not None and meta.get("tower_sha256") and sha256_file(tower) != meta["tower_sha256"]:
        raise ValueError(f"{path} was trained on a different emonet tower than {tower} (sha256 mismatch): re-export "
                         "the checkpoint with `emollama export` (it copies its tower), or retrain it")
    # the checkpoint's own tower, not the analyzer's packaged emonet (which may have been retrained since)
    model, processor = build_base(TrainConfig(model=ModelArgs(**meta["base"])),
                                  **({"tower_weights": str(tower)} if tower is not None else {}))
    if meta.get("lora"):
        model = attach_lora(model, LoraArgs(**meta["lora"]))
    load_checkpoint(model, path, strict=False)
    if meta.get("lora"):
        model = merge_lora(model)
    return model.float().eval(), processor


def load_any(name_or_path: str | os.PathLike, device: str = "cpu",
             dtype: torch.dtype | None = None) -> tuple[EmoLlamaForConditionalGeneration, EmoLlamaProcessor]:
    """A shipped model name, an exported directory, or a full model directory (`load_pretrained`)."""
    if shipped_path(name_or_path) is not None:
        model, processor = load_shipped(name_or_path)
        return model.to(device=device, dtype=dtype or torch.float32).eval(), processor
    from emollama.model.checkpoint import load_pretrained

    return load_pretrained(name_or_path, device=device, dtype=dtype)
