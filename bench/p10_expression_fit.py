#!/usr/bin/env python
"""P10: does the expression network under-fit? Accuracy on its own training crops vs held out, two weight files.

For each weight file, WAR and UAR on the recipe's fit crops (un-augmented, exactly as cached) and on its held-out
val crops (the recipe's seeded split of FER2013 train, `ExpressionRecipe.val_fraction`, which chose the epoch; the
5 % split is the first half of the earlier 10 % one, so neither model below trained on it). A small fit-minus-val
gap means the network did not fit its training data: at the compute one CPU run affords, lighter regularisation
helps (P9).

- ``previous``: the weights shipped before the current recipe, read from git (``--previous-rev``);
- ``current``: the packaged weights.

    python bench/p10_expression_fit.py [--root ../shared/data/fer2013] [--previous-rev 4a19ba6]

Needs FER2013; builds the crop cache of `emollama train-expression` (runs/expression_fer2013/crops, or crops_masked
for a model trained with `--context mask`) if absent.
Writes bench/results/p10_expression_fit.json. About 3.5 min on 2 cores, most of it the two networks over the
27,000 training crops.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import FER2013, RESULTS, ROOT, fer2013_missing, machine_info, write_json  # noqa: E402
from p9_expression_augment import load_crops  # noqa: E402

WEIGHTS = "src/emollama/resources/expression/emonet_fer2013.safetensors"


def score(weights: Path, root: str) -> dict:
    """{split: {war, uar, n}} of the network in ``weights`` on the recipe's fit and val crops, cut with the crop
    definition stored in the file (``mask_context`` or not)."""
    from emollama.evaluation.metrics import compute_metrics
    from emollama.faces._expression_torch import load_network
    from emollama.training.expression.loop import predict_logits
    from emollama.training.expression.run import ExpressionRecipe, split_val

    net, cfg, _ = load_network(weights, trace=False)  # batch scoring: no one-face compiled path
    train, _ = load_crops(root, workers=2, net=cfg)
    fit, val = split_val(train.labels, ExpressionRecipe(root=Path(".")).val_fraction, 0)  # the recipe's split, seed
    splits = {"fit": (train.crops[fit], train.labels[fit]), "val": (train.crops[val], train.labels[val])}
    out = {"mask_context": cfg.mask_context}
    for name, (x, y) in splits.items():
        r = compute_metrics(y, predict_logits(net, x).argmax(axis=1), len(net.cfg.labels))
        out[name] = {"war": round(r["war"], 4), "uar": round(r["uar"], 4), "n": int(len(y))}
    out["fit_minus_val_war_points"] = round(100 * (out["fit"]["war"] - out["val"]["war"]), 2)
    out["sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=str(FER2013), help="FER2013 folder")
    ap.add_argument("--previous-rev", default="4a19ba6",
                    help="git revision whose packaged weights are the baseline (default 206ff1f, which shipped the "
                         "97c7961-recipe model; 471045e has the f19cc63-recipe one, 3e22dba the strong-augmentation "
                         "one)")
    args = ap.parse_args()
    if fer2013_missing(args.root, "p10"):
        return 0
    import torch

    torch.set_num_threads(2)
    t0 = time.perf_counter()
    got = subprocess.run(["git", "-C", str(ROOT), "show", f"{args.previous_rev}:{WEIGHTS}"], capture_output=True,
                         check=False)
    if got.returncode:
        print(f"p10 skipped: git cannot read {WEIGHTS} at {args.previous_rev} (a shallow clone?): "
              f"{got.stderr.decode().strip()}")
        return 0
    blob = got.stdout
    with tempfile.TemporaryDirectory() as tmp:
        previous = Path(tmp) / "previous.safetensors"
        previous.write_bytes(blob)
        models = {"previous": score(previous, args.root), "current": score(ROOT / WEIGHTS, args.root)}
    result = {"benchmark": "p10_expression_fit", "command": "python bench/p10_expression_fit.py",
              "previous_rev": args.previous_rev, "seconds": round(time.perf_counter() - t0, 1),
              "machine": machine_info(), "models": models}
    for name, m in models.items():
        print(f"{name:>8} ({m['sha256'][:8]}): fit WAR {m['fit']['war']:.4f} UAR {m['fit']['uar']:.4f}; "
              f"val WAR {m['val']['war']:.4f} UAR {m['val']['uar']:.4f}; gap {m['fit_minus_val_war_points']} pts")
    print(f"wrote {write_json(RESULTS / 'p10_expression_fit.json', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
