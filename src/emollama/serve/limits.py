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
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeSettings:
    """Everything `emollama serve` can configure (see `emollama serve --help` for units)."""

    api_keys: tuple[str, ...] = ()
    max_body_mb: float = 25.0
    max_concurrency: int = 1
    queue: int = 8
    timeout_s: float = 60.0
    max_pixels: int = 40_000_000
    max_video_s: float = 60.0
    max_video_frames: int = 32
    allow_url_hosts: tuple[str, ...] = field(default_factory=tuple)
    url_timeout_s: float = 10.0

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


class BodySizeLimit:
    """ASGI middleware: 413 when Content-Length, or the bytes actually received, exceed ``max_bytes``."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await self._reject(send)
        seen, started = 0, False

        async def limited_receive():
            nonlocal seen
            msg = await receive()
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
        except _TooLarge:
            if not started:
                await self._reject(send)

    async def _reject(self, send) -> None:
        mb = self.max_bytes / 1024 / 1024
        body = json.dumps(error_body(f"request body too large: the limit is {mb:g} MB (--max-body-mb)",
                                     "invalid_request_error", "body_too_large")).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
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
