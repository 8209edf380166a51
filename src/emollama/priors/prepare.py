"""`prepare`: run a face-prior extractor once over dataset samples and fill a `PriorCache`, resumably.

Keys are computed first (content hashes, memoised); cached keys are skipped; the rest go to worker processes that
each build their own extractor. Results come back in submission order and only this (parent) process writes, so
the shard layout does not depend on the worker count. Progress bars belong to the CLI (``progress`` callback).
"""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os
import sys
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from emollama.media.sampling import DEFAULT_POLICY, parse_policy
from emollama.priors.cache import EntryInfo, PriorCache
from emollama.priors.extract import CropPriorExtractor, Extraction
from emollama.priors.keys import ExtractorSpec, make_key

if TYPE_CHECKING:
    from emollama.priors.source import MediaRef

logger = logging.getLogger(__name__)

UNAVAILABLE = "extractor unavailable"


@dataclass
class PrepareReport:
    """Counts of one `prepare` run. ``computed`` includes ``no_face`` (a no-face entry is a valid result)."""

    total: int = 0
    computed: int = 0
    no_face: int = 0
    cached: int = 0
    failed: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    workers: int = 1
    manifest: str | None = None
    keys: dict[str, str | None] = field(default_factory=dict)  # sample id -> prior key (None: failed)
    extract_s: dict[str, list[float]] = field(default_factory=lambda: {"image": [], "video": []})  # per sample

    @property
    def samples_per_s(self) -> float:
        """Newly computed samples per wall-clock second (0 when nothing was computed)."""
        return self.computed / self.seconds if self.computed and self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {"total": self.total, "computed": self.computed, "no_face": self.no_face, "cached": self.cached,
                "failed": dict(self.failed), "n_failed": sum(self.failed.values()), "seconds": round(self.seconds, 3),
                "samples_per_s": round(self.samples_per_s, 3), "workers": self.workers, "manifest": self.manifest,
                "mean_extract_s": {k: round(sum(v) / len(v), 4) for k, v in self.extract_s.items() if v}}

    def lines(self) -> list[str]:
        out = [f"samples {self.total}: computed {self.computed} (no face {self.no_face}), cached already "
               f"{self.cached}, failed {sum(self.failed.values())}",
               f"{self.seconds:.1f} s, {self.samples_per_s:.2f} samples/s computed ({self.workers} worker(s))"]
        out += [f"  failed: {reason}: {n}" for reason, n in self.failed.most_common()]
        return out


_WORKER: CropPriorExtractor | None = None
_WORKER_ERROR: str | None = None


def _init_worker(spec: ExtractorSpec) -> None:
    global _WORKER, _WORKER_ERROR
    import torch

    torch.set_num_threads(1)  # N workers on N cores: no oversubscription
    try:
        _WORKER = CropPriorExtractor(spec)
    except (ImportError, OSError, KeyError, ValueError, TypeError) as err:  # reported once by the parent
        _WORKER_ERROR = f"{type(err).__name__}: {err}"


def _work(task: tuple[str, bool, str]) -> Extraction:
    if _WORKER is None:
        return Extraction(error=(UNAVAILABLE, _WORKER_ERROR or "not initialised"))
    return _WORKER(*task)


def default_start_method() -> str:
    """'fork' (workers start in ~0.1 s instead of re-importing torch) unless this process already loaded
    MediaPipe, whose threads do not survive a fork; then 'spawn'."""
    if "fork" in mp.get_all_start_methods() and "mediapipe" not in sys.modules:
        return "fork"
    return "spawn"


def run_tasks(tasks: Sequence[tuple[str, bool, str]], spec: ExtractorSpec, workers: int = 1,
              start_method: str | None = None) -> Iterator[tuple[int, Extraction]]:
    """Yield (task index, `Extraction`) in task order (bar a worker crash); ``workers`` > 1: that many processes."""
    if not tasks:
        return
    workers = min(workers, len(tasks))
    if workers <= 1:
        ext = CropPriorExtractor(spec)
        for i, t in enumerate(tasks):
            yield i, ext(*t)
        return
    # after a worker dies, its in-flight tasks are re-run one at a time: a second death names the culprit exactly
    pending, suspects = deque(range(len(tasks))), deque()
    while pending or suspects:
        ctx = mp.get_context(start_method or default_start_method())
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(spec,)) as ex:
            window: deque = deque()  # (task index, future, is_suspect), in submission order
            try:
                while pending or suspects or window:
                    limit = 1 if suspects or (window and window[0][2]) else 2 * workers + 2  # results hold crops
                    while len(window) < limit and (suspects or pending):
                        is_suspect = bool(suspects)
                        i = (suspects or pending).popleft()
                        window.append((i, ex.submit(_work, tasks[i]), is_suspect))
                        limit = 1 if is_suspect else limit
                    i, fut, _ = window[0]
                    res = fut.result()
                    window.popleft()
                    yield i, res
            except BrokenProcessPool:
                lost = []
                for i, fut, is_suspect in window:
                    if fut.done() and fut.exception() is None:
                        yield i, fut.result()
                    elif is_suspect:
                        yield i, Extraction(error=("worker crashed", "the worker process died on this sample"))
                    else:
                        lost.append(i)
                logger.warning("a worker process died; re-running %d in-flight sample(s) one by one", len(lost))
                suspects.extend(lost)


