"""uvicorn wiring: the connection-level timeouts that `emollama serve` runs with.

uvicorn's h11 protocol arms its keep-alive timer only after a response, so a client that connects and sends a
partial request line or header (slowloris) is kept forever. `guarded_h11` adds a header deadline; the body-read
timeout is ASGI middleware (`serve.limits.BodySizeLimit`). Nothing here knows about models or routes.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from emollama.serve.limits import ServeSettings

logger = logging.getLogger(__name__)


class _HeaderDeadline(H11Protocol):
    """H11Protocol that closes a connection whose request headers are not complete ``header_timeout_s`` seconds
    after it opened, or after the first byte of a following keep-alive request (a deadline, not an idle timer:
    trickling bytes does not extend it)."""

    header_timeout_s: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and self.conn.their_state is h11.IDLE:  # first byte of a keep-alive request
            self._arm_header_timer()
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # headers complete (or the connection is ending)
            self._cancel_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout_s, self._header_timeout)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            logger.info("closing %s: request headers incomplete after %g s", self.client, self.header_timeout_s)
            self.transport.close()


def guarded_h11(header_timeout_s: float) -> type[H11Protocol]:
    """The h11 protocol class with a ``header_timeout_s``-second header deadline (for uvicorn's ``http=``)."""
    return type("HeaderDeadlineH11", (_HeaderDeadline,), {"header_timeout_s": float(header_timeout_s)})


def uvicorn_options(settings: ServeSettings) -> dict[str, Any]:
    """Keyword arguments for `uvicorn.run` / `uvicorn.Config` that apply the connection timeouts in ``settings``.

    The h11 protocol is always used (httptools, when installed, has no header deadline either).
    """
    return {"http": guarded_h11(settings.header_timeout_s), "timeout_keep_alive": settings.keep_alive_s}
