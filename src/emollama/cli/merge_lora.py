"""`emollama merge-lora CKPT OUT`: fold a run's LoRA adapter and trainables into a plain emollama model dir."""

from __future__ import annotations

from dataclasses import dataclass

from emollama.cli.options import arg

HELP = "merge a training checkpoint (LoRA adapter + trainables) into a model dir loadable without peft"


@dataclass(kw_only=True)
class Options:
    """`emollama merge-lora` options."""

    checkpoint: str = arg(positional=True, metavar="CKPT",
                          help="RUN_DIR/final or RUN_DIR/checkpoint-N written by emollama train")
    out: str = arg(positional=True, metavar="OUT", help="output model directory (new or empty)")


def run(opts: Options) -> int:
    """Merge ``opts.checkpoint`` into the model directory ``opts.out``."""
    from emollama.training.merge import merge_checkpoint

    out = merge_checkpoint(opts.checkpoint, opts.out)
    print(f"merged model written to {out} (load with emollama.model.checkpoint.load_pretrained)")
    return 0
