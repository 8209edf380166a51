"""FastAPI app (extra `serve`): OpenAI-compatible chat, `/v1/analyze`, models, health and the static demo.

Thin over `emollama.api`: every prediction is `predictor.predict(...)` / `predictor.analyze(...)` on an
`emollama.api.Analyzer` or `EmoLlama`, run under `serve.limits.Admission`. Errors are JSON in OpenAI's shape;
tracebacks go to the server log only.
"""

from __future__ import annotations

import hmac
import json
import logging
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from emollama import __version__
from emollama.analyze.media import MediaError, media_kind
from emollama.api import MediaLimitError
from emollama.serve import media as media_io
from emollama.serve.limits import Admission, BodySizeLimit, LimitError, ServeSettings, error_body, loads_bounded
from emollama.serve.media import Media
from emollama.serve.schemas import AnalyzeRequest, ChatRequest, chunks, completion, install_openapi, readable

logger = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"


def _error(status: int, message: str, kind: str = "invalid_request_error", code: str | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(message, kind, code), status_code=status, headers=headers)


async def _read(request: Request, max_depth: int) -> tuple[dict[str, Any], Media | None]:
    """JSON body, or multipart with a `request` JSON field (chat) and an optional `file` upload.

    Size (middleware) and nesting depth are checked before any JSON is parsed.
    """
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        data = loads_bounded(await request.body(), max_depth)
        if not isinstance(data, dict):
            raise LimitError(422, "invalid request: the JSON body must be an object")
        return data, None
    if ctype == "multipart/form-data":
        try:
            form = await request.form(max_files=1, max_fields=8)
        except HTTPException as err:  # malformed multipart
            raise LimitError(400, f"malformed multipart body: {err.detail}") from None
        upload, text = form.get("file"), form.get("request")
        data = loads_bounded(text, max_depth, "the 'request' form field") if isinstance(text, str) else {}
        if not isinstance(data, dict):
            raise LimitError(422, "invalid request: the 'request' form field must be a JSON object")
        if upload is None or isinstance(upload, str):
            return data, None
        blob = await upload.read()
        if not blob:
            raise LimitError(400, "the uploaded file is empty", code="empty_media")
        utype = (upload.content_type or "").lower()
        kind = "video" if utype.startswith("video/") or media_kind(Path(upload.filename or "")) == "video" else "image"
        return data, Media(kind, blob, upload.filename or "upload")
    raise LimitError(415, f"unsupported content type {ctype or '(none)'!r}: send application/json or "
                     "multipart/form-data", code="unsupported_media_type")


