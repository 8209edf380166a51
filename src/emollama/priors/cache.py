"""Sharded on-disk face-prior cache: aligned face crops (uint8) + `FacePrior`s, keyed by what produced them.

Layout under the cache directory (docs/prior_cache.md): ``index.sqlite`` (entries, failures, content-hash memo),
``shards/*.safetensors`` (immutable; written to a temp file, fsynced, then renamed; only then indexed) and
``manifests/*.jsonl``. The SQLite index is the single source of truth: a shard it does not reference is debris of a
killed run and is deleted by the next writer. Extraction itself lives in `emollama.priors.prepare`.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from emollama.faces.contract import FacePrior
from emollama.priors.keys import ExtractorSpec, content_hash, make_key, stat_signature

if TYPE_CHECKING:
    from emollama.priors.source import MediaRef

logger = logging.getLogger(__name__)

FORMAT = "emollama-prior-cache/1"
_ARRAYS = ("landmarks", "blendshapes", "pose", "age_probs", "gender_probs", "race_probs", "embedding", "crop_boxes")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, shard TEXT NOT NULL, status TEXT NOT NULL,
    frames INTEGER NOT NULL, media TEXT, sha256 TEXT, extractor TEXT, fingerprint TEXT, policy TEXT, meta TEXT,
    created REAL);
CREATE TABLE IF NOT EXISTS failures (key TEXT PRIMARY KEY, media TEXT, reason TEXT, detail TEXT, created REAL);
CREATE TABLE IF NOT EXISTS hashes (path TEXT PRIMARY KEY, stat TEXT NOT NULL, sha256 TEXT NOT NULL);
"""
FRAMES_STATUS = "frames"  # index status of tower-frame entries (emollama.priors.frames), never a prior
_LOCKED: set[str] = set()  # caches this process writes (POSIX locks do not exclude a second open in-process)


@dataclass(frozen=True)
class EntryInfo:
    """Provenance of one cached entry (the index row)."""

    key: str
    shard: str
    status: str  # 'ok' (>= 1 frame with a face) | 'no_face' (valid all False: a result, not an error)
    frames: int
    media: str = ""
    sha256: str = ""
    extractor: str = ""
    fingerprint: str = ""
    policy: str = ""


