"""`emollama eval` engine: benchmark samples -> category prompts -> backend predictions -> ``Report``s.

* Prompts come from the training-time category builder (`emollama.instruct.category`): same templates, same
  per-sample seeded choices; template ids and the seed are recorded in every report.
* Every prediction is appended to ``predictions.jsonl`` (one fsynced line per sample and mode) before the next batch
  starts. A rerun after kill -9 skips what is logged, and reports are always built from the log in the loader's
  sample order, so a resumed run's report equals a clean run's (timing fields aside).
* ``both`` = score and generate on the same prompts, plus their agreement.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emollama import __version__
from emollama.data.benchmarks.base import DatasetInfo, Sample
from emollama.evaluation.backends import Backend, EvalItem
from emollama.evaluation.predlog import PredictionLog
from emollama.evaluation.report import Report, SampleRecord, build_report
from emollama.faces.contract import AnswerParser, load_vocabulary
from emollama.instruct import category

logger = logging.getLogger(__name__)
DELAY_ENV = "EMOLLAMA_EVAL_DELAY_MS"  # test hook: sleep after each batch so a test can kill -9 mid-run
MODE_CHOICES = ("score", "generate", "both")


@dataclass
class EvalResult:
    """``reports`` per mode ("score" / "generate"), ``agreement`` (mode both) and where the log lives."""

    reports: dict[str, Report]
    agreement: dict[str, Any] | None = None
    log_path: Path | None = None
    timing: dict[str, Any] = field(default_factory=dict)

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write <mode>.json/.md/.csv/.png per mode (+ agreement.json); returns every path written."""
        out = Path(out_dir)
        paths: dict[str, Path] = {}
        for mode, rep in self.reports.items():
            paths.update({f"{mode}.{k}": v for k, v in rep.save(out, stem=mode).items()})
        if self.agreement is not None:
            paths["agreement"] = out / "agreement.json"
            paths["agreement"].write_text(json.dumps(self.agreement, indent=1) + "\n", encoding="utf-8")
        return paths


def build_items(groups: Sequence[tuple[str | None, Sequence[Sample]]], info: DatasetInfo,
                template_ids: Sequence[str] = ("ferid",), vocabulary: str = "canonical",
                seed: int = 0) -> list[EvalItem]:
    """One ``EvalItem`` per sample; ``groups`` = [(fold name or None, samples)]. Options keep official order."""
    items: list[EvalItem] = []
    for fold, samples in groups:
        records = category.generate(samples, info, template_ids, seed, vocabularies=(vocabulary,))
        for s, rec in zip(samples, records, strict=True):
            key = f"{fold}/{s.id}" if fold is not None else s.id
            items.append(EvalItem(key, s, fold, rec.conversations[0].value, tuple(rec.options), rec.template_id,
                                  seed))
    return items


def fingerprint(fields: dict[str, Any]) -> str:
    """Short sha256 of everything that changes predictions; a log with another fingerprint is refused."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:16]


def prompt_hash(item: EvalItem) -> str:
    """Short hash of the exact question and options a logged prediction answered."""
    return hashlib.sha256("\x1f".join([item.question, *item.options]).encode()).hexdigest()[:12]


def truth_agr(sample: Sample) -> dict[str, str]:
    """{"age", "gender", "race"} from the dataset's own annotations (RAF-DB), else {}."""
    a = sample.agr
    if a is None:
        return {}
    return {k: v for k, v in (("age", a.age_group), ("gender", a.gender), ("race", a.race)) if v is not None}


def _records(items: Sequence[EvalItem], log: PredictionLog, mode: str, parser: AnswerParser) -> list[SampleRecord]:
    out = []
    for it in items:
        row = log.get(it.key, mode)
        groups = {**truth_agr(it.sample), **row.get("groups", {})}
        if row.get("status", "ok") != "ok":  # e.g. an API call that failed after every retry: counted, wrong
            rec = SampleRecord(it.sample.id, it.sample.label_index, row.get("answer", ""), -1, row["status"],
                               None, it.fold, groups)
        elif mode == "score":
            rec = SampleRecord(it.sample.id, it.sample.label_index, row["answer"], row["pred"], "ok", row["answer"],
                               it.fold, groups)
        else:
            res = parser(row["answer"])
            rec = SampleRecord(it.sample.id, it.sample.label_index, row["answer"],
                               -1 if res.index is None else res.index, res.status, res.matched, it.fold, groups)
        out.append(rec)
    return out


def agreement(score: Sequence[SampleRecord], generate: Sequence[SampleRecord]) -> dict[str, Any]:
    """How often generate + parse names the class score mode ranks first (over all samples and over parsed ones)."""
    same = sum(s.pred == g.pred for s, g in zip(score, generate, strict=True) if g.pred >= 0)
    parsed = sum(g.pred >= 0 for g in generate)
    n = len(score)
    return {"n": n, "generate_parsed": parsed, "agree": same, "agreement_all": same / n if n else None,
            "agreement_parsed": same / parsed if parsed else None,
            "note": "agreement_all counts unparseable generate answers as disagreement"}


