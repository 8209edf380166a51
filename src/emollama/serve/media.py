"""Media in requests: data: URLs (base64), http(s) URLs from allow-listed hosts only, and chat-message parsing.

Decoding the bytes into pixels is `emollama.api`'s job; here we only get bytes and decide image vs video.
"""

from __future__ import annotations

import base64
import binascii
import http.client
import logging
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

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


def _checked_url(url: str, settings: ServeSettings) -> tuple[str, str, int | None, str]:
    """(scheme, host, port, path) of an allow-listed http(s) URL, parsed once; the connection uses exactly these."""
    if any(c <= " " or c == "\x7f" for c in url):
        raise LimitError(400, "invalid media URL: it contains whitespace or control characters", code="invalid_url")
    parsed = urlsplit(url)
    if parsed.scheme not in ("http", "https"):
        raise LimitError(400, f"unsupported URL scheme {parsed.scheme or '(none)'!r}: send a data: URL",
                         code="invalid_url")
    if not settings.allow_url_hosts:
        raise LimitError(400, "http(s) media URLs are disabled on this server: send a data: URL, or start it with "
                         "--allow-url-host HOST", code="url_disabled")
    if "@" in parsed.netloc:  # user info is how a URL shows one host to a checker and another to a client
        raise LimitError(400, "media URLs with user info ('user@host') are refused", code="invalid_url")
    try:
        port = parsed.port
    except ValueError:
        raise LimitError(400, f"invalid port in the media URL host {parsed.netloc!r}", code="invalid_url") from None
    host = (parsed.hostname or "").lower()
    if host not in {h.lower() for h in settings.allow_url_hosts}:
        raise LimitError(403, f"host {host!r} is not in this server's --allow-url-host list", code="url_not_allowed")
    return parsed.scheme, host, port, (parsed.path or "/") + (f"?{parsed.query}" if parsed.query else "")


def fetch(url: str, settings: ServeSettings) -> tuple[str, bytes]:
    """GET an http(s) URL whose host is allow-listed; (content type, bytes), capped at the body limit.

    Redirects are not followed (they could leave the allow-list), and the whole download must finish within
    ``settings.url_timeout_s`` seconds (a server trickling bytes cannot hold a slot).
    """
    scheme, host, port, path = _checked_url(url, settings)
    conn_cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    limit, deadline = settings.max_body_bytes, time.monotonic() + settings.url_timeout_s
    conn = conn_cls(host, port, timeout=settings.url_timeout_s)
    try:
        conn.request("GET", path, headers={"User-Agent": "emollama", "Accept": "image/*, video/*"})
        sock = conn.sock  # kept: http.client drops conn.sock for a Connection: close response
        resp = conn.getresponse()
        if resp.status != 200:
            raise LimitError(400, f"could not fetch the media URL: HTTP {resp.status} {resp.reason}"
                             + (" (redirects are not followed)" if 300 <= resp.status < 400 else ""),
                             code="fetch_failed")
        ctype = (resp.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        chunks, size = [], 0
        while size <= limit:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"download not finished within {settings.url_timeout_s:g} s")
            sock.settimeout(left)  # no single read may outlast the whole-download deadline
            chunk = resp.read1(min(65536, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except (http.client.HTTPException, OSError, ValueError) as err:
        logger.info("fetching %s failed: %s", url, err)
        raise LimitError(400, f"could not fetch the media URL: {err}", code="fetch_failed") from None
    finally:
        conn.close()
    if size > limit:
        raise LimitError(413, f"the media at the URL is larger than {settings.max_body_mb:g} MB", code="too_large")
    return ctype, b"".join(chunks)


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
