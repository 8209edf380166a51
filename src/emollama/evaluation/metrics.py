"""Classification metrics for FER benchmarks: pure numpy functions on integer label arrays (DATASETS.md §0.1).

Conventions, used everywhere in `emollama`:
- A prediction of ``NO_PREDICTION`` (-1: unparseable, empty, ambiguous, out of vocabulary) is always **wrong**. It
  counts in N, never matches, and is tallied in an extra "none" column of the confusion matrix.
- **UAR** = mean recall over the classes *present in the ground truth*. A class with no true samples has no recall
  (0/0) and is left out of the mean, as sklearn's ``balanced_accuracy_score`` does; reports list such classes.
- **Macro-F1** = mean F1 over the classes present in the ground truth *or* predicted (a class predicted but never
  true has F1 = 0 and does count), i.e. sklearn's ``f1_score(average="macro", zero_division=0)`` on those labels.
- **Fold mean** (DFEW/MAFW headline): each metric computed per fold, then averaged. **Pooled**: one computation on
  all folds' predictions together. They differ; reports label which is which.
Everything is computed from confusion matrices, so point estimates and bootstrap resamples share one code path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

NO_PREDICTION = -1
METRICS = ("war", "uar", "macro_f1")


def _check(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray,
           num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    t, p = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if t.shape != p.shape or t.ndim != 1:
        raise ValueError(f"y_true and y_pred must be 1-D and the same length, got {t.shape} and {p.shape}")
    if t.size and (t.min() < 0 or t.max() >= num_classes):
        raise ValueError(f"y_true holds ids outside 0..{num_classes - 1}: min {t.min()}, max {t.max()}")
    if p.size and (p.min() < NO_PREDICTION or p.max() >= num_classes):
        raise ValueError(f"y_pred holds ids outside -1..{num_classes - 1}: min {p.min()}, max {p.max()}")
    return t, p


def _codes(t: np.ndarray, p: np.ndarray, k: int) -> np.ndarray:
    # cell index in a (K, K+1) matrix; -1 goes to the last ("none") column
    return t * (k + 1) + np.where(p < 0, k, p)


def confusion_matrix(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, num_classes: int,
                     *, include_none: bool = False) -> np.ndarray:
    """Counts, rows = true class, columns = predicted class.

    Returns:
        (K, K) int64, or (K, K+1) with ``include_none``: the last column counts NO_PREDICTION.
    """
    t, p = _check(y_true, y_pred, num_classes)
    k = num_classes
    cm = np.bincount(_codes(t, p, k), minlength=k * (k + 1)).reshape(k, k + 1)
    return cm if include_none else cm[:, :k]


def metrics_from_confusion(cm: np.ndarray) -> dict[str, np.ndarray]:
    """WAR, UAR, macro-F1 and per-class recall from confusion matrices (..., K, K+1); batched over leading dims.

    Undefined values (empty input, UAR with no classes) are NaN; per-class recall is NaN for absent classes.
    """
    cm = np.asarray(cm, dtype=np.float64)
    k = cm.shape[-2]
    diag = np.diagonal(cm[..., :k], axis1=-2, axis2=-1)  # (..., K)
    support = cm.sum(-1)  # true samples per class, none-column included
    predicted = cm[..., :k].sum(-2)
    n = support.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, diag / support, np.nan)
        present = support > 0
        uar = np.where(present.any(-1), np.nansum(recall, -1) / present.sum(-1), np.nan)
        f1_defined = (support + predicted) > 0
        f1 = np.where(f1_defined, 2 * diag / (support + predicted), 0.0)
        macro_f1 = np.where(f1_defined.any(-1), f1.sum(-1) / f1_defined.sum(-1), np.nan)
        war = np.where(n > 0, diag.sum(-1) / n, np.nan)
    return {"war": war, "uar": uar, "macro_f1": macro_f1, "per_class_recall": recall}


def war(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, num_classes: int) -> float:
    """Weighted average recall = accuracy = correct / N (NO_PREDICTION counts as wrong)."""
    return float(metrics_from_confusion(confusion_matrix(y_true, y_pred, num_classes, include_none=True))["war"])


def uar(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, num_classes: int) -> float:
    """Unweighted average recall over classes present in ``y_true`` (balanced accuracy)."""
    return float(metrics_from_confusion(confusion_matrix(y_true, y_pred, num_classes, include_none=True))["uar"])


def macro_f1(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, num_classes: int) -> float:
    """Mean F1 over classes that are true or predicted at least once."""
    cm = confusion_matrix(y_true, y_pred, num_classes, include_none=True)
    return float(metrics_from_confusion(cm)["macro_f1"])


def per_class_recall(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray,
                     num_classes: int) -> np.ndarray:
    """(K,) float64 recall per class; NaN for classes absent from ``y_true``."""
    cm = confusion_matrix(y_true, y_pred, num_classes, include_none=True)
    return metrics_from_confusion(cm)["per_class_recall"]


def compute_metrics(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray,
                    num_classes: int) -> dict[str, Any]:
    """All point metrics as plain Python values: n, n_no_prediction, war, uar, macro_f1, per_class_recall (NaN for
    absent classes), classes_absent (indices with no true sample)."""
    t, p = _check(y_true, y_pred, num_classes)
    m = metrics_from_confusion(confusion_matrix(t, p, num_classes, include_none=True))
    recall = m["per_class_recall"]
    return {
        "n": int(t.size), "n_no_prediction": int((p == NO_PREDICTION).sum()),
        "war": float(m["war"]), "uar": float(m["uar"]), "macro_f1": float(m["macro_f1"]),
        "per_class_recall": [float(r) for r in recall],
        "classes_absent": [int(i) for i in np.flatnonzero(np.isnan(recall))],
    }


def _fold_ids(folds: Sequence[Any] | np.ndarray, n: int, what: str = "folds") -> tuple[list[str], np.ndarray]:
    """(ordered distinct values as str, (N,) int index into them); numeric values sort numerically ("2" < "10")."""
    f = np.asarray([str(x) for x in folds])
    if f.shape != (n,):
        raise ValueError(f"{what} has shape {f.shape}, expected ({n},)")
    names = sorted(set(f.tolist()), key=lambda v: (0, int(v), v) if v.lstrip("-").isdigit() else (1, 0, v))
    lookup = {v: i for i, v in enumerate(names)}
    return names, np.array([lookup[v] for v in f.tolist()], dtype=np.int64)


def _boot_metrics(t: np.ndarray, p: np.ndarray, k: int, n_boot: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """(n_boot,) WAR/UAR/macro-F1 over resamples with replacement, chunked to bound memory at ~32 MB."""
    codes, n, cells = _codes(t, p, k), t.size, k * (k + 1)
    chunk = max(1, min(n_boot, 4_000_000 // max(n, 1)))
    out: dict[str, list[np.ndarray]] = {m: [] for m in METRICS}
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(b, n))  # (b, N)
        flat = codes[idx] + (np.arange(b) * cells)[:, None]
        cm = np.bincount(flat.ravel(), minlength=b * cells).reshape(b, k, k + 1)
        m = metrics_from_confusion(cm)
        for name in METRICS:
            out[name].append(m[name])
    return {name: np.concatenate(v) for name, v in out.items()}


def bootstrap_ci(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray, num_classes: int, *,
                 folds: Sequence[Any] | np.ndarray | None = None, n_boot: int = 1000, seed: int = 0,
                 confidence: float = 0.95) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap CIs for WAR, UAR and macro-F1; deterministic for a given ``seed``.

    With ``folds``, samples are resampled within each fold and the per-fold metrics averaged, so the interval is
    for the fold mean (the headline number), not for the pooled metric.
    """
    t, p = _check(y_true, y_pred, num_classes)
    if t.size == 0 or n_boot < 1:
        return {m: (float("nan"), float("nan")) for m in METRICS}
    rng = np.random.default_rng(seed)
    names, f = (["all"], np.zeros(t.size, dtype=np.int64)) if folds is None else _fold_ids(folds, t.size)
    per_fold = [_boot_metrics(t[f == g], p[f == g], num_classes, n_boot, rng) for g in range(len(names))]
    alpha = (1 - confidence) / 2
    out = {}
    for name in METRICS:
        vals = np.mean([b[name] for b in per_fold], axis=0)  # (n_boot,) fold mean per resample
        lo, hi = np.nanquantile(vals, [alpha, 1 - alpha]) if np.isfinite(vals).any() else (np.nan, np.nan)
        out[name] = (float(lo), float(hi))
    return out


