"""Run-directory side outputs: metrics.jsonl, env.json, and a test hook that slows steps down.

Only the main process writes. W&B / TensorBoard are transformers integrations switched on by `train.report_to`
(installed through extras); nothing here imports them.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

PACKAGES = ("emollama", "torch", "transformers", "peft", "accelerate", "safetensors", "tokenizers", "numpy",
            "deepspeed", "wandb", "tensorboard")


class JsonlMetricsCallback(TrainerCallback):
    """Append every Trainer log (loss, lr, grad_norm, ...) as one JSON line with step and wall time."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.t0 = time.time()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs:
            row = {"step": state.global_step, "epoch": state.epoch, "time_s": round(time.time() - self.t0, 3), **logs}
            append_jsonl(self.path, row)


class StepDelayCallback(TrainerCallback):
    """Test hook: sleep EMOLLAMA_TRAIN_STEP_DELAY_MS after each step so a test can kill -9 a run mid-way."""

    def __init__(self, delay_ms: float) -> None:
        self.delay_s = delay_ms / 1000.0

    def on_step_end(self, args, state, control, **kwargs):
        time.sleep(self.delay_s)


def append_jsonl(path: str | os.PathLike, row: dict[str, Any]) -> None:
    """Append one JSON line and flush it to disk (a killed run keeps every line written before the kill)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


def git_sha(cwd: str | os.PathLike | None = None) -> str | None:
    """HEAD commit of the source checkout (suffix '+dirty' with uncommitted changes), or None."""
    here = Path(cwd or Path(__file__).resolve().parent)
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment(world_size: int = 1) -> dict[str, Any]:
    """Versions, git sha, device, threads: what env.json records."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    cuda = torch.cuda.is_available()
    return {
        "versions": versions,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_sha": git_sha(),
        "device": torch.cuda.get_device_name(0) if cuda else "cpu",
        "cuda": torch.version.cuda if cuda else None,
        "num_gpus": torch.cuda.device_count() if cuda else 0,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "world_size": world_size,
    }
