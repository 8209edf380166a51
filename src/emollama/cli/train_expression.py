"""`emollama train-expression`: train the analyzer's expression model on FER2013 (seeded, resumable)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

HELP = "train the analyzer's learned expression model on FER2013 (CPU, resumable after kill -9)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from emollama.training.expression.loop import LoopConfig
    from emollama.training.expression.run import ExpressionRecipe

    d, r = LoopConfig(), ExpressionRecipe(root=Path("."))
    p.add_argument("--root", required=True, metavar="DIR",
                   help="FER2013: folder with train/ and test/, with fer2013.csv, or with the .tar.gz")
    p.add_argument("--out", default=str(r.out), metavar="DIR",
                   help=f"run folder: crops cache, checkpoint.pt, metrics.jsonl, weights (default {r.out}); "
                        "rerun the same command to resume")
    p.add_argument("--export", metavar="FILE", help="also copy the final weights here, e.g. "
                   "src/emollama/resources/expression/emonet_fer2013.safetensors to ship them")
    p.add_argument("--epochs", type=_at_least_one, default=d.epochs,
                   help=f"passes over the training crops (default {d.epochs})")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"images per step (default {d.batch_size})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"peak learning rate of the one-cycle schedule "
                                                          f"(default {d.lr})")
    p.add_argument("--seed", type=int, default=d.seed, help=f"seed for the split, order and augmentation "
                                                            f"(default {d.seed})")
    p.add_argument("--val-fraction", type=_fraction, default=r.val_fraction,
                   help=f"share of train held out to pick the epoch and fit the temperature (default {r.val_fraction})")
    p.add_argument("--threads", type=int, default=d.threads, help=f"torch threads for training (default {d.threads})")
    p.add_argument("--workers", type=int, default=r.workers, help=f"processes for the cropping pass "
                                                                  f"(default {r.workers})")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")


def _at_least_one(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def _fraction(text: str) -> float:
    x = float(text)
    if not 0.0 < x < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {x}: a held-out split is needed "
                                         "to choose the epoch and fit the temperature")
    return x


def run(args: argparse.Namespace) -> int:
    from emollama.training.expression.loop import LoopConfig
    from emollama.training.expression.run import ExpressionRecipe, run_recipe

    loop = LoopConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                      threads=args.threads)
    command = "emollama " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else ""
    recipe = ExpressionRecipe(Path(args.root), Path(args.out), args.val_fraction, args.workers,
                              Path(args.export) if args.export else None, command, loop)
    s = run_recipe(recipe, progress=not args.no_progress)
    m = s["metrics"]
    print(f"weights: {s['weights']}" + (f" (copied to {s['export']})" if s["export"] else ""))
    for split in ("val", "publictest"):
        if split in m:
            print(f"{split:>10}: WAR {m[split]['war']:.4f}  UAR {m[split]['uar']:.4f}  ECE {m[split]['ece']:.4f} "
                  f"(before temperature scaling {m[split]['ece_raw']:.4f}), n={m[split]['n']}")
    sec = s["seconds"]
    print(f"temperature {m['temperature']}; training {sec['training_all_epochs'] / 60:.1f} min over all epochs, "
          f"this call {sec['this_call']:.0f} s; summary in {Path(args.out)}/summary.json")
    return 0
