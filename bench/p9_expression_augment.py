#!/usr/bin/env python
"""P9: the expression recipe's augmentation strength, old vs current, on a short schedule in one run.

Trains emonet twice from the same seed on the same cached crops, side by side (one process and one thread each):
- ``strong``: the strengths the first 50-epoch model was trained with (rotation +-15 deg, scale 0.85-1.15,
  shift 0.1, blur / low resolution / noise 0.2, erasing 0.25, dropout 0.3);
- ``light``: the current `AugmentConfig` and `ExpressionNetConfig` defaults.

Why: that 50-epoch model scored 74 % on its own (un-augmented) training crops and 68 % held out, i.e. it under-fitted
the compute one CPU run affords. Each variant runs ``--epochs`` epochs of the recipe's one-cycle schedule (other
settings as shipped) and reports held-out val and PublicTest WAR / UAR per epoch. A short schedule favours light
augmentation more than a 50-epoch one would: this chose the direction, the full run measures the result.

    python bench/p9_expression_augment.py [--root ../shared/data/fer2013] [--epochs 5]

Needs FER2013; builds the crop cache of `emollama train-expression` (runs/expression_fer2013/crops) if absent.
Writes bench/results/p9_expression_augment.json. About 16 min for 5 epochs on 2 cores.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import FER2013, RESULTS, ROOT, fer2013_missing, machine_info, metrics_rows, write_json  # noqa: E402

RUN = ROOT / "runs" / "expression_fer2013"


def variant_config(name: str, epochs: int):
    """The `LoopConfig` of variant ``name`` ("strong" or "light") for ``epochs`` epochs on one thread."""
    from emollama.training.expression.augment import AugmentConfig
    from emollama.training.expression.loop import LoopConfig

    cfg = LoopConfig(epochs=epochs, threads=1, compile="off")  # as recorded: eager (1-thread compile is no faster)
    if name == "strong":
        cfg = replace(cfg, net=replace(cfg.net, dropout=0.3),
                      augment=AugmentConfig(rotate_deg=15.0, scale=(0.85, 1.15), shift=0.1, blur=0.2, lowres=0.2,
                                            noise=0.2, erase=0.25))
    return cfg


def load_crops(root: str, workers: int, net=None):
    """(train crops, PublicTest crops) from the recipe's cache, built first where missing.

    ``net``: the `ExpressionNetConfig` whose crop definition to use (default: the recipe's). Masked crops
    (``mask_context``, `--context mask`) live in a cache of their own beside the recipe's."""
    from emollama.data.benchmarks import get_benchmark
    from emollama.faces.expression_net import ExpressionNetConfig
    from emollama.training.expression.crops import build_crops
    from emollama.training.expression.run import crop_cache_dir

    net = net or ExpressionNetConfig()
    base = crop_cache_dir(RUN, net)
    bench = get_benchmark("fer2013")
    train = build_crops(bench.load(root, "train").samples, base / "train", workers=workers, net=net, progress=False)
    test = build_crops(bench.load(root, "publictest").samples, base / "publictest", workers=workers, net=net,
                       progress=False)
    return train, test


def child(name: str, root: str, epochs: int, out: Path) -> None:
    """Train one variant into ``out`` (its metrics.jsonl has one line per epoch)."""
    from emollama.training.expression.loop import train_loop
    from emollama.training.expression.run import keep_freed_memory, split_val

    keep_freed_memory()
    train, test = load_crops(root, workers=1)
    fit, val = split_val(train.labels, 0.1, 0)  # the split of the recipe this A/B chose (f19cc63: 10 % held out)
    train_loop(variant_config(name, epochs), out, (train.crops[fit], train.labels[fit]),
               (train.crops[val], train.labels[val]), (test.crops, test.labels), progress=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=str(FER2013), help="FER2013 folder")
    ap.add_argument("--epochs", type=int, default=5, help="epochs per variant (default 5)")
    ap.add_argument("--out", default=str(ROOT / "runs" / "p9_expression_augment"),
                    help="run folders of the two variants (removed first: each run starts from nothing)")
    ap.add_argument("--child", nargs=2, metavar=("VARIANT", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.root, args.epochs, Path(args.child[1]))
        return 0
    if fer2013_missing(args.root, "p9"):
        return 0
    import shutil

    load_crops(args.root, workers=2)  # once, before the two children read it
    t0, out, procs = time.perf_counter(), Path(args.out), {}
    for name in ("strong", "light"):
        shutil.rmtree(out / name, ignore_errors=True)
        procs[name] = subprocess.Popen([sys.executable, __file__, "--root", args.root, "--epochs", str(args.epochs),
                                        "--child", name, str(out / name)])
    if any(p.wait() for p in procs.values()):
        print("p9: a variant failed", file=sys.stderr)
        return 1
    result = {"benchmark": "p9_expression_augment", "epochs": args.epochs,
              "command": f"python bench/p9_expression_augment.py --epochs {args.epochs}",
              "seconds": round(time.perf_counter() - t0, 1), "machine": machine_info(), "variants": {}}
    for name in procs:
        rows = metrics_rows(out / name)
        cfg = variant_config(name, args.epochs)
        result["variants"][name] = {
            "augment": asdict(cfg.augment), "dropout": cfg.net.dropout,
            # images/s: each variant trains on 1 thread while the other runs beside it on the second core
            "per_epoch": [{"epoch": r["epoch"] + 1, "train_loss": r["loss"], "val": r["val"],
                           "publictest": r["publictest"], "seconds": r["seconds"],
                           "images_per_s": r["samples_per_s"]} for r in rows],
            "final": {"val": rows[-1]["val"], "publictest": rows[-1]["publictest"]}}
        f = rows[-1]
        print(f"{name:>6}: val WAR {f['val']['war']:.4f} UAR {f['val']['uar']:.4f}; PublicTest WAR "
              f"{f['publictest']['war']:.4f} UAR {f['publictest']['uar']:.4f}")
    print(f"wrote {write_json(RESULTS / 'p9_expression_augment.json', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
