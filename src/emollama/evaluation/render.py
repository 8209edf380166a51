"""Renderers for a ``Report``: Markdown summary, per-sample CSV and a confusion-matrix PNG (raw and normalised).

Kept apart from report.py so the data model stays small; matplotlib is imported only inside ``write_png`` and
only through the object-oriented API (no pyplot, no global backend switch). Imports go one way: report.py uses
this module to save, and the renderers read a report through the ``RenderableReport`` protocol below.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

logger = logging.getLogger(__name__)
_MAX_LISTED = 20  # unparseable answers shown in the Markdown; the JSON and CSV always hold all of them


class RenderedRecord(Protocol):
    """The fields of a ``report.SampleRecord`` that the renderers read."""

    id: str
    truth: int
    answer: str
    pred: int
    status: str
    matched: str | None
    fold: str | None
    groups: dict[str, str]


class RenderableReport(Protocol):
    """What the renderers read from a ``report.Report`` (structural, so this module never imports report.py)."""

    dataset: str
    classes: list[str]
    policy: str
    metrics: dict[str, Any]
    pooled: dict[str, Any] | None
    folds: dict[str, Any] | None
    breakdowns: dict[str, dict[str, Any]]
    confusion: list[list[int]]
    provenance: dict[str, Any]

    @property
    def records(self) -> Sequence[RenderedRecord]: ...

    @property
    def unparseable(self) -> Sequence[RenderedRecord]: ...

    def status_counts(self) -> dict[str, int]: ...


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header), *("| " + " | ".join(r) + " |" for r in rows)]


def _short(text: str, n: int = 60) -> str:
    text = " ".join(text.split()).replace("|", "\\|")
    return text if len(text) <= n else text[: n - 1] + "…"


def to_markdown(report: RenderableReport) -> str:
    """Human-readable summary: headline with CIs, unparseable count, folds, per-class recall, confusion, groups."""
    r, n = report, len(report.records)
    prov = r.provenance
    out = [f"# {r.dataset}: {n} samples, {len(r.classes)} classes, parse policy `{r.policy}`", ""]
    out += [f"- {k}: `{prov[k]}`" for k in sorted(prov) if prov[k] is not None]
    level = round(100 * prov.get("confidence", 0.95))
    out += ["", f"Headline: **{r.metrics['convention']}**.", ""]
    rows = []
    for m, label in (("war", "WAR"), ("uar", "UAR"), ("macro_f1", "macro-F1")):
        lo, hi = r.metrics[m]["ci"]
        rows.append([label, _pct(r.metrics[m]["value"]), f"[{_pct(lo)}, {_pct(hi)}]"])
    out += _table(["metric", "value (%)", f"{level}% CI (bootstrap)"], rows)
    bad = r.unparseable
    detail = ", ".join(f"{s} {c}" for s, c in r.status_counts().items() if s != "ok") or "none"
    out += ["", f"Unparseable: **{len(bad)} / {n}** ({100 * len(bad) / max(n, 1):.1f}%), scored as wrong ({detail})."]
    if r.folds:
        rows = [[f, str(m["n"]), _pct(m["war"]), _pct(m["uar"]), _pct(m["macro_f1"]), str(m["n_no_prediction"])]
                for f, m in r.folds.items()]
        rows.append(["**mean (headline)**", str(n), *(_pct(r.metrics[m]["value"]) for m in ("war", "uar", "macro_f1")),
                     str(len(bad))])
        p = r.pooled or {}
        rows.append(["pooled (not the headline)", str(n), _pct(p.get("war")), _pct(p.get("uar")),
                     _pct(p.get("macro_f1")), str(len(bad))])
        out += ["", "## Per fold", ""] + _table(["fold", "N", "WAR", "UAR", "macro-F1", "unparseable"], rows)
    cm = np.array(r.confusion, dtype=np.int64).reshape(len(r.classes), len(r.classes) + 1)
    support = cm.sum(1)
    recall = r.metrics["per_class_recall"]
    if r.pooled:  # headline recall is the per-fold mean; show the pooled one next to it
        pooled = r.pooled["per_class_recall"]
        out += ["", "## Per-class recall", ""]
        out += _table(["class", "N (all folds)", "recall (%), fold mean", "recall (%), pooled"],
                      [[c, str(support[i]), _pct(recall[i]), _pct(pooled[i])] for i, c in enumerate(r.classes)])
    else:
        out += ["", "## Per-class recall", ""]
        out += _table(["class", "N", "recall (%)"], [[c, str(support[i]), _pct(recall[i])]
                                                     for i, c in enumerate(r.classes)])
    out += ["", "## Confusion matrix (rows: truth, columns: prediction; pooled over folds)", ""]
    out += _table(["truth \\ pred", *r.classes, "none"], [[c, *map(str, cm[i])] for i, c in enumerate(r.classes)])
    for group, table in r.breakdowns.items():
        out += ["", f"## By {group}", ""]
        out += _table([group, "N", "WAR", "UAR", "macro-F1", "unparseable"],
                      [[g, str(m["n"]), _pct(m["war"]), _pct(m["uar"]), _pct(m["macro_f1"]), str(m["n_no_prediction"])]
                       for g, m in table.items()])
    if bad:
        out += ["", f"## Unparseable answers ({min(len(bad), _MAX_LISTED)} of {len(bad)} shown)", ""]
        out += _table(["id", "truth", "status", "answer"], [[s.id, r.classes[s.truth], s.status, _short(s.answer)]
                                                            for s in bad[:_MAX_LISTED]])
    return "\n".join(out) + "\n"


def write_csv(report: RenderableReport, path: str | Path) -> Path:
    """One row per sample: id, fold, truth, prediction (index and name), status, matched words, correct, answer."""
    path = Path(path)
    groups = sorted({g for s in report.records for g in s.groups})
    cols = ["id", "fold", "truth", "truth_label", "pred", "pred_label", "status", "matched", "correct", "answer"]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(cols + groups)
        for s in report.records:
            pred_label = report.classes[s.pred] if s.pred >= 0 else ""
            w.writerow([s.id, s.fold or "", s.truth, report.classes[s.truth], s.pred, pred_label, s.status,
                        s.matched or "", int(s.pred == s.truth), s.answer, *(s.groups.get(g, "") for g in groups)])
    return path


def write_png(report: RenderableReport, path: str | Path) -> Path | None:
    """Raw and row-normalised confusion matrices side by side; None (logged) if matplotlib is missing."""
    k = len(report.classes)
    return confusion_png(np.array(report.confusion, dtype=np.int64).reshape(k, k + 1), report.classes,
                         report.dataset, path)


def confusion_png(cm: np.ndarray, classes: Sequence[str], title: str, path: str | Path) -> Path | None:
    """(K, K) or (K, K+1) confusion counts (rows = truth; column K = unparseable) -> PNG at ``path``."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        logger.warning("matplotlib is not installed: skipping the confusion-matrix PNG (pip install matplotlib)")
        return None
    k = len(classes)
    cols = list(classes)
    if cm.shape[1] == k or cm[:, k].sum() == 0:  # no unparseable answers: drop the empty "none" column
        cm = cm[:, :k]
    else:
        cols.append("none")
    with np.errstate(invalid="ignore"):
        norm = np.nan_to_num(cm / cm.sum(1, keepdims=True))  # rows: recall-style, unparseable included
    fig = Figure(figsize=(2 * (3 + 0.55 * len(cols)), 3 + 0.5 * k), layout="constrained")
    for ax, mat, sub, fmt in zip(fig.subplots(1, 2), (cm, norm), ("counts", "row-normalised"), ("{:d}", "{:.2f}"),
                                 strict=True):
        ax.imshow(mat, cmap="Blues", vmin=0)
        ax.set(title=f"{title}: {sub}", xlabel="prediction", ylabel="truth",
               xticks=range(len(cols)), yticks=range(k))
        ax.set_xticklabels(cols, rotation=45, ha="right", fontsize=8)
        ax.set_yticklabels(classes, fontsize=8)
        top = mat.max() if mat.size else 0
        for (i, j), v in np.ndenumerate(mat):
            ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7,
                    color="white" if top and v > 0.6 * top else "black")
    path = Path(path)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path
