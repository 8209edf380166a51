"""The HTTP routes: ``v1`` (models, OpenAI-compatible chat, analyze; behind the API key) and ``site`` (health, /).

Routes are module-level; each reaches the app's `ServeState` through the `State` dependency, and every prediction
runs via `ServeState.run` (admission control + media-error mapping). Errors are raised as `LimitError`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, StreamingResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from emollama.media.kinds import media_kind
from emollama.serve import media as media_io
from emollama.serve.limits import LimitError, loads_bounded
from emollama.serve.media import Media
from emollama.serve.schemas import AnalyzeRequest, ChatRequest, chunks, completion, readable
from emollama.serve.state import State, require_api_key

v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)])
site = APIRouter()


@v1.get("/models", summary="Served model (OpenAI list format)")
async def models(state: State) -> dict[str, Any]:
    return {"object": "list", "data": [{"id": state.model_id, "object": "model", "created": 0, "owned_by": "emollama",
                                        "kind": "mllm" if state.is_mllm else "analyzer"}]}


@v1.post("/chat/completions", summary="OpenAI-compatible chat about the image/video in the messages")
async def chat(request: Request, state: State):
    state.admission.check()
    data, upload = await read_body(request, state.settings.max_json_depth)
    try:
        req = ChatRequest.model_validate(data)
    except ValidationError as err:
        raise LimitError(422, readable(err)) from None
    model_id = state.model_id
    if req.model and req.model != model_id:
        raise LimitError(404, f"model {req.model!r} is not served here; available: [{model_id!r}]",
                         code="model_not_found")
    ci = media_io.parse_chat(req)
    if upload is None and not ci.media_url:
        raise LimitError(400, "no image or video: add an image_url / video_url part (data: URL) or upload a file",
                         code="missing_media")
    max_new = req.max_completion_tokens or req.max_tokens
    kw = {"max_new_tokens": max_new} if state.is_mllm else {}

    def job(p):  # fetching/decoding the URL is part of the admitted work: it holds a slot like a prediction
        m = upload or media_io.load(ci.media_url, ci.media_kind, state.settings)
        return m, p.predict(**{m.kind: m.data}, question=ci.question or None, faces=req.faces,
                            history=ci.history, **kw)

    media, preds = await state.run(job)
    text, faces = _answer(preds, media.kind), [p.to_dict() for p in preds]
    if not req.stream:
        return completion(model_id, text, faces, (0, len(text.split())))
    events = [f"data: {json.dumps(c)}\n\n" for c in chunks(model_id, text, faces)] + ["data: [DONE]\n\n"]
    return StreamingResponse(iter(events), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@v1.post("/analyze", summary="Per-face records, the same schema as `emollama analyze` (docs/analyze.schema.json)")
async def analyze(request: Request, state: State) -> dict[str, Any]:
    state.admission.check()
    data, upload = await read_body(request, state.settings.max_json_depth)
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
        m = upload or media_io.load(url, kind, state.settings)
        return m, p.analyze(**{m.kind: m.data}, source=m.source)

    media, records = await state.run(job)
    return {"object": "emollama.analysis", "model": getattr(state.predictor, "analyzer", state.predictor).name,
            "media": media.kind, "records": records}


@site.get("/health", summary="Liveness, served model and queue state")
async def health(state: State) -> dict[str, Any]:
    return {"status": "ok", "model": state.model_id, "auth": bool(state.settings.api_keys),
            **state.admission.stats()}


@site.get("/", include_in_schema=False)
async def root():
    return RedirectResponse("/demo/")


async def read_body(request: Request, max_depth: int) -> tuple[dict[str, Any], Media | None]:
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
