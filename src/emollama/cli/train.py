"""`emollama train`: one entry for every stage (align / instruct / full) on the HF Trainer engine.

Single process: `emollama train --config debug_cpu --out runs/debug`. Multi-process: launch the same command under
`torchrun --nproc_per_node N -m emollama.cli.__main__ train ...` or `accelerate launch` (docs/training.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from emollama.cli.options import arg

HELP = "train a stage (align / instruct / full) from a YAML recipe; DDP / DeepSpeed via torchrun or accelerate"


@dataclass(kw_only=True)
class Options:
    """`emollama train` options."""

    config: list[str] = arg(default_factory=list, metavar="YAML",
                            help="training recipe: a YAML path or a shipped name (debug_cpu, stage2_instruct); "
                                 "repeatable, merged in order")
    overrides: list[str] = arg(default_factory=list, flag="--set", metavar="KEY=VALUE",
                               help="dotted override, e.g. --set train.max_steps=4 --set lora.r=16 (repeatable)")
    out: str | None = arg(None, metavar="DIR", help="run directory (overrides train.output_dir)")
    resume: bool = arg(False, help="continue from the newest complete checkpoint-N in the run directory (fresh "
                                   "start if none)")


def run(opts: Options) -> int:
    """Run the training recipe; rank 0 prints the run summary."""
    import importlib.util

    if importlib.util.find_spec("accelerate") is None:  # transformers.Trainer needs it; peft normally pulls it in
        raise ImportError("emollama train needs accelerate: pip install 'emollama[train]'")
    from emollama.training.args import load_config
    from emollama.training.trainer import run_training

    cfg = load_config(opts.config, opts.overrides)
    if opts.out:
        cfg.train.output_dir = opts.out
    summary = run_training(cfg, resume=opts.resume)
    if summary.get("process_index", 0) != 0:  # under torchrun only rank 0 reports
        return 0
    print(json.dumps({k: summary[k] for k in ("run_dir", "global_step", "train_loss", "final") if k in summary}))
    if "eval" in summary:
        ev = summary["eval"]
        print(f"held-out accuracy {ev['accuracy']:.3f} on {ev['n']} samples (chance {ev['chance']:.3f})")
    return 0
