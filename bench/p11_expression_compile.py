#!/usr/bin/env python
"""P11: training throughput of the expression recipe with and without torch.compile, in one run.

Trains emonet from the same seed on the recipe's cached crops twice, one after the other, each with both cores
(`LoopConfig` as shipped, 2 threads): ``eager`` (``compile="off"``) and ``compiled`` (``compile="on"``, the
default where a C++ compiler exists). Reports seconds and images/s per epoch (the first compiled epoch includes
Inductor's compilation) and held-out val WAR / UAR after the last epoch: compiled kernels round differently, so
the two runs are close, not identical.

    python bench/p11_expression_compile.py [--root ../shared/data/fer2013] [--epochs 3]

Needs FER2013 and a C++ compiler; builds the crop cache of `emollama train-expression` if absent. Writes
bench/results/p11_expression_compile.json. About 7 min for 3 epochs each on 2 cores.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import FER2013, RESULTS, ROOT, fer2013_missing, machine_info, metrics_rows, write_json  # noqa: E402
from p9_expression_augment import load_crops  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=str(FER2013), help="FER2013 folder")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per variant (default 3)")
    ap.add_argument("--out", default=str(ROOT / "runs" / "p11_expression_compile"),
                    help="run folders of the two variants (removed first: each run starts from nothing)")
    args = ap.parse_args()
    if fer2013_missing(args.root, "p11"):
        return 0
    from emollama.training.expression.loop import LoopConfig, resolve_compile, resolve_precision, train_loop
    from emollama.training.expression.run import ExpressionRecipe, keep_freed_memory, split_val

    if resolve_compile("auto") == "off":
        print("p11 skipped: no C++ compiler on PATH, so torch.compile cannot run here")
        return 0
    keep_freed_memory()
    train, _ = load_crops(args.root, workers=2)
    fit, val = split_val(train.labels, ExpressionRecipe(root=Path(".")).val_fraction, 0)  # the recipe's split
    t0, out, variants = time.perf_counter(), Path(args.out), {}
    for name, mode in (("eager", "off"), ("compiled", "on")):
        shutil.rmtree(out / name, ignore_errors=True)
        cfg = replace(LoopConfig(), epochs=args.epochs, compile=mode)
        train_loop(cfg, out / name, (train.crops[fit], train.labels[fit]), (train.crops[val], train.labels[val]),
                   progress=False)
        rows = metrics_rows(out / name)
        variants[name] = {"compile": mode, "precision": resolve_precision("auto"),
                          "per_epoch": [{"epoch": r["epoch"] + 1, "seconds": r["seconds"],
                                         "images_per_s": r["samples_per_s"]} for r in rows],
                          "final_val": rows[-1]["val"]}
        print(f"{name:>8}: " + ", ".join(f"epoch {r['epoch'] + 1} {r['seconds']} s ({r['samples_per_s']} img/s)"
                                         for r in rows) + f"; val {rows[-1]['val']}")
    later = {k: [r["images_per_s"] for r in v["per_epoch"][1:]] for k, v in variants.items()}
    speedup = (round(sum(later["compiled"]) / sum(later["eager"]), 3)
               if later["eager"] and later["compiled"] else None)  # epochs after the first: no compile time
    result = {"benchmark": "p11_expression_compile", "epochs": args.epochs, "fit_images": int(len(fit)),
              "command": f"python bench/p11_expression_compile.py --epochs {args.epochs}",
              "seconds": round(time.perf_counter() - t0, 1), "machine": machine_info(), "variants": variants,
              "speedup_after_first_epoch": speedup}
    print(f"compiled / eager images/s after the first epoch: {speedup}")
    print(f"wrote {write_json(RESULTS / 'p11_expression_compile.json', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
