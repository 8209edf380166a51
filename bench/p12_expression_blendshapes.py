#!/usr/bin/env python
"""P12: does a learned fusion with MediaPipe's blendshapes help the expression network? Two deciders, one run.

Issue #12 allows the expression model to take the blendshapes, which come from a model trained on far more faces
than FER2013. This measures whether a learned late fusion earns its place:

- ``cnn``: the packaged emonet alone, the analyzer's default decision (its calibrated argmax);
- ``cnn+blendshapes``: ``softmax(a * log p_cnn + b * has_blendshapes * log softmax(g(blendshapes)))``, where ``g``
  is an MLP (52 -> 128 -> 7) trained on the blendshapes of the recipe's fit split (the network's own training
  images, which is fine for ``g``: it never sees the network's outputs), and ``a``, ``b`` are fitted by
  log-likelihood on the held-out val split, whose network outputs are honest. The val figure is 5-fold
  cross-fitted (each fold scored with ``a``, ``b`` fitted on the other four); PublicTest uses ``a``, ``b`` fitted
  on all of val.

Both read the same analyzer outputs: every image goes once through ``Analyzer`` (``--faces auto``, as
``emollama analyze`` runs it), in 2 processes of 1 torch thread each, and the probabilities and blendshapes are
cached under runs/expression_fer2013/blendshapes/, keyed by the weights' sha256. Also reports both deciders'
labels on the five sample photos when they are in the asset cache.

    python bench/p12_expression_blendshapes.py [--root ../shared/data/fer2013] [--workers 2]

Writes bench/results/p12_expression_blendshapes.json. About 7 min on 2 cores when the cache is cold, 1 min warm.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import FER2013, RESULTS, ROOT, fer2013_missing, machine_info, write_json  # noqa: E402

CACHE = ROOT / "runs" / "expression_fer2013" / "blendshapes"
PHOTOS = {"astronaut": "happiness", "feat_surprise": "surprise", "feat_happy": "happiness",
          "feat_anger": "anger", "feat_disgust": "disgust"}
_WORKER: dict = {}


def _init() -> None:
    import torch

    from emollama.faces.analyzer import Analyzer, AnalyzerConfig

    torch.set_num_threads(1)  # 2 processes x 2 threads each ran ~8x slower than 2 x 1 (measured once)
    _WORKER["an"] = Analyzer(AnalyzerConfig(attributes=False))


def _features(face) -> tuple[np.ndarray, np.ndarray]:
    """(7,) probabilities in FER order, (52,) blendshapes by sorted name (NaN when MediaPipe found no mesh)."""
    from emollama.faces.expression import FER_LABELS

    probs = np.array([face.probs[k] for k in FER_LABELS], np.float32)
    bs = np.full(52, np.nan, np.float32)
    if face.blendshapes:
        bs[:] = [face.blendshapes[k] for k in sorted(face.blendshapes)]
    return probs, bs


def _chunk(paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image

    out = [_features(_WORKER["an"].analyze_image(Image.open(p))[0]) for p in paths]  # auto: never no face here
    return np.stack([o[0] for o in out]), np.stack([o[1] for o in out])


def features(samples, name: str, digest: str, workers: int) -> dict:
    """{probs (N, 7), bs (N, 52), labels (N,)} of ``samples``, from the cache when it matches the weights."""
    from emollama.faces.expression import FER_LABELS

    path = CACHE / f"{name}_{digest[:12]}.npz"
    labels = np.array([FER_LABELS.index(s.label) for s in samples])
    if path.is_file():
        d = dict(np.load(path))
        if len(d["labels"]) == len(samples) and (d["labels"] == labels).all():
            return d
    paths = [str(s.media) for s in samples]
    chunks = [paths[i:i + 250] for i in range(0, len(paths), 250)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(workers, initializer=_init) as ex:
        parts = list(ex.map(_chunk, chunks))
    print(f"{name}: {len(paths)} images through the analyzer in {time.perf_counter() - t0:.0f} s", flush=True)
    d = {"probs": np.concatenate([p[0] for p in parts]), "bs": np.concatenate([p[1] for p in parts]),
         "labels": labels}
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, **d)
    return d


def fit_g(bs: np.ndarray, y: np.ndarray):
    """The blendshape MLP, trained on the rows that have blendshapes (seeded, AdamW, 150 epochs)."""
    import torch

    torch.manual_seed(0)
    g = torch.nn.Sequential(torch.nn.Linear(52, 128), torch.nn.ReLU(), torch.nn.Dropout(0.2), torch.nn.Linear(128, 7))
    x, t = torch.tensor(bs), torch.tensor(y)
    opt = torch.optim.AdamW(g.parameters(), 3e-3, weight_decay=1e-3)
    for _ in range(150):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 512):
            j = perm[i:i + 512]
            loss = torch.nn.functional.cross_entropy(g(x[j]), t[j])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return g.eval()


def log_g(g, bs: np.ndarray):
    """(N, 7) log-probabilities of ``g``; zeros where a row has no blendshapes (the fusion term drops out)."""
    import torch

    has = ~np.isnan(bs[:, 0])
    with torch.no_grad():
        out = torch.log_softmax(g(torch.tensor(np.nan_to_num(bs))), 1)
    return out * torch.tensor(has, dtype=torch.float32)[:, None]


def fit_ab(lc, lb, y: np.ndarray) -> tuple[float, float]:
    """(a, b) minimising the NLL of softmax(a * lc + b * lb) on labels ``y`` (N,)."""
    import torch

    ab = torch.tensor([1.0, 0.0], requires_grad=True)
    opt = torch.optim.LBFGS([ab], max_iter=200)
    t = torch.tensor(y)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(ab[0] * lc + ab[1] * lb, t)
        loss.backward()
        return loss

    opt.step(closure)
    return float(ab[0].detach()), float(ab[1].detach())


def metrics(pred: np.ndarray, y: np.ndarray) -> dict:
    from emollama.evaluation.metrics import compute_metrics

    r = compute_metrics(y, pred, 7)
    return {"war": round(r["war"], 4), "uar": round(r["uar"], 4), "macro_f1": round(r["macro_f1"], 4), "n": len(y)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", default=str(FER2013), help="FER2013 folder")
    ap.add_argument("--workers", type=int, default=2, help="analyzer processes (1 torch thread each)")
    args = ap.parse_args()
    if fer2013_missing(args.root, "p12"):
        return 0
    import torch

    from emollama.data.benchmarks import get_benchmark
    from emollama.faces.expression_net import DEFAULT_WEIGHTS
    from emollama.training.expression.run import ExpressionRecipe, split_val

    t0 = time.perf_counter()
    digest = hashlib.sha256(DEFAULT_WEIGHTS.read_bytes()).hexdigest()
    bench = get_benchmark("fer2013")
    tr = features(bench.load(args.root, "train").samples, "train", digest, args.workers)
    te = features(bench.load(args.root, "publictest").samples, "publictest", digest, args.workers)
    fit, val = split_val(tr["labels"], ExpressionRecipe(root=Path(".")).val_fraction, 0)  # the recipe's split
    has = ~np.isnan(tr["bs"][fit, 0])
    g = fit_g(tr["bs"][fit][has], tr["labels"][fit][has])
    lc = {k: torch.log(torch.tensor(d["probs"]).clamp_min(1e-8)) for k, d in (("val", tr), ("test", te))}
    lc["val"] = lc["val"][val]
    lb = {"val": log_g(g, tr["bs"][val]), "test": log_g(g, te["bs"])}
    yv, yt = tr["labels"][val], te["labels"]
    fused_val = np.zeros(len(val), np.int64)  # 5-fold cross-fitted a, b on val
    folds = np.arange(len(val)) % 5
    for k in range(5):
        a, b = fit_ab(lc["val"][folds != k], lb["val"][folds != k], yv[folds != k])
        fused_val[folds == k] = (a * lc["val"][folds == k] + b * lb["val"][folds == k]).argmax(1).numpy()
    a, b = fit_ab(lc["val"], lb["val"], yv)
    fused_test = (a * lc["test"] + b * lb["test"]).argmax(1).numpy()
    bs_only = ~np.isnan(te["bs"][:, 0])
    result = {
        "benchmark": "p12_expression_blendshapes", "command": "python bench/p12_expression_blendshapes.py",
        "weights_sha256": digest, "a": round(a, 4), "b": round(b, 4),
        "with_blendshapes": {"train": round(float((~np.isnan(tr["bs"][:, 0])).mean()), 4),
                             "publictest": round(float(bs_only.mean()), 4)},
        "blendshapes_alone_publictest": metrics(lb["test"][bs_only].argmax(1).numpy(), yt[bs_only]),
        "val": {"cnn": metrics(lc["val"].argmax(1).numpy(), yv), "cnn+blendshapes": metrics(fused_val, yv)},
        "publictest": {"cnn": metrics(lc["test"].argmax(1).numpy(), yt),
                       "cnn+blendshapes": metrics(fused_test, yt)},
        "photos": photos(g, a, b),
        "seconds": round(time.perf_counter() - t0, 1), "machine": machine_info(),
    }
    for split in ("val", "publictest"):
        c, f = result[split]["cnn"], result[split]["cnn+blendshapes"]
        print(f"{split:>10}: cnn WAR {c['war']:.4f} UAR {c['uar']:.4f} | cnn+blendshapes WAR {f['war']:.4f} "
              f"UAR {f['uar']:.4f}")
    print(f"photos: {result['photos']}")
    print(f"wrote {write_json(RESULTS / 'p12_expression_blendshapes.json', result)}")
    return 0


def photos(g, a: float, b: float) -> dict:
    """{photo: {expected, cnn, cnn+blendshapes}} for the sample photos in the asset cache."""
    import torch
    from PIL import Image

    from emollama import assets
    from emollama.faces.analyzer import Analyzer, AnalyzerConfig
    from emollama.faces.expression import FER_LABELS

    an, out = Analyzer(AnalyzerConfig(attributes=False)), {}
    for name, expected in PHOTOS.items():
        try:
            path = assets.resolve(name, download=False)
        except assets.AssetError:
            continue
        p, bs = _features(an.analyze_image(Image.open(path))[0])
        lc = torch.log(torch.tensor(p[None]).clamp_min(1e-8))
        fused = (a * lc + b * log_g(g, bs[None])).argmax(1).item()
        out[name] = {"expected": expected, "cnn": FER_LABELS[int(p.argmax())], "cnn+blendshapes": FER_LABELS[fused]}
    return out


if __name__ == "__main__":
    sys.exit(main())
