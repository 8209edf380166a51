#!/usr/bin/env python
"""P5: training throughput of 2-process DDP (torchrun, gloo) vs 1 process on CPU, same global batch.

Runs `emollama train` on the generated drawn-face task three times in one invocation:
  1 process x 1 thread, 1 process x 2 threads (the whole machine), 2 processes x 1 thread (DDP).
Samples/s are steady-state: global batch x steps / wall time between step --skip and the last step, read from
each run's metrics.jsonl (the Trainer's own figure includes start-up). Writes bench/results/p5_ddp.json.

    python bench/p5_ddp.py                  # mid-sized model (default), 60 steps
    python bench/p5_ddp.py --model tiny
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import RESULTS, ROOT, machine_info, write_json

MODELS = {
    # tiny preset (~60k params): overhead-dominated, the worst case for DDP
    "tiny": [],
    # a mid-sized variant of tiny (~5 M params) so a step is compute-bound on one core
    "mid": ["text_config.hidden_size=256", "text_config.intermediate_size=768", "text_config.num_hidden_layers=4",
            "text_config.num_attention_heads=8", "text_config.num_key_value_heads=4", "vision_config.hidden_size=128",
            "vision_config.intermediate_size=256", "vision_config.num_hidden_layers=2",
            "vision_config.num_attention_heads=4", "qformer_config.hidden_size=64",
            "qformer_config.intermediate_size=128", "qformer_config.num_attention_heads=4",
            "face_config.hidden_size=64", "face_config.intermediate_size=128", "face_config.num_attention_heads=4"],
}
BASE_OVERRIDES = ["qformer_config.hidden_dropout_prob=0.0", "qformer_config.attention_probs_dropout_prob=0.0",
                  "initializer_range=0.3", "text_config.initializer_range=0.3"]


def run(out: Path, task: Path, model: str, nproc: int, threads: int, steps: int, batch: int) -> dict:
    overrides = "[" + ",".join(BASE_OVERRIDES + MODELS[model]) + "]"
    sets = [f"data.synthetic.out={task}", "data.synthetic.n_train=512", "data.synthetic.n_eval=8",
            "eval.enabled=false", f"train.max_steps={steps}", "train.logging_steps=1", "train.save_steps=100000",
            f"train.per_device_batch_size={batch // nproc}", f"train.torch_threads={threads}",
            f"model.overrides={overrides}"]
    launcher = [sys.executable, "-m", "emollama.cli.__main__"]
    if nproc > 1:
        launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "-m",
                    "emollama.cli.__main__"]
    cmd = [*launcher, "train", "--config", "debug_cpu", "--out", str(out)]
    for s in sets:
        cmd += ["--set", s]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    load = [round(x, 2) for x in os.getloadavg()]  # > 2 before we start: other jobs share the 2 cores
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode:
        raise RuntimeError(proc.stderr[-3000:])
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    t = {r["step"]: r["time_s"] for r in rows if "loss" in r}
    return {"nproc": nproc, "threads_per_proc": threads, "loadavg_at_start": load, "t_by_step": t}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=sorted(MODELS), default="mid")
    ap.add_argument("--steps", type=int, default=60, help="optimizer steps per run (default 60)")
    ap.add_argument("--skip", type=int, default=10, help="warm-up steps excluded from the rate (default 10)")
    ap.add_argument("--batch", type=int, default=16, help="global batch (default 16)")
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        task = Path(tmp) / "task"
        for name, nproc, threads in (("1proc_1thread", 1, 1), ("1proc_2threads", 1, 2), ("2proc_ddp", 2, 1)):
            r = run(Path(tmp) / name, task, args.model, nproc, threads, args.steps, args.batch)
            t = r.pop("t_by_step")
            r["samples_per_s"] = args.batch * (args.steps - args.skip) / (t[args.steps] - t[args.skip])
            results[name] = r
            print(f"{name}: {r['samples_per_s']:.1f} samples/s", flush=True)
    ddp = results["2proc_ddp"]["samples_per_s"]
    best_single = max(results["1proc_1thread"]["samples_per_s"], results["1proc_2threads"]["samples_per_s"])
    out = {
        "benchmark": "p5_ddp",
        "command": "python bench/p5_ddp.py " + " ".join(sys.argv[1:]),
        "model": args.model, "global_batch": args.batch, "steps": args.steps, "warmup_steps_excluded": args.skip,
        "runs": results,
        "speedup_vs_1proc_same_threads": ddp / results["1proc_1thread"]["samples_per_s"],
        "speedup_vs_best_1proc": ddp / best_single,
        "target": ">= 1.5x (2-process DDP vs 1 process, same global batch)",
        "machine": machine_info(),
    }
    out["meets_target"] = out["speedup_vs_1proc_same_threads"] >= 1.5
    path = write_json(RESULTS / "p5_ddp.json", out)
    print(f"speedup {out['speedup_vs_1proc_same_threads']:.2f}x vs 1 process x 1 thread, "
          f"{out['speedup_vs_best_1proc']:.2f}x vs the best single process -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
