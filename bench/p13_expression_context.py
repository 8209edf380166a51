#!/usr/bin/env python
"""P13: does the expression model depend on FER2013's zero-padded borders? PublicTest as 48x48 files and as photos.

FER2013's images are already face crops, so the analyzer's crop margin falls outside the image in almost every
training crop and is zero-padded there; in a photo the same margin shows hair and background. Every PublicTest image
goes through the analyzer's own face finder (``--faces auto``) and `expression_input`, each model with the crop
definition stored in its weights file, in three renderings:

- ``native``: the 48x48 file, as P7 and the training crops see it;
- ``photo_flat``: the face upscaled 5x (bicubic, 240 px) in a 640x480 frame of its mean colour, at a seeded
  random position (a large image, so ``auto`` only detects: the detector must find the face);
- ``photo_edge``: the same, the frame filled by replicating the face image's border pixels outwards (context that
  continues the image: hair, clothes, background streaks).

Same renderings, one run: ``shipped`` (the packaged weights, with the crop definition they were trained with:
context kept), ``shipped_masked_at_inference`` (the same network fed masked crops, which it was not trained on:
the cheap fix, measured) and, with ``--candidate [NAME=]FILE`` (repeatable), other `emollama train-expression`
files, e.g. one trained with ``--context mask``. Reports WAR/UAR per rendering and model (a photo without a
detected face counts as wrong for all), the photos without a face, and how often each model's photo label equals
its native one.

    python bench/p13_expression_context.py [--root ../shared/data/fer2013] [--candidate [NAME=]FILE ...] [--limit N]

Writes bench/results/p13_expression_context.json. About 6 min on 2 cores for the 3,589 images, 12 min with three
candidates. The committed result's candidates (sha256 in the JSON): ``previous``, the packaged weights at 4a19ba6
(`git show 4a19ba6:src/emollama/resources/expression/emonet_fer2013.safetensors`), and two files not committed:
``masked``, `emollama train-expression --root ../shared/data/fer2013` at afba014, where ``--context mask`` was the
default (61 min), and ``fill``, the same command with ``--fill-margin 0.5`` at 06feaff (62 min).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from dataclasses import replace
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

RENDERINGS = ("native", "photo_flat", "photo_edge")
FRAME = (480, 640)  # (H, W) of the photo renderings
UPSCALE = 5  # 48 px -> 240 px face


def render(rgb: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """(h, w, 3) uint8 face image -> the (H, W, 3) rendering ``kind`` (``native`` returns it unchanged)."""
    if kind == "native":
        return rgb
    from PIL import Image

    h, w = rgb.shape[:2]
    up = np.asarray(Image.fromarray(rgb).resize((w * UPSCALE, h * UPSCALE), Image.Resampling.BICUBIC))
    top = int(rng.integers(0, FRAME[0] - up.shape[0] + 1))
    left = int(rng.integers(0, FRAME[1] - up.shape[1] + 1))
    pads = ((top, FRAME[0] - up.shape[0] - top), (left, FRAME[1] - up.shape[1] - left))
    if kind == "photo_edge":
        return np.pad(up, (*pads, (0, 0)), mode="edge")
    mean = up.reshape(-1, 3).mean(axis=0).round().astype(np.uint8)
    return np.stack([np.pad(up[..., c], pads, constant_values=mean[c]) for c in range(3)], axis=-1)


def load_models(candidates: dict[str, str]) -> dict:
    """{name: loaded `LearnedExpression`}: the shipped file twice (its own crops; masked crops), the candidates."""
    from emollama.faces.expression_net import LearnedExpression

    models = {"shipped": LearnedExpression(threads=2), "shipped_masked_at_inference": LearnedExpression(threads=2)}
    for name, path in candidates.items():
        models[name] = LearnedExpression(path, threads=2)
    for m in models.values():
        m.load()
    masked = models["shipped_masked_at_inference"]
    masked.cfg = replace(masked.cfg, mask_context=True)
    return models


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_publictest_args(ap)
    args = ap.parse_args()
    candidates = parse_candidates(args.candidate, ("shipped", "shipped_masked_at_inference"), "p13")
    if fer2013_missing(args.root, "p13"):
        return 0
    import torch

    from emollama.evaluation.metrics import compute_metrics

    torch.set_num_threads(2)
    samples, order = publictest_in_seeded_order(args.root, args.limit)
    t0 = time.perf_counter()
    models = load_models(candidates)
    labels = models["shipped"].labels

    def views(rgb: np.ndarray, i: int):
        rng = np.random.default_rng([0, i])  # the same frame position whatever --limit is
        for r in RENDERINGS:
            yield r, render(rgb, r, rng)

    scored = score_views(samples, order, models, views, "p13")
    truth, pred, no_face = scored["truth"], scored["pred"], scored["no_face"]
    out = {}
    for name, m in models.items():
        res = {"sha256": hashlib.sha256(m.weights.read_bytes()).hexdigest(), "mask_context": m.cfg.mask_context}
        for r in RENDERINGS:
            met = compute_metrics(truth, pred[name, r], len(labels))
            res[r] = {"war": round(met["war"], 4), "uar": round(met["uar"], 4)}
            if r != "native":
                res[r]["same_label_as_native"] = round(float(np.mean(pred[name, r] == pred[name, "native"])), 4)
        out[name] = res
    command = " ".join(["python bench/p13_expression_context.py", *(f"--candidate {c}" for c in args.candidate)])
    result = {"benchmark": "p13_expression_context", "command": command,
              "split": "FER2013 PublicTest", "images": len(order),
              "no_face": no_face, "seconds": round(time.perf_counter() - t0, 1), "machine": machine_info(),
              "models": out}
    for name, res in out.items():
        print(f"{name} ({res['sha256'][:8]}, mask_context={res['mask_context']}): " + "; ".join(
            f"{r} WAR {res[r]['war']:.4f} UAR {res[r]['uar']:.4f}" for r in RENDERINGS))
    print(f"photos without a face: {no_face}")
    print(f"wrote {write_json(RESULTS / 'p13_expression_context.json', result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
