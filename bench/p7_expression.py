#!/usr/bin/env python
"""P7: the whole analyzer on FER2013 PublicTest, learned expression model vs the mini-Xception baseline.

Runs `emollama analyze "ROOT/test/*/PublicTest_*.jpg"` twice, as a user would (default options, so ``--faces
auto``), once with the default ``--expression emonet`` and once with ``--expression mini-xception``, then scores
the records against the folder labels: WAR, UAR, macro-F1 with 95 % bootstrap CIs, per-class recall, images
without a face, ECE of the reported probabilities, and ms per face of the expression stage (from the records'
timings) plus the learned network alone at batch 1 on 2 threads: compiled, eager, and compiled without the
mirror-image pass, timed interleaved.

    python bench/p7_expression.py [--root ../shared/data/fer2013] [--limit N]

Writes bench/results/p7_expression.json (and a confusion PNG per model next to it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import FER2013, RESULTS, ROOT, fer2013_missing, machine_info  # noqa: E402

LABELS = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
FOLDER = {"angry": "anger", "disgust": "disgust", "fear": "fear", "happy": "happiness", "sad": "sadness",
          "surprise": "surprise", "neutral": "neutral"}
MODELS = ("emonet", "mini-xception")


def run_analyze(pattern: str, model: str, out: Path) -> float:
    """Seconds of wall time for one `emollama analyze` run writing ``out``."""
    exe = Path(sys.executable).with_name("emollama")
    cmd = [str(exe), "analyze", pattern, "--out", str(out), "--expression", model, "--no-progress", "--overwrite"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def score(records: list[dict], paths: list[str]) -> dict:
    """Metrics of one model's records over ``paths`` (one prediction per image: its largest face)."""
    from emollama.evaluation.metrics import NO_PREDICTION, bootstrap_ci, compute_metrics, confusion_matrix
    from emollama.training.expression.calibrate import ece

    by_media: dict[str, dict] = {}
    for r in records:
        if r.get("kind") == "face" and r.get("face_index") == 0:
            by_media[r["source"]] = r
    y_true, y_pred, probs, ms, detectors = [], [], [], [], {}
    for p in paths:
        y_true.append(LABELS.index(FOLDER[Path(p).parent.name]))
        r = by_media.get(p)
        if r is None or not r.get("label"):
            y_pred.append(NO_PREDICTION)
            probs.append(np.full(len(LABELS), 1 / len(LABELS)))
            continue
        y_pred.append(LABELS.index(r["label"]))
        probs.append(np.array([r["probabilities"].get(k, 0.0) for k in LABELS]))
        ms.append(r["timings_ms"].get("expression", float("nan")))
        detectors[r["detector"]] = detectors.get(r["detector"], 0) + 1
    t, pr = np.array(y_true), np.array(y_pred)
    m = compute_metrics(t, pr, len(LABELS))
    ci = bootstrap_ci(t, pr, len(LABELS), n_boot=1000, seed=0)
    p = np.stack(probs)
    return {
        "n": m["n"], "no_face": int((pr == NO_PREDICTION).sum()),
        "war": round(m["war"], 4), "uar": round(m["uar"], 4), "macro_f1": round(m["macro_f1"], 4),
        "ci95": {k: [round(v[0], 4), round(v[1], 4)] for k, v in ci.items()},
        "per_class_recall": dict(zip(LABELS, [round(x, 4) for x in m["per_class_recall"]], strict=True)),
        "ece": round(ece(p, t), 4),
        "expression_ms_per_face_median": round(statistics.median(ms), 2) if ms else None,
        "detectors": detectors,
        "confusion": confusion_matrix(t, pr, len(LABELS), include_none=True).tolist(),
    }


