"""FastAPI app (extra `serve`): OpenAI-compatible chat, `/v1/analyze`, models, health and the static demo.

Thin over `emollama.api`: every prediction is `predictor.predict(...)` / `predictor.analyze(...)` on an
`emollama.api.Analyzer` or `EmoLlama`, run under `serve.limits.Admission`. The routes live in `serve.routes` and
reach this app's `serve.state.ServeState` through a dependency. Errors are JSON in OpenAI's shape; tracebacks go
to the server log only.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from emollama import __version__
from emollama.serve.limits import BodySizeLimit, LimitError, ServeSettings, error_body
from emollama.serve.routes import site, v1
from emollama.serve.schemas import install_openapi
from emollama.serve.state import ServeState

logger = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


def create_app(predictor: Any, settings: ServeSettings | None = None) -> FastAPI:
    """The app serving ``predictor`` (an `emollama.api.Analyzer` or `EmoLlama`); one spawned copy per slot."""
    settings = settings or ServeSettings()
    state = ServeState.build(predictor, settings)
    app = FastAPI(title="emollama", version=__version__, lifespan=lifespan,
                  description=f"Facial expression analysis; serving `{state.model_id}`. OpenAI-compatible chat.")
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, idle_s=settings.body_timeout_s)
    app.state.serve, app.state.admission, app.state.settings = state, state.admission, settings
    app.add_exception_handler(LimitError, _limit)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _crash)
    app.include_router(v1)
    app.include_router(site)
    app.mount("/demo", StaticFiles(directory=STATIC, html=True), name="demo")
    install_openapi(app)
    return app


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Load every predictor of the pool before the first request (not during it); free them all at shutdown."""
    state: ServeState = app.state.serve
    for p in state.pool:
        p.load()
    yield
    state.admission.close()
    for p in state.pool:
        p.close()


def _error(status: int, message: str, kind: str = "invalid_request_error", code: str | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(message, kind, code), status_code=status, headers=headers)


async def _limit(_req: Request, err: LimitError) -> JSONResponse:
    return _error(err.status, err.message, err.kind, err.code, err.headers)


async def _invalid(_req: Request, err: RequestValidationError) -> JSONResponse:
    parts = [f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in err.errors()[:5]]
    return _error(422, "invalid request: " + "; ".join(parts))


async def _http(_req: Request, err: HTTPException) -> JSONResponse:
    return _error(err.status_code, str(err.detail), "invalid_request_error" if err.status_code < 500 else
                  "server_error", headers=getattr(err, "headers", None))


async def _crash(_req: Request, err: Exception) -> JSONResponse:
    logger.error("unhandled error: %s: %s", type(err).__name__, err, exc_info=err)
    return _error(500, "internal server error; the details are in the server log", "server_error")
