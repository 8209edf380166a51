"""Media in requests: data: URLs (base64), http(s) URLs from allow-listed hosts only, and chat-message parsing.

Decoding the bytes into pixels is `emollama.api`'s job; here we only get bytes and decide image vs video.
"""

from __future__ import annotations

import base64
import binascii
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlparse

from emollama.serve.limits import LimitError, ServeSettings
from emollama.serve.schemas import ChatRequest

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Media:
    kind: str  # "image" | "video"
    data: bytes
    source: str


@dataclass(frozen=True)
class ChatInput:
    media: Media | None
    media_url: str | None
    media_kind: str | None
    question: str
    history: list[dict[str, str]]


def _text(content) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(p.text for p in content if p.type == "text" and p.text)


def parse_chat(req: ChatRequest) -> ChatInput:
    """The last image/video in the conversation, the last user message's text and the earlier text turns."""
    url = kind = None
    for m in req.messages:
        for p in m.content if isinstance(m.content, list) else []:
            if p.type in ("image_url", "video_url"):
                ref = p.image_url if p.type == "image_url" else p.video_url
                if ref is None:
                    raise LimitError(422, f"invalid request: a {p.type!r} part needs a {p.type!r} object with a url")
                url, kind = ref.url, "image" if p.type == "image_url" else "video"
    users = [i for i, m in enumerate(req.messages) if m.role == "user"]
    if not users:
        raise LimitError(422, "invalid request: messages need at least one 'user' message")
    last = users[-1]
    history = [{"role": m.role, "content": _text(m.content)} for m in req.messages[:last]
               if m.role in ("user", "assistant")]
    return ChatInput(None, url, kind, _text(req.messages[last].content).strip(), history)


def decode_data_url(url: str) -> tuple[str, bytes]:
    """'data:image/png;base64,...' -> ('image/png', bytes); 400 on anything malformed."""
    header, sep, payload = url[5:].partition(",")
    params = [x.strip().lower() for x in header.split(";")]
    if not sep or "base64" not in params[1:]:
        raise LimitError(400, "malformed data URL: expected data:<mime type>;base64,<data>", code="invalid_data_url")
    try:
        data = base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError):
        raise LimitError(400, "invalid base64 in the data URL", code="invalid_base64") from None
    if not data:
        raise LimitError(400, "the data URL is empty", code="empty_media")
    return params[0], data


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # a redirect could leave the allow-list
        raise urllib.error.HTTPError(req.full_url, code, f"redirect to {newurl} refused", headers, fp)


def fetch(url: str, settings: ServeSettings) -> tuple[str, bytes]:
    """GET an http(s) URL whose host is allow-listed; (content type, bytes), capped at the body limit."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https"):
        raise LimitError(400, f"unsupported URL scheme {parsed.scheme or '(none)'!r}: send a data: URL",
                         code="invalid_url")
    if not settings.allow_url_hosts:
        raise LimitError(400, "http(s) media URLs are disabled on this server: send a data: URL, or start it with "
                         "--allow-url-host HOST", code="url_disabled")
    host = (parsed.hostname or "").lower()
    if host not in {h.lower() for h in settings.allow_url_hosts}:
        raise LimitError(403, f"host {host!r} is not in this server's --allow-url-host list", code="url_not_allowed")
    opener = urllib.request.build_opener(_NoRedirect)
    limit = settings.max_body_bytes
    try:
        with opener.open(urllib.request.Request(url, headers={"User-Agent": "emollama"}),
                         timeout=settings.url_timeout_s) as resp:
            data = resp.read(limit + 1)
            ctype = (resp.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    except (urllib.error.URLError, OSError, ValueError) as err:
        logger.info("fetching %s failed: %s", url, err)
        raise LimitError(400, f"could not fetch the media URL: {err}", code="fetch_failed") from None
    if len(data) > limit:
        raise LimitError(413, f"the media at the URL is larger than {settings.max_body_mb:g} MB", code="too_large")
    return ctype, data


def load(url: str, kind: str, settings: ServeSettings) -> Media:
    """Bytes of an image_url / video_url; a video/* (or image/*) MIME type overrides the part type."""
    if url.startswith("data:"):
        mime, data = decode_data_url(url)
        source = "data-url"
    else:
        mime, data = fetch(url, settings)
        source = url
    if mime.startswith("video/"):
        kind = "video"
    elif mime.startswith("image/"):
        kind = "image"
    return Media(kind, data, source)