def prepare(samples: Sequence[MediaRef], cache: PriorCache, spec: ExtractorSpec, policy: str = DEFAULT_POLICY, *,
            workers: int = 1, progress: Callable[[int], None] | None = None,
            start_method: str | None = None) -> PrepareReport:
    """Fill ``cache`` with priors + crops for every benchmark `Sample` not cached yet.

    Returns:
        `PrepareReport`; ``report.keys`` maps sample id -> prior key (None where the sample failed).
    """
    if parse_policy(policy)[0] == "peak":
        raise ValueError(f"prepare does not support {policy!r}: peak frames depend on the priors themselves; "
                         "use uniform:N, fps:F or all")
    from emollama.priors.from_faces import PRIOR_EXTRACTORS

    PRIOR_EXTRACTORS.get(spec.name)  # an unknown name fails now, not after hashing the whole dataset
    t0 = time.perf_counter()
    rep = PrepareReport(total=len(samples), workers=max(1, workers))
    tick = progress or (lambda n: None)
    todo: dict[str, object] = {}  # key -> first sample with it
    hashes: dict[str, str] = {}
    for s in samples:
        try:
            sha = cache.content_hash(s.media)
            key = make_key(s.media_rel, sha, spec, policy if s.is_video else "")  # == cache.key_for(s, spec, policy)
            hashes[key] = sha
        except OSError as err:  # unreadable media: counted, never aborts
            rep.keys[s.id] = None
            rep.failed["unreadable media"] += 1
            cache.record_failure(f"media:{s.media_rel}", s.media_rel, "unreadable media", str(err))
            tick(1)
            continue
        rep.keys[s.id] = key
        if key in todo or cache.has(key):
            rep.cached += 1
            tick(1)
        else:
            todo[key] = s
    cache.flush()  # persist the hash memo before the long part
    keys = list(todo)
    tasks = [(str(todo[k].media), bool(todo[k].is_video), policy) for k in keys]
    fp = spec.fingerprint()
    for i, res in run_tasks(tasks, spec, workers, start_method):
        key, s = keys[i], todo[keys[i]]
        rep.extract_s["video" if s.is_video else "image"].append(res.seconds)
        if res.error is not None:
            reason, detail = res.error
            if reason == UNAVAILABLE:
                raise ImportError(f"face-prior extractor {spec.name!r} cannot be built: {detail}")
            rep.failed[reason] += 1
            cache.record_failure(key, s.media_rel, reason, detail)
            logger.info("%s failed: %s %s", s.media_rel, reason, detail)
        else:
            info = EntryInfo(key, "", "", 0, s.media_rel, hashes[key], spec.name, fp, policy if s.is_video else "")
            cache.put(info, res.prior, res.crops, res.has_crop)
            rep.computed += 1
            rep.no_face += not bool(res.prior.valid.any())
        tick(1)
    cache.flush()
    failed_keys = set(cache.failures())
    rep.keys = {sid: (k if k is not None and k not in failed_keys else None) for sid, k in rep.keys.items()}
    rep.seconds = time.perf_counter() - t0
    return rep


def write_manifest(path: str | os.PathLike, samples: Sequence, keys: dict[str, str | None],
                   cache: PriorCache | None = None) -> int:
    """JSONL, one line per sample: id, media, split, fold, prior_key (null if failed), status. Atomic write."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    reasons = {media: reason for media, reason, _ in (cache.failures().values() if cache is not None else ())}
    lines = []
    for s in samples:
        key = keys.get(s.id)
        status = cache.info(key).status if key and cache is not None else ("ok" if key else "failed")
        row = {"id": s.id, "media": s.media_rel, "split": s.split, "fold": s.fold, "prior_key": key, "status": status}
        if key is None:
            row["reason"] = reasons.get(s.media_rel)
        lines.append(json.dumps(row, ensure_ascii=False) + "\n")
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(lines)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return len(lines)


def read_manifest(path: str | os.PathLike) -> dict[str, str]:
    """Sample id -> prior key, for samples with a cached entry (what `gen-data` writes as ``prior_key``)."""
    out = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                if row.get("prior_key"):
                    out[row["id"]] = row["prior_key"]
    return out
