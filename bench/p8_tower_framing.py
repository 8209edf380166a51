#!/usr/bin/env python
"""P8: what emollama-small's vision tower sees behind `<image>`: the whole FER2013 image vs the face's own crop.

emollama-small's tower (its own copy of emonet-fer2013, `tower.safetensors` beside the checkpoint, with that
network's 7-way head) scores FER2013 PublicTest twice in one run:
- ``whole_image``: the 48 px file as it is (what training and `emollama eval` fed the MLLM before `89091d8`);
- ``face_crop``: `emollama.model.face_inputs.visual_item` with the shipped model's config, i.e. the face's square
  crop with a 10 % margin cut at the region the prior cache records (what training, eval and the API feed now).

Both go through the same grey conversion, resize to 48 px and network (`LearnedExpression.predict_batch`), so the
framing is the only difference. Needs the recipe's prior cache (docs/emollama_small.md):

    emollama prepare fer2013 ../shared/data/fer2013 --out runs/fer2013_priors --crop-size 64
    python bench/p8_tower_framing.py [--root ../shared/data/fer2013] [--priors runs/fer2013_priors]

Writes bench/results/p8_tower_framing.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import FER2013, RESULTS, ROOT, machine_info  # noqa: E402


def grey48(rgb: np.ndarray) -> np.ndarray:
    """(h, w, 3) uint8 -> (48, 48) uint8 grey, as `expression_input` resizes."""
    from PIL import Image

    return np.asarray(Image.fromarray(rgb).convert("L").resize((48, 48), Image.Resampling.BILINEAR))


def metrics(y: np.ndarray, pred: np.ndarray, labels: tuple[str, ...]) -> dict:
    from emollama.evaluation.metrics import bootstrap_ci, compute_metrics

    m = compute_metrics(y, pred, len(labels))
    ci = bootstrap_ci(y, pred, len(labels), n_boot=1000, seed=0)
    return {"war": round(m["war"], 4), "uar": round(m["uar"], 4), "macro_f1": round(m["macro_f1"], 4),
            "ci95": {k: [round(v[0], 4), round(v[1], 4)] for k, v in ci.items()},
            "per_class_recall": dict(zip(labels, [round(x, 4) for x in m["per_class_recall"]], strict=True))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=str(FER2013), help="FER2013 folder")
    ap.add_argument("--priors", default=str(ROOT / "runs" / "fer2013_priors"),
                    help="prior cache of `emollama prepare fer2013 ... --crop-size 64`")
    args = ap.parse_args()
    if not Path(args.root).exists() or not Path(args.priors).exists():
        print(f"p8 skipped: needs FER2013 at {args.root} and its prior cache at {args.priors} (see the docstring)")
        return 0
    from emollama.data.benchmarks import get_benchmark
    from emollama.faces.align import CropConfig
    from emollama.faces.expression_net import LearnedExpression
    from emollama.media.decode import load_media, media_item
    from emollama.model.face_inputs import visual_item
    from emollama.priors.source import PriorRequest, model_prior_source
    from emollama.training.ship import TOWER, load_any, shipped_path

    _, proc = load_any("emollama-small")  # its config (visual_input: face) and its prior spec
    priors = model_prior_source(args.priors, proc, crop=CropConfig(0.25, 64))
    # the small model's own tower, not the analyzer's packaged emonet, which may have been retrained since
    net = LearnedExpression(shipped_path("emollama-small") / TOWER, threads=2)
    net.load()
    samples = get_benchmark("fer2013").load(args.root, "publictest").samples
    t0 = time.perf_counter()
    whole, crop, y, no_region = [], [], [], 0
    for s in samples:
        img = media_item(load_media(s.media, False, "uniform:8"), False)
        prior = priors.get(PriorRequest.for_sample(s))
        boxes = None if prior is None else prior.crop_boxes
        no_region += int(boxes is None or bool(np.isnan(np.asarray(boxes)).any()))
        whole.append(grey48(img))
        crop.append(grey48(visual_item(proc.config, img, prior)))
        y.append(net.labels.index(s.label))
    y_true = np.array(y)
    out = {"benchmark": "p8_tower_framing", "split": "FER2013 PublicTest", "images": len(samples),
           "tower": str(net.weights.name), "no_crop_region": no_region,
           "command": "python bench/p8_tower_framing.py", "machine": machine_info(), "framings": {}}
    for name, crops in (("whole_image", whole), ("face_crop", crop)):
        x = np.stack(crops)
        pred = np.concatenate([net.predict_batch(x[i:i + 256]) for i in range(0, len(x), 256)]).argmax(1)
        out["framings"][name] = metrics(y_true, pred, tuple(net.labels))
        f = out["framings"][name]
        print(f"{name:>12}: WAR {f['war']:.4f} UAR {f['uar']:.4f} F1 {f['macro_f1']:.4f}", flush=True)
    out["war_gain_points"] = round(100 * (out["framings"]["face_crop"]["war"] - out["framings"]["whole_image"]["war"]),
                                   2)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "p8_tower_framing.json").write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {RESULTS / 'p8_tower_framing.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