def create_app(predictor: Any, settings: ServeSettings | None = None) -> FastAPI:
    """The app serving ``predictor`` (an `emollama.api.Analyzer` or `EmoLlama`); one spawned copy per slot."""
    settings = settings or ServeSettings()
    pool = [predictor] + [predictor.spawn() for _ in range(max(1, settings.max_concurrency) - 1)]
    admission = Admission(pool, settings.queue, settings.timeout_s)
    model_id, is_mllm = predictor.name, hasattr(predictor, "model")

    def lifespan(app: FastAPI):
        from contextlib import asynccontextmanager

        @asynccontextmanager
        async def span(_app):
            for p in pool:  # load models before the first request, not during it
                p.load()
            yield
            admission.close()
            for p in pool:
                p.close()

        return span(app)

    app = FastAPI(title="emollama", version=__version__, lifespan=lifespan,
                  description=f"Facial expression analysis; serving `{model_id}`. OpenAI-compatible chat.")
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes, idle_s=settings.body_timeout_s)
    app.state.admission, app.state.settings = admission, settings

    @app.exception_handler(LimitError)
    async def _limit(_req, err: LimitError):
        return _error(err.status, err.message, err.kind, err.code, err.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req, err: RequestValidationError):
        parts = [f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in err.errors()[:5]]
        return _error(422, "invalid request: " + "; ".join(parts))

    @app.exception_handler(HTTPException)
    async def _http(_req, err: HTTPException):
        return _error(err.status_code, str(err.detail), "invalid_request_error" if err.status_code < 500 else
                      "server_error", headers=getattr(err, "headers", None))

    @app.exception_handler(Exception)
    async def _crash(_req, err: Exception):
        logger.error("unhandled error: %s: %s", type(err).__name__, err, exc_info=err)
        return _error(500, "internal server error; the details are in the server log", "server_error")

    async def auth(request: Request) -> None:
        if not settings.api_keys:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token, ok = token.strip(), False
        for key in settings.api_keys:  # constant time per key, and every key is compared
            ok |= hmac.compare_digest(token.encode(), key.encode())
        if scheme.lower() != "bearer" or not token or not ok:  # keys are never empty (ServeSettings); belt and braces
            raise LimitError(401, "missing or invalid API key: send 'Authorization: Bearer <key>'",
                             "authentication_error", "invalid_api_key", {"WWW-Authenticate": "Bearer"})

    async def run(fn):
        try:
            return await admission.run(fn)
        except MediaLimitError as err:
            raise LimitError(413, f"{err.reason}: {err.detail}; {err.fix}", code="media_too_large") from None
        except MediaError as err:
            msg = err.reason + (f" ({err.detail})" if err.detail else "") + (f"; {err.fix}" if err.fix else "")
            raise LimitError(400, msg, code="invalid_media") from None

    v1 = APIRouter(prefix="/v1", dependencies=[Depends(auth)])

    @v1.get("/models", summary="Served model (OpenAI list format)")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": model_id, "object": "model", "created": 0, "owned_by": "emollama",
                                            "kind": "mllm" if is_mllm else "analyzer"}]}

    @v1.post("/chat/completions", summary="OpenAI-compatible chat about the image/video in the messages")
    async def chat(request: Request):
        admission.check()
        data, upload = await _read(request, settings.max_json_depth)
        try:
            req = ChatRequest.model_validate(data)
        except ValidationError as err:
            raise LimitError(422, readable(err)) from None
        if req.model and req.model != model_id:
            raise LimitError(404, f"model {req.model!r} is not served here; available: [{model_id!r}]",
                             code="model_not_found")
        ci = media_io.parse_chat(req)
        if upload is None and not ci.media_url:
            raise LimitError(400, "no image or video: add an image_url / video_url part (data: URL) or upload a file",
                             code="missing_media")
        max_new = req.max_completion_tokens or req.max_tokens
        kw = {"max_new_tokens": max_new} if is_mllm else {}

        def job(p):  # fetching/decoding the URL is part of the admitted work: it holds a slot like a prediction
            m = upload or media_io.load(ci.media_url, ci.media_kind, settings)
            return m, p.predict(**{m.kind: m.data}, question=ci.question or None, faces=req.faces,
                                history=ci.history, **kw)

        media, preds = await run(job)
        text, faces = _answer(preds, media.kind), [p.to_dict() for p in preds]
        if not req.stream:
            return completion(model_id, text, faces, (0, len(text.split())))
        events = [f"data: {json.dumps(c)}\n\n" for c in chunks(model_id, text, faces)] + ["data: [DONE]\n\n"]
        return StreamingResponse(iter(events), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @v1.post("/analyze", summary="Per-face records, the same schema as `emollama analyze` (docs/analyze.schema.json)")
    async def analyze(request: Request) -> dict[str, Any]:
        admission.check()
        data, upload = await _read(request, settings.max_json_depth)
        url = kind = None
        if upload is None:
            try:
                req = AnalyzeRequest.model_validate(data)
            except ValidationError as err:
                raise LimitError(422, readable(err)) from None
            url, kind = (req.image_url, "image") if req.image_url else (req.video_url, "video")
            if not url:
                raise LimitError(422, "invalid request: send a multipart 'file', or JSON with image_url or video_url")

        def job(p):  # as in chat: a URL download runs inside the admitted slot
            m = upload or media_io.load(url, kind, settings)
            return m, p.analyze(**{m.kind: m.data}, source=m.source)

        media, records = await run(job)
        return {"object": "emollama.analysis", "model": getattr(predictor, "analyzer", predictor).name,
                "media": media.kind, "records": records}

    app.include_router(v1)

    @app.get("/health", summary="Liveness, served model and queue state")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "model": model_id, "auth": bool(settings.api_keys), **admission.stats()}

    @app.get("/", include_in_schema=False)
    async def root():
        return RedirectResponse("/demo/")

    app.mount("/demo", StaticFiles(directory=STATIC, html=True), name="demo")
    install_openapi(app)
    return app


def _answer(preds: list, kind: str) -> str:
    """Chat text: one paragraph per face ('Face 2 [box]: ...' when there are several)."""
    if not preds:
        return f"No face was found in the {kind}."
    if len(preds) == 1:
        return _one(preds[0])
    return "\n\n".join(f"Face {i + 1} [{', '.join(f'{v:.0f}' for v in p.box)}]: {_one(p)}"
                       for i, p in enumerate(preds))


def _one(p) -> str:
    conf = p.probabilities.get(p.label, 0.0) if p.label else 0.0
    head = f"{p.label} ({conf:.0%})." if p.label else "Expression unclear."
    return f"{head} {p.text}".strip() if p.model.startswith("emollama-analyzer") else p.text
