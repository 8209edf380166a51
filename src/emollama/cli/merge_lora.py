"""`emollama merge-lora CKPT OUT`: fold a run's LoRA adapter and trainables into a plain emollama model dir."""

from __future__ import annotations

import argparse

HELP = "merge a training checkpoint (LoRA adapter + trainables) into a model dir loadable without peft"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", metavar="CKPT", help="RUN_DIR/final or RUN_DIR/checkpoint-N written by emollama train")
    p.add_argument("out", metavar="OUT", help="output model directory (new or empty)")


def run(args: argparse.Namespace) -> int:
    from emollama.training.merge import merge_checkpoint

    out = merge_checkpoint(args.checkpoint, args.out)
    print(f"merged model written to {out} (load with emollama.model.checkpoint.load_pretrained)")
    return 0