def fold_metrics(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray,
                 folds: Sequence[Any] | np.ndarray, num_classes: int) -> dict[str, Any]:
    """Per-fold metrics, their mean (``fold_mean``, the DFEW/MAFW convention) and the ``pooled`` metrics.

    Returns:
        {"per_fold": {fold (str): compute_metrics(...)}, "fold_mean": {war, uar, macro_f1, per_class_recall},
         "pooled": compute_metrics(...)}; folds in natural order ("2" before "10").
    """
    t, p = _check(y_true, y_pred, num_classes)
    names, f = _fold_ids(folds, t.size)
    per_fold = {name: compute_metrics(t[f == g], p[f == g], num_classes) for g, name in enumerate(names)}
    mean: dict[str, Any] = {m: float(np.mean([r[m] for r in per_fold.values()])) for m in METRICS}
    recalls = np.array([r["per_class_recall"] for r in per_fold.values()], dtype=np.float64)
    with np.errstate(invalid="ignore"):
        # a class absent from one fold is averaged over the folds where it is present
        counts = np.isfinite(recalls).sum(0)
        mean["per_class_recall"] = [float(x) for x in np.where(counts > 0, np.nansum(recalls, 0) / counts, np.nan)]
    return {"per_fold": per_fold, "fold_mean": mean, "pooled": compute_metrics(t, p, num_classes)}


def group_breakdown(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray,
                    groups: Sequence[Any] | np.ndarray, num_classes: int) -> dict[str, dict[str, Any]]:
    """Metrics per group value (e.g. RAF-DB gender/race/age-group annotations or predicted AGR).

    Returns:
        {group value (str): compute_metrics(...) restricted to that group}, in natural order.
    """
    t, p = _check(y_true, y_pred, num_classes)
    names, g = _fold_ids(groups, t.size, "groups")
    return {name: compute_metrics(t[g == i], p[g == i], num_classes) for i, name in enumerate(names)}
