"""Robust calls to generation APIs: bounded concurrency, token-bucket rate limit, retries, and a SQLite ledger.

* Retries: exponential backoff with jitter on ``TransientError`` (429/5xx/timeouts), waiting at least the server's
  Retry-After (which also pauses every other worker: a 429 is about the account, not the request).
* Malformed replies (truncated JSON, missing fields) are retried a few times, then counted.
* The ledger maps a request's content hash to its reply and status. Each row is committed on its own, so after a
  kill -9 a rerun re-serves every finished reply from disk: nothing is paid twice and nothing is lost.
* Secrets (API keys) are redacted from every logged or stored message.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import sqlite3
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from emollama.instruct.providers.base import Generation, MalformedResponse, PermanentError, TransientError, Usage

logger = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")


@dataclass
class ClientConfig:
    """Knobs of the robust client (seconds). Tests use tiny backoffs; production keeps the defaults."""

    concurrency: int = 4  # requests in flight at most
    rate: float | None = None  # requests per second (token bucket); None = unlimited
    burst: int = 1
    max_attempts: int = 6  # per request, for transient errors
    max_malformed: int = 3  # per request, for unusable replies
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    jitter: float = 0.25  # +-25 % on each backoff so parallel workers do not retry in lockstep
    max_retry_after: float = 300.0  # cap on a server's Retry-After
    timeout: float = 60.0  # per HTTP request; passed to the SDKs by the providers


def request_key(**fields: Any) -> str:
    """sha256 of the canonical JSON of ``fields`` (provider, model, prompt version, sample id, seed, ...)."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret (and its last 8 characters, which SDK messages sometimes echo) masked."""
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
            if len(s) > 12:
                text = text.replace(s[-8:], "***")
    return text


