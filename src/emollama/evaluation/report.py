"""Evaluation ``Report``: every sample's record plus the metrics, serialised to JSON, Markdown, CSV and a PNG.

``build_report`` is the single place where records become numbers (metrics.py) and where the headline convention
(fold mean vs single split) is decided and written down. ``compare`` renders several reports side by side.
Deliberately not here: running a model (the eval runner) or parsing answers (`emollama.faces.labels`).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emollama.evaluation import metrics as M
from emollama.evaluation import render

FORMAT_VERSION = "emollama-report/1"


@dataclass
class SampleRecord:
    """One scored sample. ``pred`` is -1 (metrics.NO_PREDICTION) unless ``status == "ok"``."""

    id: str
    truth: int
    answer: str
    pred: int
    status: str
    matched: str | None = None
    fold: str | None = None
    groups: dict[str, str] = field(default_factory=dict)


@dataclass
class Report:
    """Full, self-describing record of one evaluation; ``metrics`` holds the headline numbers.

    ``metrics[name] = {"value": float, "ci": [lo, hi]}`` for WAR/UAR/macro-F1, plus ``per_class_recall`` and
    ``convention`` (which number is the headline). NaN is stored as None so the JSON stays standard.
    """

    dataset: str
    classes: list[str]
    policy: str
    records: list[SampleRecord]
    metrics: dict[str, Any]
    pooled: dict[str, Any] | None = None
    folds: dict[str, Any] | None = None
    breakdowns: dict[str, dict[str, Any]] = field(default_factory=dict)
    confusion: list[list[int]] = field(default_factory=list)
    provenance: dict[str, Any] = field(default_factory=dict)
    format_version: str = FORMAT_VERSION

    @property
    def unparseable(self) -> list[SampleRecord]:
        """Records without a prediction (any status other than "ok"); all are scored as wrong."""
        return [r for r in self.records if r.pred == M.NO_PREDICTION]

    def status_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(r.status for r in self.records).items()))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["unparseable"] = {"count": len(self.unparseable), "ids": [r.id for r in self.unparseable],
                            "by_status": self.status_counts()}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Report:
        if d.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"report format {d.get('format_version')!r} is not {FORMAT_VERSION!r}")
        d = {k: v for k, v in d.items() if k != "unparseable"}  # derived from records
        return cls(**{**d, "records": [SampleRecord(**r) for r in d["records"]]})

    def save_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False, allow_nan=False) + "\n",
                        encoding="utf-8")
        return path

    @classmethod
    def load_json(cls, path: str | Path) -> Report:
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except (KeyError, TypeError, json.JSONDecodeError) as err:
            raise ValueError(f"{path}: not an emollama report JSON ({err})") from None

    def save(self, out_dir: str | Path, stem: str = "report") -> dict[str, Path]:
        """Write ``stem``.json/.md/.csv/.png into ``out_dir``; returns the paths (no PNG without matplotlib)."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        paths = {"json": self.save_json(out / f"{stem}.json")}
        paths["md"] = out / f"{stem}.md"
        paths["md"].write_text(render.to_markdown(self), encoding="utf-8")
        paths["csv"] = render.write_csv(self, out / f"{stem}.csv")
        png = render.write_png(self, out / f"{stem}.png")
        if png is not None:
            paths["png"] = png
        return paths


