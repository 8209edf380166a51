"""`emollama train-expression`: train the analyzer's expression model on FER2013 (seeded, resumable)."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from emollama.cli.options import arg
from emollama.training.expression.loop import COMPILES, PRECISIONS, LoopConfig
from emollama.training.expression.run import ExpressionRecipe

HELP = "train the analyzer's learned expression model on FER2013 (CPU, resumable after kill -9)"
_LOOP, _RECIPE = LoopConfig(), ExpressionRecipe(root=Path("."))  # the shipped recipe: the one place of its defaults


def _at_least_one(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def _non_negative(text: str) -> float:
    x = float(text)
    if x < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0 (0 = off), got {x}")
    return x


def _probability(text: str) -> float:
    x = float(text)
    if not 0.0 <= x <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a probability between 0 and 1, got {x}")
    return x


def _fraction(text: str) -> float:
    x = float(text)
    if not 0.0 < x < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {x}: a held-out split is needed "
                                         "to choose the epoch and fit the temperature")
    return x


@dataclass(kw_only=True)
class Options:
    """`emollama train-expression` options; defaults are the shipped recipe's (`ExpressionRecipe`, `LoopConfig`)."""

    root: str = arg(metavar="DIR", help="FER2013: folder with train/ and test/, with fer2013.csv, or with the .tar.gz")
    out: str = arg(str(_RECIPE.out), metavar="DIR",
                   help="run folder: crops cache, checkpoint.pt, metrics.jsonl, weights (default {default}); "
                        "rerun the same command to resume")
    export: str | None = arg(None, metavar="FILE", help="also copy the final weights here, e.g. "
                             "src/emollama/resources/expression/emonet_fer2013.safetensors to ship them")
    epochs: int = arg(_LOOP.epochs, type=_at_least_one, help="passes over the training crops (default {default})")
    batch_size: int = arg(_LOOP.batch_size, help="images per step (default {default})")
    lr: float = arg(_LOOP.lr, help="peak learning rate of the one-cycle schedule (default {default})")
    mixup: float = arg(_LOOP.mixup, type=_non_negative, metavar="ALPHA",
                       help="mixup: blend each batch with a shuffled copy by a Beta(ALPHA, ALPHA) weight, and the "
                            "loss with it; 0 = off (default {default})")
    context: str = arg("mask" if _LOOP.net.mask_context else "keep", choices=["mask", "keep"],
                       help="what the crop shows outside the face box: keep = the image, zero-padded beyond its "
                            "edge (the shipped model); mask = black, the same for FER2013's 48 px crops and for "
                            "photos; docs/expression_model.md has its figures (default {default}; part of the crop "
                            "cache's key)")
    fill_margin: float | None = arg(None, type=_probability, metavar="P",
                                    help="probability that a training crop's zero-padded margin (the part of the "
                                         "crop beyond FER2013's 48 px image) is filled with synthetic context, its "
                                         "edge pixels continued or a flat noisy tone, as a photo shows hair and "
                                         "background there; training only, the crop itself is unchanged; 0 = off "
                                         f"(default {_LOOP.augment.fill}, the shipped recipe; 0 with --context mask)")
    yaw: float = arg(_LOOP.augment.yaw_deg, type=_non_negative, metavar="DEG",
                     help=f"head-turn augmentation: {round(_LOOP.augment.yaw_p * 100)} %% of training crops "
                          "re-projected as a head turned by up to "
                          "DEG degrees left or right (a cylinder model), as posed photos show faces at 15-45 degrees "
                          "where FER2013's are mostly frontal; 0 = off (default {default:g})")
    seed: int = arg(_LOOP.seed, help="seed for the split, order and augmentation (default {default})")
    val_fraction: float = arg(_RECIPE.val_fraction, type=_fraction,
                              help="fraction of train (0-1) held out, stratified, to pick the epoch and fit the "
                                   "temperature (default {default})")
    precision: str = arg(_LOOP.precision, choices=list(PRECISIONS),
                         help="arithmetic of the training convolutions: bf16 (2.3x faster where the CPU has native "
                              "bfloat16: AVX512-BF16 or AMX), fp32, or auto = bf16 where native, else fp32 "
                              "(default {default}; the shipped weights were trained with bf16)")
    compile: str = arg(_LOOP.compile, choices=list(COMPILES),
                       help="run training through torch.compile: on (1.06x the images/s of eager for the shipped "
                            "network, bench P11; needs a C++ compiler, under a minute to compile per call), off, or "
                            "auto = on where g++/c++/clang++ is on PATH "
                            "(default {default}); a run must be resumed with the same setting")
    threads: int = arg(_LOOP.threads, help="torch threads for training (default {default})")
    workers: int = arg(_RECIPE.workers, help="processes for the cropping pass (default {default})")
    test_every_epoch: bool = arg(False, help="also score PublicTest after every epoch, into metrics.jsonl (logging "
                                 "only, never used to choose; ~10 s an epoch). The final model is scored on it anyway")
    no_progress: bool = arg(False, help="no progress bars (also off when stderr is not a terminal, e.g. a log "
                            "file): one log line per epoch instead (held-out WAR/UAR, seconds, minutes left)")


def loop_config(opts: Options) -> LoopConfig:
    """The training loop's settings from the options (the network's shape stays the recipe's)."""
    mask = opts.context == "mask"
    if mask and opts.fill_margin:  # a masked crop's margin is black at inference as well
        raise ValueError("--fill-margin trains for context around the face, which --context mask removes at "
                         "inference too: use one or the other")
    fill = opts.fill_margin if opts.fill_margin is not None else 0.0 if mask else _LOOP.augment.fill
    return LoopConfig(epochs=opts.epochs, batch_size=opts.batch_size, lr=opts.lr, seed=opts.seed, mixup=opts.mixup,
                      threads=opts.threads, precision=opts.precision, compile=opts.compile,
                      net=replace(_LOOP.net, mask_context=mask),
                      augment=replace(_LOOP.augment, fill=fill, yaw_deg=opts.yaw))


def run(opts: Options) -> int:
    """Train (or resume) the expression model and print its held-out metrics."""
    from emollama.training.expression.run import run_recipe

    loop = loop_config(opts)
    command = "emollama " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else ""
    recipe = ExpressionRecipe(Path(opts.root), Path(opts.out), opts.val_fraction, opts.workers,
                              Path(opts.export) if opts.export else None, command, loop,
                              test_every_epoch=opts.test_every_epoch)
    bars = not opts.no_progress and sys.stderr.isatty()  # a log file gets lines, not redrawn bars
    logger = logging.getLogger("emollama.training.expression")
    level = logger.level
    if not bars and logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)  # without bars, the per-epoch lines are the only sign of progress
    try:
        from tqdm.contrib.logging import logging_redirect_tqdm

        with logging_redirect_tqdm():  # log lines (-v) print above the bars instead of through them
            s = run_recipe(recipe, progress=bars)
    finally:
        logger.setLevel(level)
    m = s["metrics"]
    print(f"weights: {s['weights']}" + (f" (copied to {s['export']})" if s["export"] else ""))
    for split in ("val", "publictest"):
        if split in m:
            print(f"{split:>10}: WAR {m[split]['war']:.4f}  UAR {m[split]['uar']:.4f}  ECE {m[split]['ece']:.4f} "
                  f"(before temperature scaling {m[split]['ece_raw']:.4f}), n={m[split]['n']}")
    sec = s["seconds"]
    print(f"temperature {m['temperature']}; training {sec['training_all_epochs'] / 60:.1f} min over all epochs, "
          f"this call {sec['this_call']:.0f} s; summary in {Path(opts.out)}/summary.json")
    return 0