class TokenBucket:
    """``rate`` tokens per second, ``burst`` capacity; ``pause`` blocks every taker (server-side Retry-After)."""

    def __init__(self, rate: float | None, burst: int = 1, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.capacity, self._sleep, self._clock = rate, max(1, burst), sleep, clock
        self._tokens = float(self.capacity)
        self._last = clock()
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                wait = self._paused_until - now
                if wait <= 0 and self.rate:
                    self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
                    self._last = now
                    if self._tokens >= 1:
                        self._tokens -= 1
                        return
                    wait = (1 - self._tokens) / self.rate
                elif wait <= 0:
                    return
            self._sleep(wait)


class Ledger:
    """SQLite table ``requests``: key -> status, reply JSON, token counts, tries, last error. Thread-safe."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # autocommit: every row is its own transaction, durable once execute() returns
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS requests (key TEXT PRIMARY KEY, meta TEXT, status TEXT NOT NULL, "
            "response TEXT, prompt_tokens INTEGER DEFAULT 0, completion_tokens INTEGER DEFAULT 0, "
            "tries INTEGER DEFAULT 0, error TEXT, updated REAL)")

    def get(self, key: str) -> tuple[str, Generation | None, str | None] | None:
        """(status, generation when ok, last error) or None when never recorded."""
        with self._lock:
            row = self._db.execute("SELECT status, response, error FROM requests WHERE key=?", (key,)).fetchone()
        if row is None:
            return None
        gen = Generation.from_json(json.loads(row[1])) if row[0] == "ok" and row[1] else None
        return row[0], gen, row[2]

    def put(self, key: str, meta: dict[str, Any], status: str, gen: Generation | None, tries: int,
            error: str | None = None) -> None:
        usage = gen.usage if gen else Usage()
        with self._lock:
            self._db.execute(
                "INSERT INTO requests (key, meta, status, response, prompt_tokens, completion_tokens, tries, error, "
                "updated) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT(key) DO UPDATE SET status=excluded.status, "
                "response=excluded.response, prompt_tokens=excluded.prompt_tokens, completion_tokens="
                "excluded.completion_tokens, tries=requests.tries+excluded.tries, error=excluded.error, "
                "updated=excluded.updated",
                (key, json.dumps(meta, sort_keys=True), status, json.dumps(gen.to_json()) if gen else None,
                 usage.prompt_tokens, usage.completion_tokens, tries, error, time.time()))

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._db.execute("SELECT status, COUNT(*) FROM requests GROUP BY status").fetchall())

    def close(self) -> None:
        with self._lock:
            self._db.close()


@dataclass
class CallOutcome:
    """Result of one ledgered request: status ok | failed | malformed | permanent."""

    status: str
    generation: Generation | None = None
    error: str | None = None
    cached: bool = False


@dataclass
class RobustClient:
    """Runs generator calls through the ledger, the rate limiter and the retry policy; counts everything."""

    config: ClientConfig = field(default_factory=ClientConfig)
    ledger: Ledger | None = None
    secrets: Sequence[str] = ()
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic  # injectable with ``sleep`` so tests run on a fake clock
    stats: Counter = field(default_factory=Counter)
    usage: Usage = Usage()  # tokens paid in this run (cached replies excluded)

    def __post_init__(self) -> None:
        self._bucket = TokenBucket(self.config.rate, self.config.burst, self.sleep, self.clock)
        self._lock = threading.Lock()
        self._rng = random.Random()

    def _count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.stats[key] += n

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        c = self.config
        delay = min(c.backoff_max, c.backoff_base * 2 ** (attempt - 1))
        with self._lock:
            delay *= 1 + c.jitter * (2 * self._rng.random() - 1)
        if retry_after is not None:  # the server knows best; never retry earlier than it asked
            ra = min(retry_after, c.max_retry_after)
            self._bucket.pause(ra)
            delay = max(delay, ra)
        return delay

    def call(self, key: str, meta: dict[str, Any], fn: Callable[[], Generation], network: bool = True) -> CallOutcome:
        """Serve ``key`` from the ledger, or run ``fn`` with retries and record the outcome."""
        if self.ledger is not None:
            hit = self.ledger.get(key)
            if hit is not None and hit[0] == "ok":
                self._count("cached")
                return CallOutcome("ok", hit[1], cached=True)
        tries = malformed = 0
        while True:
            tries += 1
            if network:
                self._bucket.acquire()
            self._count("requests")
            try:
                gen = fn()
            except TransientError as err:
                msg = redact(str(err), self.secrets)
                self._count(f"transient:{err.status or 'timeout'}")
                if tries >= self.config.max_attempts:
                    return self._finish(key, meta, "failed", None, tries, msg)
                delay = self._backoff(tries, err.retry_after)
                logger.info("retry %d/%d of %s in %.2fs: %s", tries, self.config.max_attempts, meta.get("sample_id"),
                            delay, msg)
                self._count("retries")
                self.sleep(delay)
                continue
            except MalformedResponse as err:
                msg = redact(str(err), self.secrets)
                malformed += 1
                self._count("malformed")
                if malformed >= self.config.max_malformed or tries >= self.config.max_attempts:
                    return self._finish(key, meta, "malformed", None, tries, msg)
                logger.info("malformed reply for %s (%s); retrying", meta.get("sample_id"), msg)
                self._count("retries")
                continue
            except PermanentError as err:
                return self._finish(key, meta, "permanent", None, tries, redact(str(err), self.secrets))
            except Exception as err:  # noqa: BLE001  (an unexpected failure must not kill the whole run)
                msg = redact(f"{type(err).__name__}: {err}", self.secrets)
                return self._finish(key, meta, "permanent", None, tries, msg)
            with self._lock:
                self.usage = self.usage + gen.usage
            return self._finish(key, meta, "ok", gen, tries, None)

    def _finish(self, key: str, meta: dict[str, Any], status: str, gen: Generation | None, tries: int,
                error: str | None) -> CallOutcome:
        if status != "ok":
            logger.warning("%s gave up after %d tries (%s): %s", meta.get("sample_id"), tries, status, error)
            self._count(f"gave_up:{status}")
        if self.ledger is not None:
            self.ledger.put(key, meta, status, gen, tries, error)
        return CallOutcome(status, gen, error)


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int, window: int | None = None) -> Iterator[R]:
    """``map(fn, items)`` on ``workers`` threads, yielding in input order with at most ``window`` items pending.

    Input order keeps the output file identical whatever the timing (clean run vs. resumed run).
    """
    if workers <= 1:
        yield from map(fn, items)
        return
    window = window or 4 * workers
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="gen") as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
