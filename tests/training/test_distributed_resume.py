"""Engine invariants, in subprocesses like real launches: DDP on CPU (gloo) equals one process with the same global
batch, and kill -9 + --resume reproduces the uninterrupted run exactly (seeded data order, restored RNG/optimizer).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
import torch
from tests.numerics import assert_close_numerics
from train_helpers import DEBUG, cli_cmd, run_cli, small_task, step_losses, task_overrides, tensors

from emollama.training.checkpoint import latest_checkpoint


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    return small_task(tmp_path_factory.mktemp("task"))


def _sets(task, **kw) -> list[str]:
    base = {"train.logging_steps": 1, "eval.enabled": "false", "train.save_steps": 100}
    base.update(kw)
    return task_overrides(task) + [f"{k}={v}" for k, v in base.items()]


def test_ddp_two_processes_match_one_process(task, tmp_path):
    # same global batch (8): 1 x 8 vs 2 processes x 4; the sampler groups per global batch, so both see the
    # same samples per step; the loss is token-averaged across ranks (average_tokens_across_devices)
    run_cli(tmp_path / "one", _sets(task, **{"train.max_steps": 6, "train.per_device_batch_size": 8}))
    run_cli(tmp_path / "two", _sets(task, **{"train.max_steps": 6, "train.per_device_batch_size": 4}), nproc=2)
    one, two = step_losses(tmp_path / "one"), step_losses(tmp_path / "two")
    assert sorted(one) == sorted(two) == list(range(1, 7))
    # gloo's all-reduce sums the two halves' gradients in another order than one process does: equal up to
    # rounding. Losses: relative to their magnitude. Weights: relative to the largest weight, not each tensor's
    # own: Adam turns any gradient, even pure rounding noise (an attention key bias, whose exact gradient is 0,
    # sits at 2e-7 after 6 steps), into steps of similar size, so a near-zero tensor carries absolute noise.
    for s in one:
        assert_close_numerics([two[s]], [one[s]], msg=f"step {s} loss:")
    a, b = tensors(tmp_path / "one" / "final"), tensors(tmp_path / "two" / "final")
    assert a.keys() == b.keys()
    scale = max(t.abs().max().item() for t in a.values())
    for k in a:
        assert_close_numerics(b[k], a[k], scale=scale, msg=k)


def test_kill_9_then_resume_equals_uninterrupted(task, tmp_path):
    sets = _sets(task, **{"train.max_steps": 16, "train.save_steps": 5, "train.save_total_limit": 2})
    run_cli(tmp_path / "clean", sets)
    killed = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "EMOLLAMA_TRAIN_STEP_DELAY_MS": "250"}
    proc = subprocess.Popen(cli_cmd(killed, sets), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 90
    while time.time() < deadline and not (killed / "checkpoint-10" / "trainer_state.json").exists():
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert latest_checkpoint(killed).name == "checkpoint-10", "the kill must land mid-run (epoch 2 of 2)"
    assert not (killed / "final").exists()
    partial = step_losses(killed)
    assert 10 <= max(partial) < 16
    run_cli(killed, sets, resume=True)
    clean, resumed = step_losses(tmp_path / "clean"), step_losses(killed)
    assert sorted(resumed) == sorted(clean) == list(range(1, 17))
    assert resumed == clean  # bit-identical trajectory
    a, b = tensors(tmp_path / "clean" / "final"), tensors(killed / "final")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_fresh_run_refuses_a_directory_with_checkpoints(task, tmp_path):
    from emollama.cli.__main__ import main

    (tmp_path / "r" / "checkpoint-3").mkdir(parents=True)
    args = ["train", "--config", DEBUG, "--out", str(tmp_path / "r")]
    for s in _sets(task, **{"train.max_steps": 2}):
        args += ["--set", s]
    assert main(args) == 1  # the CLI prints "... already holds checkpoints (checkpoint-3); pass --resume ..."
