"""Per-app serving state and the FastAPI dependencies that reach it.

`create_app` stores one `ServeState` on ``app.state.serve``; routes get it through `get_state` (a dependency, so
nothing is captured in closures). `ServeState.run` is the only way a route reaches a predictor: admission control
plus the typed media-error mapping (`MediaTooLarge` -> 413, any other `MediaError` -> 400).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from emollama.media.errors import MediaError, MediaTooLarge
from emollama.serve.limits import Admission, LimitError, ServeSettings


@dataclass(frozen=True)
class ServeState:
    """What the routes need. pool: one predictor per concurrent slot (``pool[0]`` is the one passed in), run under
    ``admission``; model_id: the served model's name; is_mllm: an `EmoLlama` (chat generates) vs an `Analyzer`."""

    predictor: Any
    pool: list[Any]
    admission: Admission
    settings: ServeSettings
    model_id: str
    is_mllm: bool

    @classmethod
    def build(cls, predictor: Any, settings: ServeSettings) -> ServeState:
        """Spawn ``max_concurrency - 1`` copies of ``predictor`` and put all of them under one `Admission`."""
        pool = [predictor] + [predictor.spawn() for _ in range(max(1, settings.max_concurrency) - 1)]
        return cls(predictor, pool, Admission(pool, settings.queue, settings.timeout_s), settings,
                   predictor.name, hasattr(predictor, "model"))

    async def run(self, fn: Callable[[Any], Any]) -> Any:
        """``fn(predictor)`` in an admitted slot; media errors become LimitError 413 (over a limit) or 400."""
        try:
            return await self.admission.run(fn)
        except MediaTooLarge as err:  # typed: over a configured limit (emollama.api.MediaLimitError is the same class)
            raise LimitError(413, f"{err.reason}: {err.detail}; {err.fix}", code="media_too_large") from None
        except MediaError as err:
            msg = err.reason + (f" ({err.detail})" if err.detail else "") + (f"; {err.fix}" if err.fix else "")
            raise LimitError(400, msg, code="invalid_media") from None


def get_state(request: Request) -> ServeState:
    """The `ServeState` of the app serving ``request`` (a FastAPI dependency)."""
    return request.app.state.serve


State = Annotated[ServeState, Depends(get_state)]


async def require_api_key(request: Request, state: State) -> None:
    """401 unless auth is off or the request carries ``Authorization: Bearer <one of settings.api_keys>``."""
    keys = state.settings.api_keys
    if not keys:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    token, ok = token.strip(), False
    for key in keys:  # constant time per key, and every key is compared
        ok |= hmac.compare_digest(token.encode(), key.encode())
    if scheme.lower() != "bearer" or not token or not ok:  # keys are never empty (ServeSettings); belt and braces
        raise LimitError(401, "missing or invalid API key: send 'Authorization: Bearer <key>'",
                         "authentication_error", "invalid_api_key", {"WWW-Authenticate": "Bearer"})
