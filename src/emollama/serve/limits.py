"""Server limits: settings, the request-body cap (413) and admission control (bounded concurrency + queue).

Admission: at most ``max_concurrency`` predictions run (each on its own predictor, in a thread), at most ``queue``
more wait. A request beyond that gets 429; one that waits longer than ``timeout_s`` gets 503; one that runs longer
gets 504. Both carry Retry-After, estimated from recent service times. Nothing here knows about faces or models.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import queue
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from emollama.api import MediaLimits

logger = logging.getLogger(__name__)
_MEDIA = MediaLimits()  # the media limits are stated once, in emollama.api; the server only reads them


@dataclass(frozen=True)
class ServeSettings:
    """Everything `emollama serve` can configure; the single source of its defaults (the CLI reads them from here;
    the media limits come from `emollama.api.MediaLimits`).

    Times are in seconds. ``header_timeout_s``: from connection (or a keep-alive request's first byte) to the end of
    the request headers; ``keep_alive_s``: idle time between requests on one connection; ``body_timeout_s``: the
    longest wait for the next piece of a request body (408 beyond).
    """

    api_keys: tuple[str, ...] = ()
    max_body_mb: float = 25.0
    max_json_depth: int = 64
    max_concurrency: int = 1
    queue: int = 8
    timeout_s: float = 60.0
    max_pixels: int = _MEDIA.max_pixels
    max_video_s: float = _MEDIA.max_video_s
    max_video_frames: int = _MEDIA.max_video_frames
    allow_url_hosts: tuple[str, ...] = field(default_factory=tuple)
    url_timeout_s: float = 10.0
    header_timeout_s: float = 10.0
    keep_alive_s: float = 5.0
    body_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        for i, key in enumerate(self.api_keys):
            if not key.strip() or key != key.strip():
                shown = "empty" if not key else "blank" if not key.strip() else "padded with whitespace"
                raise ValueError(f"API key #{i + 1} is {shown}: an Authorization header cannot carry it, and an empty "
                                 "key would let anyone in; pass a real secret with --api-key or $EMOLLAMA_API_KEY")
        for name in ("timeout_s", "url_timeout_s", "header_timeout_s", "keep_alive_s", "body_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0 seconds, got {getattr(self, name)!r}")

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)


class LimitError(Exception):
    """An HTTP error with an OpenAI-style body; ``headers`` e.g. Retry-After."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.code, self.headers = status, message, kind, code, headers or {}


def error_body(message: str, kind: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


# a string, or an unterminated one up to the end: every '"' starts a match, so the scan stays linear
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


def json_depth(text: str | bytes) -> int:
    """Deepest ``[``/``{`` nesting in JSON text, brackets inside strings ignored; linear, and never recursive.

    Malformed text gets a number too (json.loads rejects it afterwards); only valid JSON gets its exact depth.
    """
    import numpy as np  # lazily: only bodies with many brackets get here

    if isinstance(text, bytes):
        text = text.decode(json.detect_encoding(text), "surrogatepass")
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text)).encode("ascii")
    deepest = level = 0
    for start in range(0, len(brackets), 1 << 20):  # 1 MiB at a time: bounded memory for a 25 MB body
        chunk = np.frombuffer(brackets[start:start + (1 << 20)], dtype=np.uint8)
        steps = np.isin(chunk, (ord("["), ord("{"))).astype(np.int32) - np.isin(chunk, (ord("]"), ord("}")))
        depth = np.cumsum(steps, dtype=np.int64) + level
        deepest, level = max(deepest, int(depth.max())), int(depth[-1])
    return deepest


def loads_bounded(raw: str | bytes, max_depth: int, what: str = "the request body") -> Any:
    """json.loads after a depth check, so no input can make the parser recurse; LimitError 400 on bad JSON."""
    try:
        text = raw.decode(json.detect_encoding(raw), "surrogatepass") if isinstance(raw, bytes) else raw
        quick = text.count("[") + text.count("{") <= max_depth  # the usual case: no scan needed
        depth = 0 if quick else json_depth(text)
        if depth <= max_depth:
            return json.loads(text)
    except RecursionError:  # a backstop: the scan above should make this unreachable
        depth = max_depth + 1
    except ValueError:  # includes UnicodeDecodeError
        raise LimitError(400, f"{what} is not valid JSON", code="invalid_json") from None
    raise LimitError(400, f"{what} is nested too deeply: over {max_depth} levels of arrays/objects",
                     code="json_too_deep")


