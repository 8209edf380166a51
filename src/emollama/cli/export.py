"""`emollama export CKPT OUT`: a training checkpoint as a shipped delta (fp16 trainables + LoRA, no tokenizers)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from emollama.cli.options import arg

HELP = ("write a training checkpoint as a shipped model: fp16 trainables + LoRA adapter only; the frozen base is "
        "rebuilt from the registry at load (EmoLlama.from_pretrained(OUT), --model OUT)")


@dataclass(kw_only=True)
class Options:
    """`emollama export` options."""

    checkpoint: str = arg(positional=True, metavar="CKPT",
                          help="RUN_DIR/final or RUN_DIR/checkpoint-N written by emollama train")
    out: str = arg(positional=True, metavar="OUT",
                   help="output directory (replaced), e.g. src/emollama/resources/emollama_small")


def _git_sha() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                              cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run(opts: Options) -> int:
    """Export ``opts.checkpoint`` into ``opts.out``."""
    from emollama.training.ship import export_checkpoint

    out = export_checkpoint(opts.checkpoint, opts.out, {"export_git_sha": _git_sha(),
                                                        "export_command": f"emollama export {opts.checkpoint} "
                                                                          f"{opts.out}"})
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"exported {opts.checkpoint} -> {out} ({size / 1e6:.1f} MB); "
          f"load with EmoLlama.from_pretrained({str(out)!r})")
    return 0
