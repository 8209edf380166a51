#!/usr/bin/env python
"""P15: how much does the expression model lose when the head is turned? PublicTest at synthetic yaw angles.

FER2013's faces are mostly frontal, while posed datasets photograph faces at 15-45 degrees of yaw (the sample
disgust photo is a 45-degree view). No labelled turned faces are available here, so each PublicTest image is
re-projected as a head turned by 0, 15, 30 and 45 degrees (a seeded direction per image) with the cylinder model of
`emollama.training.expression.augment.yaw_source_x`, then goes through the analyzer's own face finder (``--faces
auto``) and `expression_input`, as in P7.

**Read with care:** this is the same warp family that ``emollama train-expression --yaw DEG`` trains with, so a
model trained with it is partly scored on its own augmentation. A cylinder is not a head: the far cheek is squeezed
rather than hidden, and the near side shows smeared edge pixels instead of an ear. The figure says how robust each
model is to this warp, not its accuracy on real turned faces.

Models in one run: ``shipped`` (the packaged weights) and, with ``--candidate [NAME=]FILE`` (repeatable), other
`emollama train-expression` files.

    python bench/p15_expression_turn.py [--root ../shared/data/fer2013] [--candidate [NAME=]FILE ...] [--limit N]

Writes bench/results/p15_expression_turn.json. About 7 min on 2 cores for the 3,589 images and two models (7.3 min
in the committed run).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    RESULTS,
    add_publictest_args,
    fer2013_missing,
    machine_info,
    parse_candidates,
    publictest_in_seeded_order,
    score_views,
    write_json,
)

ANGLES = (0, 15, 30, 45)  # degrees of yaw
RADIUS = 0.8  # the cylinder's half-width in half-sides of the image, as in the augmentation's default


def turn(rgb: np.ndarray, deg: float) -> np.ndarray:
    """(H, W, 3) uint8 image -> the same size, its content turned by ``deg`` degrees of yaw about the centre."""
    import torch
    import torch.nn.functional as F

    from emollama.training.expression.augment import yaw_source_x

    if deg == 0:
        return rgb
    h, w = rgb.shape[:2]
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) / w * 2 - 1  # pixel centres in [-1, 1]
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) / h * 2 - 1
    src = yaw_source_x(xs.view(1, w), torch.tensor([float(deg)]), RADIUS)[0]
    grid = torch.stack([src.view(1, w).expand(h, w), ys.view(h, 1).expand(h, w)], dim=-1).unsqueeze(0)
    img = torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0).float()
    out = F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return out[0].permute(1, 2, 0).round().clamp(0, 255).byte().numpy()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_publictest_args(ap)
    args = ap.parse_args()
    candidates = parse_candidates(args.candidate, ("shipped",), "p15")
    if fer2013_missing(args.root, "p15"):
        return 0
    import torch

    from emollama.evaluation.metrics import compute_metrics
    from emollama.faces.expression_net import LearnedExpression

    torch.set_num_threads(2)
    samples, order = publictest_in_seeded_order(args.root, args.limit)
    t0 = time.perf_counter()
    models = {"shipped": LearnedExpression(threads=2)}
    models.update({name: LearnedExpression(path, threads=2) for name, path in candidates.items()})
    for m in models.values():
        m.load()
    labels = models["shipped"].labels

    def views(rgb: np.ndarray, i: int):
        sign = 1 if np.random.default_rng([15, i]).random() < 0.5 else -1  # same direction whatever --limit
        for a in ANGLES:  # small images: whole-image when nothing is detected, as in P7
            yield a, turn(rgb, sign * a)

    scored = score_views(samples, order, models, views, "p15")
    truth, pred, no_face = scored["truth"], scored["pred"], scored["no_face"]
    out = {}
    for name, m in models.items():
        res = {"sha256": hashlib.sha256(m.weights.read_bytes()).hexdigest()}
        for a in ANGLES:
            met = compute_metrics(truth, pred[name, a], len(labels))
            res[f"yaw_{a}"] = {"war": round(met["war"], 4), "uar": round(met["uar"], 4),
                               "recall": [round(r, 4) for r in met["per_class_recall"]]}
        out[name] = res
    command = " ".join(["python bench/p15_expression_turn.py", *(f"--candidate {c}" for c in args.candidate)])
    result = {"benchmark": "p15_expression_turn", "command": command, "split": "FER2013 PublicTest",
              "images": len(order), "angles_deg": list(ANGLES), "radius": RADIUS, "labels": list(labels),
              "no_face": {str(a): n for a, n in no_face.items()}, "seconds": round(time.perf_counter() - t0, 1),
              "machine": machine_info(), "models": out}
    for name, res in out.items():
        print(f"{name} ({res['sha256'][:8]}): " + "; ".join(
            f"{a} deg WAR {res[f'yaw_{a}']['war']:.4f} UAR {res[f'yaw_{a}']['uar']:.4f}" for a in ANGLES))
    print(f"images without a face: {no_face}")
    print(f"wrote {write_json(RESULTS / 'p15_expression_turn.json', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