class BodySizeLimit:
    """ASGI middleware: 413 when Content-Length, or the bytes actually received, exceed ``max_bytes``; 408 when the
    next piece of an unfinished body takes longer than ``idle_s`` seconds to arrive (a slow-POST client)."""

    def __init__(self, app, max_bytes: int, idle_s: float | None = None) -> None:
        self.app, self.max_bytes, self.idle_s = app, max_bytes, idle_s

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await self._reject(send, 413)
        seen, started, body_done = 0, False, False

        async def limited_receive():
            nonlocal seen, body_done
            if body_done or self.idle_s is None:  # after the body only http.disconnect is left: no deadline
                msg = await receive()
            else:
                try:
                    msg = await asyncio.wait_for(receive(), self.idle_s)
                except asyncio.TimeoutError:  # not the builtin on Python 3.10
                    raise _Stalled() from None
            body_done = body_done or not msg.get("more_body", False)
            seen += len(msg.get("body", b""))
            if seen > self.max_bytes:  # chunked uploads have no Content-Length: count as they arrive
                raise _TooLarge()
            return msg

        async def tracking_send(msg):
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except (_TooLarge, _Stalled) as err:
            if not started:
                await self._reject(send, 413 if isinstance(err, _TooLarge) else 408)

    async def _reject(self, send, status: int) -> None:
        if status == 413:
            mb = self.max_bytes / 1024 / 1024
            message, code = f"request body too large: the limit is {mb:g} MB (--max-body-mb)", "body_too_large"
        else:
            message, code = (f"request body stalled: no data for {self.idle_s:g} s (--body-timeout-s)",
                             "body_timeout")
        body = json.dumps(error_body(message, "invalid_request_error", code)).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


class _Stalled(Exception):
    pass


class Admission:
    """Run ``fn(predictor)`` in a worker thread under the concurrency/queue/timeout limits.

    Args:
        predictors: one predictor per concurrent slot (a predictor is never used by two threads at once).
    """

    def __init__(self, predictors: list[Any], queue_size: int, timeout_s: float) -> None:
        self.slots = len(predictors)
        self.capacity = self.slots + max(0, queue_size)
        self.timeout_s = timeout_s
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        for p in predictors:
            self._free.put(p)
        self._pool = ThreadPoolExecutor(max_workers=self.slots, thread_name_prefix="emollama-infer")
        self._sem: asyncio.Semaphore | None = None
        self.admitted = self.running = self.peak_admitted = 0
        self._service_s = 1.0  # EWMA of one prediction's duration, for Retry-After

    def retry_after(self) -> str:
        waves = max(1, math.ceil((self.admitted + 1) / self.slots))
        return str(max(1, math.ceil(waves * self._service_s)))

    def check(self) -> None:
        """429 when full; called before a body is read too, so a busy server does not parse what it will refuse."""
        if self.admitted >= self.capacity:
            raise LimitError(429, f"server busy: {self.admitted} requests in progress or queued (capacity "
                             f"{self.capacity}); retry later", "rate_limit_error", "queue_full",
                             {"Retry-After": self.retry_after()})

    async def run(self, fn: Callable[[Any], Any]) -> Any:
        if self._sem is None:  # created lazily: it must belong to the server's event loop
            self._sem = asyncio.Semaphore(self.slots)
        self.check()
        self.admitted += 1
        self.peak_admitted = max(self.peak_admitted, self.admitted)
        t_start = time.monotonic()
        try:
            await asyncio.wait_for(self._sem.acquire(), self.timeout_s)
        except asyncio.TimeoutError:  # not the builtin on Python 3.10
            self.admitted -= 1
            raise LimitError(503, f"request waited {self.timeout_s:g} s in the queue without starting; retry later",
                             "server_error", "queue_timeout", {"Retry-After": self.retry_after()}) from None
        except asyncio.CancelledError:  # client went away while queued
            self.admitted -= 1
            raise
        self.running += 1
        fut = asyncio.get_running_loop().run_in_executor(self._pool, self._call, fn)
        fut.add_done_callback(self._release)  # the slot frees when the work really ends, even after a timeout
        remaining = max(0.1, self.timeout_s - (time.monotonic() - t_start))
        try:
            return await asyncio.wait_for(asyncio.shield(fut), remaining)
        except asyncio.TimeoutError:
            raise LimitError(504, f"request took longer than {self.timeout_s:g} s (--timeout-s)", "server_error",
                             "timeout", {"Retry-After": self.retry_after()}) from None

    def _call(self, fn: Callable[[Any], Any]) -> Any:
        predictor = self._free.get()
        t0 = time.monotonic()
        try:
            return fn(predictor)
        finally:
            self._free.put(predictor)
            self._service_s = 0.8 * self._service_s + 0.2 * (time.monotonic() - t0)

    def _release(self, _fut) -> None:
        self.running -= 1
        self.admitted -= 1
        self._sem.release()

    def stats(self) -> dict[str, int]:
        return {"running": self.running, "queued": self.admitted - self.running, "capacity": self.capacity,
                "max_concurrency": self.slots, "peak_admitted": self.peak_admitted}

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