def evaluate(backend: Backend, items: Sequence[EvalItem], *, info: DatasetInfo, mode: str = "score",
             policy: str = "strict", out_dir: str | Path | None = None, batch_size: int = 4,
             run: dict[str, Any] | None = None, progress: bool = True, n_boot: int = 1000,
             boot_seed: int = 0, retry_failed: bool = False) -> EvalResult:
    """Run ``backend`` on ``items`` and build one report per mode.

    Args:
        mode: score | generate | both.
        out_dir: where ``predictions.jsonl`` (the resumable log) goes; None keeps it in a temp directory.
        run: provenance that also fingerprints the log (dataset, split, folds, prompt template/seed, ...).
        retry_failed: run again the samples whose logged status is not ok (API calls that gave up).
    Returns:
        EvalResult with reports {"score": Report, "generate": Report} (those requested) and, for both, agreement.
    """
    if mode not in MODE_CHOICES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {MODE_CHOICES}")
    modes = ("score", "generate") if mode == "both" else (mode,)
    bad = [m for m in modes if m not in backend.modes]
    if bad:
        raise ValueError(f"this backend cannot run mode {bad[0]!r} (supports {list(backend.modes)})")
    if not items:
        raise ValueError("nothing to evaluate: the item list is empty")
    if len({it.key for it in items}) != len(items):
        raise ValueError("duplicate sample keys in the evaluation set")
    run = {"dataset": info.name, "prompt_template": sorted({it.template_id for it in items}),
           "prompt_seed": sorted({it.seed for it in items}) if len({it.seed for it in items}) > 1 else items[0].seed,
           **(run or {})}
    fp = fingerprint({"backend": backend.describe(), **run})
    if out_dir is None:
        import tempfile

        out_dir = tempfile.mkdtemp(prefix="emollama-eval-")
    log_path = Path(out_dir) / "predictions.jsonl"
    delay = float(os.environ.get(DELAY_ENV, "0") or 0) / 1000
    timing: dict[str, Any] = {m: {"seconds": 0.0, "samples": 0} for m in modes}
    drop = (lambda row: row.get("status", "ok") != "ok") if retry_failed else None
    with PredictionLog(log_path, fp, drop=drop) as log:
        stale = [it.key for it in items for m in modes
                 if log.has(it.key, m) and log.get(it.key, m).get("prompt") != prompt_hash(it)]
        if stale:
            raise ValueError(f"{log_path}: logged predictions for {stale[:3]} answered a different question "
                             "(template, vocabulary or seed changed); use another --out or --overwrite")
        pending = [it for it in items if any(not log.has(it.key, m) for m in modes)]
        timing["resumed_from_log"] = len(items) - len(pending)
        from tqdm.auto import tqdm

        bar = tqdm(total=len(pending), desc=f"eval {info.name} ({mode})", unit="sample", disable=not progress)
        for start in range(0, len(pending), max(1, batch_size)):
            chunk = pending[start:start + batch_size]
            for m in modes:
                todo = [it for it in chunk if not log.has(it.key, m)]
                if not todo:
                    continue
                t0, c0 = time.perf_counter(), time.process_time()
                rows = backend.predict(todo, [m])
                dt = time.perf_counter() - t0
                timing[m]["seconds"] += dt
                timing[m]["cpu_seconds"] = timing[m].get("cpu_seconds", 0.0) + time.process_time() - c0
                timing[m]["samples"] += len(todo)
                for it, row in zip(todo, rows, strict=True):
                    log.append(it.key, m, {**row[m], "prompt": prompt_hash(it), "seconds": dt / len(todo)})
            bar.update(len(chunk))
            if delay:
                time.sleep(delay)
        bar.close()
        for m in modes:
            t = timing[m]
            t["seconds_per_sample"] = t["seconds"] / t["samples"] if t["samples"] else None
        stats = getattr(getattr(backend, "priors", None), "stats", None)
        if stats:  # cache hits / cold extractions and their milliseconds, this run only
            timing["priors"] = dict(stats)
        media = getattr(backend, "media", None)
        if getattr(media, "stats", None):  # frames read from the cache / decoded, and their milliseconds
            timing["media"] = {**media.describe(), **media.stats}
        parser = AnswerParser(info.classes if not info.canonical else info.canonical, policy)
        records = {m: _records(items, log, m, parser) for m in modes}
    agree = agreement(records["score"], records["generate"]) if mode == "both" else None
    vocab = load_vocabulary()
    reports = {}
    for m in modes:
        prov = {"source": f"emollama eval ({m})", "mode": m, **backend.describe(), **run, "log_fingerprint": fp,
                "prompt_generator": category.GENERATOR, "emollama_version": __version__,
                "synonyms_version": vocab["version"], "synonyms_sha256": vocab["sha256"],
                "agreement": agree, "timing": timing}
        classes = list(info.canonical or info.classes)
        reports[m] = build_report(dataset=info.name, classes=classes, policy="n/a (score mode)" if m == "score"
                                  else policy, records=records[m], provenance=prov, n_boot=n_boot, seed=boot_seed)
    return EvalResult(reports, agree, log_path, timing)
