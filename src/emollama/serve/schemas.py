"""Request models (OpenAI chat subset + `/v1/analyze`), response builders and the published OpenAPI bodies.

Bodies are parsed by hand in `app.py` (JSON or multipart upload, with exact status codes), so the request schemas
are added to the OpenAPI document here instead of through FastAPI's automatic body parameters.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class MediaURL(BaseModel):
    url: str = Field(description="data:image/...;base64,... (or video/...); http(s) only for --allow-url-host hosts")
    detail: str | None = None


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: Literal["text", "image_url", "video_url"]
    text: str | None = None
    image_url: MediaURL | None = None
    video_url: MediaURL | None = None


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[ContentPart] | None = None


class ChatRequest(BaseModel):
    """OpenAI chat completion request; sampling parameters are accepted and ignored (decoding is greedy)."""

    model_config = ConfigDict(extra="allow")
    model: str | None = None
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1, le=1024)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=1024)
    faces: Literal["all", "largest"] = Field(default="all", description="emollama extension: which faces to answer")


class AnalyzeRequest(BaseModel):
    """JSON form of `/v1/analyze` (or send multipart/form-data with a `file` field)."""

    model_config = ConfigDict(extra="forbid")
    image_url: str | None = None
    video_url: str | None = None


def readable(err: ValidationError) -> str:
    """'messages.0.role: Input should be ...; ...' from a pydantic error."""
    parts = []
    for e in err.errors()[:5]:
        loc = ".".join(str(x) for x in e["loc"]) or "body"
        parts.append(f"{loc}: {e['msg']}")
    return "invalid request: " + "; ".join(parts)


def completion(model: str, text: str, faces: list[dict[str, Any]], usage: tuple[int, int]) -> dict[str, Any]:
    """Non-streaming chat.completion; ``emollama.faces`` carries the per-face predictions."""
    return {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)},
            "emollama": {"faces": faces}}


def chunks(model: str, text: str, faces: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """chat.completion.chunk events: role, the text in word pieces, then finish_reason (and the faces)."""
    cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
        return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}

    words = text.split(" ")
    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"content": w if i == 0 else " " + w}) for i, w in enumerate(words) if w or i == 0]
    out.append(chunk({}, "stop", emollama={"faces": faces}))
    return out


def _request_body(ref: str, multipart: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}},
        "multipart/form-data": {"schema": multipart}}}


def install_openapi(app) -> None:
    """Publish the hand-parsed request bodies in the app's OpenAPI schema."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        comps = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in (ChatRequest, AnalyzeRequest):
            js = model.model_json_schema(ref_template="#/components/schemas/{model}")
            comps.update(js.pop("$defs", {}))
            comps[model.__name__] = js
        file_field = {"type": "string", "format": "binary", "description": "an image or a video"}
        paths = schema["paths"]
        paths["/v1/chat/completions"]["post"]["requestBody"] = _request_body("ChatRequest", {
            "type": "object", "required": ["request"],
            "properties": {"request": {"type": "string", "description": "the ChatRequest as JSON"},
                           "file": file_field}})
        paths["/v1/analyze"]["post"]["requestBody"] = _request_body("AnalyzeRequest", {
            "type": "object", "required": ["file"], "properties": {"file": file_field}})
        app.openapi_schema = schema
        return schema

    app.openapi = openapi