class PriorCache:
    """Read (any number of processes) or write (one process, guarded by a lock file) a face-prior cache.

    Args:
        root: cache directory (created when writable).
        writable: take the writer lock, clean debris of killed runs, allow `put`.
        preprocess: default `emollama.model.towers.Preprocess` for `get` (crops returned as (T, 3, S, S) float).
        shard_mb / flush_seconds: a shard is written when the buffer reaches this size or age.
    """

    def __init__(self, root: str | os.PathLike, *, writable: bool = False, preprocess=None, shard_mb: float = 32.0,
                 flush_seconds: float = 30.0) -> None:
        self.root, self.writable, self.preprocess = Path(root), writable, preprocess
        self.shard_bytes, self.flush_seconds = int(shard_mb * 2**20), flush_seconds
        self._buf: dict[str, tuple[EntryInfo, dict[str, np.ndarray], str]] = {}  # key -> unflushed entry
        self._buf_bytes, self._buf_t0 = 0, time.monotonic()
        self._readers: OrderedDict[str, tuple] = OrderedDict()  # shard -> (safetensors handle, tensor names)
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        if writable:
            (self.root / "shards").mkdir(parents=True, exist_ok=True)
            self._lock_path = str((self.root / ".lock").resolve())
            busy = RuntimeError(f"prior cache {str(self.root)!r} is being written by another process; wait for it "
                                "or use another --out")
            if self._lock_path in _LOCKED:  # checked before opening: closing any fd of the file drops our lock
                raise busy
            self._lock = open(self._lock_path, "w")  # held for the writer's lifetime
            try:
                # POSIX record lock, not flock: forked workers do not inherit it, so it dies with this process
                fcntl.lockf(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                self._lock.close()
                raise busy from None
            _LOCKED.add(self._lock_path)
            try:
                self._check_format(create=True)
                self._recover()
            except BaseException:
                _LOCKED.discard(self._lock_path)
                self._lock.close()
                raise
        elif not (self.root / "index.sqlite").is_file():
            raise FileNotFoundError(f"no prior cache at {str(self.root)!r} (index.sqlite missing); build one with "
                                    "`emollama prepare NAME ROOT --out CACHE`")
        else:
            self._check_format(create=False)

    # -- connection / recovery ---------------------------------------------------------------------------------
    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():  # one connection per process (DataLoader workers fork)
            self._conn = sqlite3.connect(self.root / "index.sqlite", timeout=60)
            self._pid, self._readers = os.getpid(), OrderedDict()
            if self.writable:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.executescript(_SCHEMA)
        return self._conn

    def _check_format(self, create: bool) -> None:
        path = self.root / "format.json"
        if path.exists():
            found = json.loads(path.read_text()).get("format")
            if found != FORMAT:
                raise ValueError(f"{path}: cache format {found!r}, this emollama reads {FORMAT!r}; use a new --out")
        elif create:
            tmp = path.with_name(".format.json.tmp")
            tmp.write_text(json.dumps({"format": FORMAT}) + "\n")
            os.replace(tmp, path)

    def _recover(self) -> None:
        """Delete temp files and shards no index row references (killed between rename and commit)."""
        shards = self.root / "shards"
        for tmp in shards.glob(".tmp-*"):
            tmp.unlink()
        used = {r[0] for r in self.conn.execute("SELECT DISTINCT shard FROM entries")}
        orphans = [p for p in shards.glob("*.safetensors") if p.name not in used]
        for p in orphans:
            p.unlink()
        if orphans:
            logger.warning("%s: removed %d unindexed shard(s) left by an interrupted run", self.root, len(orphans))

    # -- keys --------------------------------------------------------------------------------------------------
    def content_hash(self, media: str | os.PathLike) -> str:
        """sha256 of a file or frame folder, memoised by (path, size, mtime) of every file it covers."""
        path = str(Path(media).resolve())
        sig = stat_signature(path)
        row = self.conn.execute("SELECT stat, sha256 FROM hashes WHERE path=?", (path,)).fetchone()
        if row and row[0] == sig:
            return row[1]
        digest = content_hash(path)
        if self.writable:
            self.conn.execute("INSERT OR REPLACE INTO hashes VALUES (?, ?, ?)", (path, sig, digest))
        return digest

    def key_for(self, sample: MediaRef, extractor: ExtractorSpec | str, policy: str) -> str:
        """Cache key of a benchmark `Sample` or `PriorRequest` (media path relative to its root + content +
        extractor + policy)."""
        spec = ExtractorSpec(extractor) if isinstance(extractor, str) else extractor
        return make_key(sample.media_rel, self.content_hash(sample.media), spec, policy if sample.is_video else "")

    # -- reading -----------------------------------------------------------------------------------------------
    def has(self, key: str) -> bool:
        """True when ``key`` is cached (also for entries still in this writer's unflushed buffer)."""
        if key in self._buf:
            return True
        return self.conn.execute("SELECT 1 FROM entries WHERE key=?", (key,)).fetchone() is not None

    def info(self, key: str) -> EntryInfo:
        """The index row of ``key``; KeyError (saying how to build it) when absent."""
        row = self.conn.execute("SELECT key, shard, status, frames, media, sha256, extractor, fingerprint, policy "
                                "FROM entries WHERE key=?", (key,)).fetchone()
        if row is None:
            raise KeyError(f"prior key {key!r} is not in the cache {str(self.root)!r}; run `emollama prepare` for "
                           "this dataset/extractor/policy (keys change when media, extractor or policy change)")
        return EntryInfo(*row)

    def _tensors(self, key: str, fields: tuple[str, ...] = (*_ARRAYS, "valid", "has_crop", "crops")
                 ) -> tuple[dict[str, np.ndarray], str]:
        if key in self._buf:
            return self._buf[key][1:]
        info = self.info(key)
        meta = self.conn.execute("SELECT meta FROM entries WHERE key=?", (key,)).fetchone()[0]
        if info.shard not in self._readers:
            from safetensors import safe_open

            reader = safe_open(str(self.root / "shards" / info.shard), framework="numpy")
            self._readers[info.shard] = (reader, set(reader.keys()))
            if len(self._readers) > 8:  # bounded open files per process
                self._readers.popitem(last=False)
        self._readers.move_to_end(info.shard)
        reader, names = self._readers[info.shard]
        return {f: reader.get_tensor(f"{key}/{f}") for f in fields if f"{key}/{f}" in names}, meta

    def get_crops(self, key: str) -> tuple[np.ndarray | None, np.ndarray]:
        """(crops (T, S, S, 3) uint8 or None, has_crop (T,) bool): the analyzer's aligned crops, zeros where none."""
        arrays, _ = self._tensors(key)
        return arrays.get("crops"), arrays["has_crop"].astype(bool)

    def get(self, key: str, preprocess=None) -> FacePrior:
        """The cached `FacePrior` (T frames). ``crops`` is None unless a `Preprocess` is given here or to the cache,
        then (T, 3, size, size) float32 prepared for that vision tower (zeros on frames without a crop)."""
        arrays, meta = self._tensors(key)
        prior = FacePrior(**{k: arrays[k] for k in _ARRAYS if k in arrays}, valid=arrays["valid"].astype(bool),
                          meta=json.loads(meta))
        pp = preprocess or self.preprocess
        if pp is not None and "crops" in arrays:
            from emollama.model.transforms import tower_crops

            prior.crops = tower_crops(arrays["crops"], arrays["has_crop"], pp)
        return prior

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.has(key)

    def __len__(self) -> int:
        """Number of face-prior entries (tower-frame entries of `emollama.priors.frames` are not counted)."""
        return int(self.conn.execute(f"SELECT COUNT(*) FROM entries WHERE status != '{FRAMES_STATUS}'").fetchone()[0])

    def __iter__(self) -> Iterator[str]:
        """Keys of indexed face-prior entries, sorted."""
        return (r[0] for r in self.conn.execute(f"SELECT key FROM entries WHERE status != '{FRAMES_STATUS}' "
                                                "ORDER BY key").fetchall())

    def items(self) -> Iterator[tuple[str, FacePrior]]:
        """(key, `FacePrior`) for every indexed entry, in key order."""
        for key in self:
            yield key, self.get(key)

    def failures(self) -> dict[str, tuple[str, str, str]]:
        """key -> (media, reason, detail) of samples whose extraction failed in the last attempt."""
        return {r[0]: tuple(r[1:]) for r in self.conn.execute("SELECT key, media, reason, detail FROM failures")}

    def stats(self) -> dict:
        """Entries by status and extractor, shard count and bytes, failures by reason."""
        c = self.conn
        shards = list((self.root / "shards").glob("*.safetensors"))
        return {
            "entries": len(self),
            "by_status": dict(c.execute("SELECT status, COUNT(*) FROM entries GROUP BY status").fetchall()),
            "by_extractor": dict(c.execute(f"SELECT extractor, COUNT(*) FROM entries WHERE status != '{FRAMES_STATUS}' "
                                           "GROUP BY extractor").fetchall()),
            "frames": int(c.execute(f"SELECT COALESCE(SUM(frames), 0) FROM entries WHERE status != '{FRAMES_STATUS}'"
                                    ).fetchone()[0]),
            "shards": len(shards),
            "bytes": sum(p.stat().st_size for p in shards),
            "failures": dict(Counter(r[0] for r in c.execute("SELECT reason FROM failures"))),
        }

    # -- writing -----------------------------------------------------------------------------------------------
    def put(self, info: EntryInfo, prior: FacePrior, crops: np.ndarray | None = None,
            has_crop: np.ndarray | None = None) -> None:
        """Buffer one entry; it becomes durable at the next shard flush (`flush`, `close`, or size/age limit).

        Args:
            info: provenance (``shard``/``status``/``frames`` are filled in here).
            prior: `FacePrior` over T frames; its ``crops`` are ignored (store uint8 ``crops`` instead).
            crops: (T, S, S, 3) uint8 aligned face crops, zeros where ``has_crop`` is False; or None.
        """
        if not self.writable:
            raise PermissionError(f"prior cache {str(self.root)!r} was opened read-only")
        t = prior.num_frames
        valid = np.ones(t, bool) if prior.valid is None else np.asarray(prior.valid, bool)
        arrays = {k: np.ascontiguousarray(np.asarray(getattr(prior, k))) for k in _ARRAYS
                  if getattr(prior, k) is not None}
        arrays["valid"] = valid.astype(np.uint8)  # safetensors' numpy bool support varies by version
        arrays["has_crop"] = (valid if has_crop is None else np.asarray(has_crop, bool)).astype(np.uint8)
        if crops is not None:
            crops = np.ascontiguousarray(crops, dtype=np.uint8)
            if crops.ndim != 4 or crops.shape[0] != t or crops.shape[3] != 3:
                raise ValueError(f"crops must be (T={t}, S, S, 3) uint8, got {crops.shape}")
            arrays["crops"] = crops
        status = "ok" if valid.any() else "no_face"
        info = EntryInfo(info.key, "", status, t, *(getattr(info, f) for f in
                                                    ("media", "sha256", "extractor", "fingerprint", "policy")))
        self.put_arrays(info, arrays, prior.meta)

    def put_arrays(self, info: EntryInfo, arrays: dict[str, np.ndarray], meta: dict) -> None:
        """Buffer one entry of named arrays with its index row (``info.status``/``frames`` as given); flushed like
        `put` (used by `emollama.priors.frames` for tower-ready frames)."""
        if not self.writable:
            raise PermissionError(f"prior cache {str(self.root)!r} was opened read-only")
        self._buf[info.key] = (info, arrays, json.dumps(meta, sort_keys=True, default=str))
        self._buf_bytes += sum(a.nbytes for a in arrays.values())
        if self._buf_bytes >= self.shard_bytes or time.monotonic() - self._buf_t0 >= self.flush_seconds:
            self.flush()

    def record_failure(self, key: str, media: str, reason: str, detail: str = "") -> None:
        """Remember why a sample failed (retried on the next run; never cached as a result)."""
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?)",
                              (key, media, reason, detail[:500], time.time()))

    def flush(self) -> None:
        """Write buffered entries as one shard: temp file -> fsync -> rename -> one index transaction."""
        if not self._buf:
            self.conn.commit()  # hash memo rows
            return
        from safetensors.numpy import save

        tensors = {f"{e.key}/{k}": a for e, arrays, _ in self._buf.values() for k, a in arrays.items()}
        keys = list(self._buf)
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}.safetensors"
        shards = self.root / "shards"
        tmp = shards / f".tmp-{name}"
        with open(tmp, "wb") as f:
            f.write(save(tensors, metadata={"format": FORMAT, "keys": json.dumps(keys)}))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, shards / name)
        dfd = os.open(shards, os.O_RDONLY)
        try:
            os.fsync(dfd)  # the rename itself must be durable before the index points at the shard
        finally:
            os.close(dfd)
        now = time.time()
        rows = [(e.key, name, e.status, e.frames, e.media, e.sha256, e.extractor, e.fingerprint, e.policy, meta, now)
                for e, _, meta in self._buf.values()]
        with self.conn:
            self.conn.executemany("INSERT OR REPLACE INTO entries VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
            self.conn.executemany("DELETE FROM failures WHERE key=?", [(k,) for k in keys])
        logger.info("wrote shard %s (%d entries, %.1f MB)", name, len(keys), self._buf_bytes / 2**20)
        self._buf, self._buf_bytes, self._buf_t0 = {}, 0, time.monotonic()

    def close(self) -> None:
        if self.writable and not self._lock.closed:
            self.flush()
            _LOCKED.discard(self._lock_path)
            self._lock.close()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> PriorCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