def _clean(x: Any) -> Any:
    """NaN -> None, numpy scalars -> Python, recursively (JSON has no NaN)."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return None if math.isnan(x) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    return x


def _convention(folds: list[str]) -> str:
    if len(folds) > 1:
        return f"fold_mean over {len(folds)} folds ({', '.join(folds)}); pooled metrics reported separately"
    return f"fold {folds[0]} only" if folds else "single split"


def build_report(*, dataset: str, classes: Sequence[str], policy: str, records: Sequence[SampleRecord],
                 provenance: dict[str, Any] | None = None, n_boot: int = 1000, seed: int = 0,
                 confidence: float = 0.95) -> Report:
    """Compute every metric for ``records`` and wrap them in a ``Report``.

    With more than one distinct ``fold`` the headline is the fold mean (DATASETS.md §0.1) and ``pooled`` holds the
    pooled metrics; bootstrap CIs (``n_boot`` resamples, ``seed``) then resample within folds.
    """
    k = len(classes)
    inconsistent = [r.id for r in records if r.status == "ok" and r.pred == M.NO_PREDICTION]
    if inconsistent:
        raise ValueError(f"samples {inconsistent[:5]} have status 'ok' but no prediction (pred -1)")
    t = np.array([r.truth for r in records], dtype=np.int64)
    p = np.array([r.pred for r in records], dtype=np.int64)
    fold_vals = [r.fold for r in records]
    has_folds = any(f is not None for f in fold_vals)
    if has_folds and None in fold_vals:
        missing = next(r.id for r in records if r.fold is None)
        raise ValueError(f"sample {missing!r} has no fold while others do; give every sample a fold or none")
    folds = fm = None
    fold_names: list[str] = []
    if has_folds:
        fm = M.fold_metrics(t, p, fold_vals, k)
        fold_names = list(fm["per_fold"])
    multi = len(fold_names) > 1
    point = fm["fold_mean"] if multi else M.compute_metrics(t, p, k)
    cis = M.bootstrap_ci(t, p, k, folds=fold_vals if multi else None, n_boot=n_boot, seed=seed,
                         confidence=confidence)
    headline: dict[str, Any] = {m: {"value": point[m], "ci": list(cis[m])} for m in M.METRICS}
    headline["per_class_recall"] = point["per_class_recall"]
    headline["convention"] = _convention(fold_names)
    if multi:
        folds = fm["per_fold"]
    group_keys = sorted({g for r in records for g in r.groups})
    breakdowns = {g: M.group_breakdown(t, p, [r.groups.get(g, "unknown") for r in records], k) for g in group_keys}
    prov = {"n_boot": n_boot, "bootstrap_seed": seed, "confidence": confidence, **(provenance or {})}
    return Report(
        dataset=dataset, classes=list(classes), policy=policy, records=list(records), metrics=_clean(headline),
        pooled=_clean(fm["pooled"]) if multi else None, folds=_clean(folds), breakdowns=_clean(breakdowns),
        confusion=M.confusion_matrix(t, p, k, include_none=True).tolist(), provenance=_clean(prov),
    )


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.2f}"


def compare(reports: Sequence[Report], names: Sequence[str] | None = None) -> str:
    """Markdown table of several reports side by side (headline metrics, unparseable, per-class recall).

    Mismatched datasets, class lists or sample sets are flagged under the table, since such runs are not comparable.
    """
    if not reports:
        raise ValueError("compare() needs at least one report")
    names = list(names or [r.provenance.get("source") or f"run {i + 1}" for i, r in enumerate(reports)])
    rows = [["dataset", *[r.dataset for r in reports]], ["policy", *[r.policy for r in reports]],
            ["N", *[str(len(r.records)) for r in reports]]]
    for m, label in (("war", "WAR"), ("uar", "UAR"), ("macro_f1", "macro-F1")):
        rows.append([f"{label} (95% CI)", *[f"{_fmt(r.metrics[m]['value'])} "
                                             f"[{_fmt(r.metrics[m]['ci'][0])}, {_fmt(r.metrics[m]['ci'][1])}]"
                                             for r in reports]])
    rows.append(["unparseable", *[f"{len(r.unparseable)} ({100 * len(r.unparseable) / max(len(r.records), 1):.1f}%)"
                                  for r in reports]])
    rows.append(["headline", *[r.metrics["convention"] for r in reports]])
    for cls in dict.fromkeys(c for r in reports for c in r.classes):
        rows.append([f"recall: {cls}", *[_fmt(r.metrics["per_class_recall"][r.classes.index(cls)])
                                          if cls in r.classes else "-" for r in reports]])
    lines = ["| | " + " | ".join(names) + " |", "|---" * (len(reports) + 1) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    notes = []
    if len({(r.dataset, tuple(r.classes)) for r in reports}) > 1:
        notes.append("datasets or class lists differ: these numbers are not comparable")
    if len({frozenset(rec.id for rec in r.records) for r in reports}) > 1:
        notes.append("the runs cover different sample sets: compare on the same samples")
    lines += [""] + [f"**Warning:** {n}." for n in notes] if notes else []
    return "\n".join(lines) + "\n"