def network_ms(crops: int = 300) -> dict:
    """The learned network alone: median ms per face at batch 1, 2 threads (crop + grey + forward + softmax).

    The issue's budget (5 ms a face at batch 1 on 2 cores) is checked on this figure; the records' ``expression``
    stage (``expression_ms_per_face_median``) also holds the analyzer's call overhead on real images. Three ways of
    the same weights are timed interleaved, face by face, so the machine's speed on the day moves all alike: the
    shipped path (a frozen TorchScript trace of the crop and its mirror image), the eager network, and the trace
    without the mirror pass (its cost: ``median_ms`` - ``no_mirror_median_ms``). ``load_s``: loading the shipped
    path (file, BatchNorm folding, tracing), once."""
    import torch

    from emollama.faces.expression_net import LearnedExpression
    from emollama.faces.types import FaceBox

    torch.set_num_threads(2)
    traced, eager, no_mirror = LearnedExpression(), LearnedExpression(), LearnedExpression()
    t0 = time.perf_counter()
    traced.load()
    load_s = time.perf_counter() - t0
    eager.load()._drop_trace()  # the same weights, eager forward
    net = no_mirror.load()
    net.cfg = replace(net.cfg, flip_tta=False)
    net._drop_trace()
    net._trace()  # recompiled for the one-crop input; the private hook is the one `fuse_for_inference` calls
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    box = FaceBox(200, 120, 400, 360)
    ways = [("traced", traced), ("eager", eager), ("no_mirror", no_mirror)]
    times: dict[str, list[float]] = {name: [] for name, _ in ways}
    for i in range(crops + 20):
        for name, m in ways[i % 3:] + ways[:i % 3]:  # rotate which goes first: no order bias
            t0 = time.perf_counter()
            m.predict_face(img, box)
            if i >= 20:  # warm-up: the trace's first calls profile and optimise the graph
                times[name].append((time.perf_counter() - t0) * 1000)
    out = {"traced": "_traced" in traced.load().__dict__,  # False: the trace failed and that figure is eager
           "no_mirror_traced": "_traced" in net.__dict__, "load_s": round(load_s, 3)}
    for name, prefix in (("traced", ""), ("eager", "eager_"), ("no_mirror", "no_mirror_")):
        out[f"{prefix}median_ms"] = round(statistics.median(times[name]), 3)
        out[f"{prefix}p90_ms"] = round(float(np.percentile(times[name], 90)), 3)
    return {**out, "threads": 2, "faces": crops}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=str(FER2013),
                    help="FER2013 folder (train/ + test/, or the folder holding the .tar.gz)")
    ap.add_argument("--limit", type=int, default=0, help="only the first N images, sorted by path (0 = all)")
    args = ap.parse_args()
    from emollama.data.benchmarks.fer2013 import resolve_root

    if fer2013_missing(args.root, "p7"):
        return 0
    base = resolve_root(Path(args.root))
    paths = sorted(str(p) for p in base.glob("test/*/PublicTest_*.jpg"))
    if args.limit:
        paths = paths[: args.limit]
    if not paths:
        print(f"no PublicTest images under {base}/test", file=sys.stderr)
        return 1
    from emollama.faces.expression_net import DEFAULT_WEIGHTS

    out: dict = {"benchmark": "p7_expression", "split": "FER2013 PublicTest", "images": len(paths),
                 "command": "python bench/p7_expression.py" + (f" --limit {args.limit}" if args.limit else ""),
                 "machine": machine_info(),
                 # which weights `emollama analyze` labelled with: the sha alone misleads when the file is uncommitted
                 "emonet_weights_sha256": hashlib.sha256(DEFAULT_WEIGHTS.read_bytes()).hexdigest(), "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "inputs"
        listing.mkdir()
        pattern = f"{base}/test/*/PublicTest_*.jpg"
        if args.limit:  # a folder of links to exactly these images keeps the CLI invocation a plain DIR
            for i, p in enumerate(paths):
                os.symlink(p, listing / f"{i:05d}_{Path(p).parent.name}.jpg")
            pattern = str(listing)
        for model in MODELS:
            res = Path(tmp) / f"{model}.jsonl"
            seconds = run_analyze(pattern, model, res)
            records = [json.loads(x) for x in res.read_text().splitlines() if x.strip()]
            if args.limit:  # map the links back to the dataset paths
                for r in records:
                    link = listing / Path(r["source"]).name
                    r["source"] = os.path.realpath(link) if link.is_symlink() else r["source"]
            s = score(records, paths)
            s["wall_s"] = round(seconds, 1)
            s["ms_per_image_wall"] = round(1000 * seconds / len(paths), 1)
            out["models"][model] = s
            print(f"{model:>14}: WAR {s['war']:.4f} UAR {s['uar']:.4f} F1 {s['macro_f1']:.4f} ECE {s['ece']:.4f} "
                  f"no-face {s['no_face']} expr {s['expression_ms_per_face_median']} ms/face", flush=True)
    out["network_batch1"] = network_ms()
    e, b = out["models"]["emonet"], out["models"]["mini-xception"]
    out["war_gain_points"] = round(100 * (e["war"] - b["war"]), 2)
    out["targets"] = {"war>=0.70": e["war"] >= 0.70, "uar>=0.66": e["uar"] >= 0.66,
                      "war_gain>=4pts": out["war_gain_points"] >= 4.0, "no_face==0": e["no_face"] == 0,
                      "ms_per_face<=5": out["network_batch1"]["median_ms"] <= 5.0,
                      "analyzer_expression_stage_ms<=5": e["expression_ms_per_face_median"] is not None
                      and e["expression_ms_per_face_median"] <= 5.0}
    RESULTS.mkdir(parents=True, exist_ok=True)
    suffix = f"_limit{args.limit}" if args.limit else ""
    (RESULTS / f"p7_expression{suffix}.json").write_text(json.dumps(out, indent=2) + "\n")
    from emollama.evaluation.render import confusion_png

    for model in MODELS:
        cm = np.array(out["models"][model]["confusion"])
        confusion_png(cm, LABELS, f"{model} on PublicTest", RESULTS / f"p7_expression_{model}{suffix}.png")
    print(f"wrote {RESULTS / f'p7_expression{suffix}.json'}; targets: {out['targets']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
