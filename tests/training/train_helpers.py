"""Shared helpers for the training tests: a small generated task, CLI subprocess runs, metrics parsing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from emollama.training.args import packaged_config

REPO = Path(__file__).resolve().parents[2]
DEBUG = str(packaged_config("debug_cpu"))  # the shipped recipe file (package data)


def small_task(out: Path, n_train: int = 64, n_eval: int = 20) -> Path:
    """The debug task, smaller (tiny face config: 10 landmarks, 8 cues)."""
    from emollama.model.presets import build_config
    from emollama.training.synthetic_task import generate_task

    return generate_task(out, build_config("tiny").face_config, n_train=n_train, n_eval=n_eval, size=48, seed=0)


def task_overrides(data: Path, n_train: int = 64, n_eval: int = 20) -> list[str]:
    """--set values pointing the debug recipe at a pre-generated task (identical spec, so it is reused)."""
    return [f"data.synthetic.out={data}", f"data.synthetic.n_train={n_train}", f"data.synthetic.n_eval={n_eval}"]


def cli_cmd(out: Path, sets: list[str], nproc: int = 1, resume: bool = False) -> list[str]:
    """`emollama train` as a subprocess command (torchrun for nproc > 1)."""
    launcher = [sys.executable, "-m", "emollama.cli.__main__"]
    if nproc > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
                    "--master_port", str(29500 + os.getpid() % 1000), "-m", "emollama.cli.__main__"]
    cmd = [*launcher, "train", "--config", DEBUG, "--out", str(out)]
    for s in sets:
        cmd += ["--set", s]
    return cmd + (["--resume"] if resume else [])


def run_cli(out: Path, sets: list[str], nproc: int = 1, resume: bool = False, env: dict | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
    proc = subprocess.run(cli_cmd(out, sets, nproc, resume), capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def step_losses(run_dir: Path) -> dict[int, float]:
    """step -> training loss from metrics.jsonl (the last line per step wins, i.e. the resumed one)."""
    out = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        if "loss" in row:
            out[row["step"]] = row["loss"]
    return out


def tensors(ckpt: Path) -> dict[str, torch.Tensor]:
    """Trainables + adapter tensors of a checkpoint dir."""
    from safetensors.torch import load_file

    out = {f"t.{k}": v for k, v in load_file(str(ckpt / "trainables.safetensors")).items()}
    if (ckpt / "adapter_model.safetensors").exists():
        out.update({f"a.{k}": v for k, v in load_file(str(ckpt / "adapter_model.safetensors")).items()})
    return out
