"""The HTTP server on 127.0.0.1: the official `openai` client, exact status codes for bad requests, auth, limits,
`/v1/analyze` in the `emollama analyze` schema, the OpenAPI document, and the MLLM path with a tiny model."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from .conftest import data_url, png_bytes, serve

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

SCHEMA = json.loads((Path(__file__).parents[2] / "docs" / "analyze.schema.json").read_text())
openai = pytest.importorskip("openai")


def client(srv, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=srv.url + "/v1", api_key=key, max_retries=0, timeout=30)


def image_message(url: str, text: str = "How does this person feel?") -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": text},
                                         {"type": "image_url", "image_url": {"url": url}}]}]


# --- the official openai client against the real analyzer ------------------------------------------------------
@pytest.mark.media
def test_openai_client_chat_with_image(analyzer_server, astronaut_png):
    c = client(analyzer_server)
    assert [m.id for m in c.models.list()] == ["emollama-analyzer"]
    r = c.chat.completions.create(model="emollama-analyzer", messages=image_message(data_url(astronaut_png)))
    text = r.choices[0].message.content
    assert r.model == "emollama-analyzer" and r.choices[0].finish_reason == "stop"
    assert text.startswith("happiness (") and "AU12" in text
    faces = r.model_extra["emollama"]["faces"]
    assert faces[0]["label"] == "happiness" and len(faces[0]["box"]) == 4


@pytest.mark.media
def test_openai_client_streaming(analyzer_server, astronaut_png):
    stream = client(analyzer_server).chat.completions.create(
        model="emollama-analyzer", messages=image_message(data_url(astronaut_png)), stream=True)
    chunks = list(stream)
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks)
    assert len(chunks) > 3 and chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop" and "happiness" in text


@pytest.mark.media
def test_openai_client_error_paths(analyzer_server, astronaut_png):
    c = client(analyzer_server)
    with pytest.raises(openai.NotFoundError, match="not served here"):
        c.chat.completions.create(model="gpt-4o", messages=image_message(data_url(astronaut_png)))
    with pytest.raises(openai.BadRequestError, match="no image or video"):
        c.chat.completions.create(model="emollama-analyzer", messages=[{"role": "user", "content": "hello"}])
    with pytest.raises(openai.BadRequestError, match="invalid base64"):
        c.chat.completions.create(model="emollama-analyzer", messages=image_message("data:image/png;base64,%%%"))


@pytest.mark.media
def test_analyze_endpoint_records_match_the_cli_schema(analyzer_server, astronaut_png):
    jsonschema = pytest.importorskip("jsonschema")
    r = httpx.post(analyzer_server.url + "/v1/analyze", files={"file": ("astronaut.png", astronaut_png, "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["media"] == "image" and body["model"] == "emollama-analyzer"
    for rec in body["records"]:
        jsonschema.validate(rec, SCHEMA)
    assert body["records"][0]["label"] == "happiness" and body["records"][0]["source"] == "astronaut.png"
    r2 = httpx.post(analyzer_server.url + "/v1/analyze", json={"image_url": data_url(astronaut_png)})
    assert r2.json()["records"][0]["box"] == body["records"][0]["box"]


# --- bad requests: exact status codes (dependency-free synthetic backend) ----------------------------------------
AUTH = {"Authorization": "Bearer s3cret"}


def flat_png(w: int, h: int) -> bytes:
    """A large but tiny-to-send PNG (one colour compresses to a few KB)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (w, h), (90, 120, 150)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize(("kwargs", "status", "needle"), [
    ({"content": b"{}", "headers": {"content-type": "text/plain"}}, 415, "unsupported content type"),
    ({"content": b'{"messages": [', "headers": {"content-type": "application/json"}}, 400, "not valid JSON"),
    ({"json": {"messages": []}}, 422, "messages"),
    ({"json": {"messages": [{"role": "robot", "content": "x"}]}}, 422, "messages.0.role"),
    ({"json": {"messages": image_message("data:image/png;base64,not*base64!")}}, 400, "invalid base64"),
    ({"json": {"messages": image_message(data_url(b"GIF89a but not really an image"))}}, 400, "not a recognised image"),
    ({"json": {"messages": image_message("https://example.com/face.jpg")}}, 400, "--allow-url-host"),
    ({"json": {"messages": image_message(data_url(flat_png(1200, 1000)))}}, 413, "image too large"),
    ({"content": b"x" * (1024 * 1024 + 10), "headers": {"content-type": "application/json"}}, 413, "too large"),
])
def test_bad_requests_get_exact_status_codes(synthetic_server, kwargs, status, needle):
    headers = {**AUTH, **kwargs.pop("headers", {})}
    r = httpx.post(synthetic_server.url + "/v1/chat/completions", headers=headers, timeout=30, **kwargs)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert needle in err["message"] and "Traceback" not in r.text


def test_chunked_oversized_body_is_413(synthetic_server):
    def body():
        for _ in range(40):
            yield b"x" * 65536  # 2.5 MB without a Content-Length

    r = httpx.post(synthetic_server.url + "/v1/analyze", content=body(), headers={**AUTH, "content-type":
                                                                                   "application/json"})
    assert r.status_code == 413


def test_api_key(synthetic_server):
    url, ok = synthetic_server.url, image_message(data_url(png_bytes()))
    assert httpx.post(url + "/v1/chat/completions", json={"messages": ok}).status_code == 401
    r = httpx.post(url + "/v1/chat/completions", json={"messages": ok}, headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert httpx.get(url + "/v1/models", headers={"Authorization": "s3cret"}).status_code == 401  # no scheme
    assert httpx.post(url + "/v1/chat/completions", json={"messages": ok}, headers=AUTH).status_code == 200
    with pytest.raises(openai.AuthenticationError):
        client(synthetic_server, "wrong").models.list()
    assert client(synthetic_server, "s3cret").models.list().data[0].id == "emollama-analyzer"
    assert httpx.get(url + "/health").json()["auth"] is True  # health and the demo stay open
    assert httpx.get(url + "/demo/").status_code == 200


def test_openapi_is_published(synthetic_server):
    spec = httpx.get(synthetic_server.url + "/openapi.json").json()
    for path in ("/v1/chat/completions", "/v1/analyze", "/v1/models", "/health"):
        assert path in spec["paths"]
    body = spec["paths"]["/v1/chat/completions"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "multipart/form-data"}
    assert "messages" in spec["components"]["schemas"]["ChatRequest"]["properties"]


# --- admission control ---------------------------------------------------------------------------------------
class Slow:
    """A predictor that sleeps; counts how many run at once."""

    name = "slow"

    def __init__(self, delay: float) -> None:
        self.delay, self.active, self.peak = delay, 0, 0

    def spawn(self):
        return self

    def load(self):
        pass

    def close(self):
        pass


def test_admission_queue_429_and_timeout_504():
    from emollama.serve.limits import Admission, LimitError

    slow = Slow(0.3)

    def work(p):
        p.active += 1
        p.peak = max(p.peak, p.active)
        time.sleep(p.delay)
        p.active -= 1
        return "ok"

    async def burst():
        adm = Admission([slow], queue_size=2, timeout_s=5)
        results = await asyncio.gather(*[adm.run(work) for _ in range(5)], return_exceptions=True)
        return adm, results

    adm, results = asyncio.run(burst())
    busy = [r for r in results if isinstance(r, LimitError)]
    assert results.count("ok") == 3 and [b.status for b in busy] == [429, 429]
    assert int(busy[0].headers["Retry-After"]) >= 1 and slow.peak == 1 and adm.stats()["peak_admitted"] == 3

    async def too_slow():
        adm = Admission([Slow(0.0)], queue_size=0, timeout_s=0.2)
        with pytest.raises(LimitError) as err:
            await adm.run(lambda p: time.sleep(0.6))
        await asyncio.sleep(0.6)  # the slot frees only when the work really ends
        return err.value, adm.stats()

    err, stats = asyncio.run(too_slow())
    assert err.status == 504 and stats["running"] == 0


# --- the MLLM path with a tiny model -----------------------------------------------------------------------------
@pytest.mark.media
def test_mllm_server_chat_and_follow_up(real_analyzer, tiny_mp_dir, astronaut_png):
    from emollama.api import EmoLlama

    srv = serve(EmoLlama.from_pretrained(tiny_mp_dir, analyzer=real_analyzer, max_new_tokens=4))
    try:
        c = client(srv)
        model = c.models.list().data[0]
        assert model.id.startswith("emollama-mllm:") and model.model_extra["kind"] == "mllm"
        msgs = image_message(data_url(astronaut_png))
        r = c.chat.completions.create(model=model.id, messages=msgs, max_tokens=3)
        answer = r.choices[0].message.content
        assert isinstance(answer, str) and r.model_extra["emollama"]["faces"][0]["agr"]
        follow = [*msgs, {"role": "assistant", "content": answer}, {"role": "user", "content": "Why?"}]
        r2 = c.chat.completions.create(model=model.id, messages=follow, stream=True)
        assert list(r2)[-1].choices[0].finish_reason == "stop"
        up = httpx.post(srv.url + "/v1/chat/completions", timeout=30,
                        data={"request": json.dumps({"messages": [{"role": "user", "content": "Feeling?"}]})},
                        files={"file": ("a.png", astronaut_png, "image/png")})
        assert up.status_code == 200 and up.json()["emollama"]["faces"][0]["record"]["label"] == "happiness"
    finally:
        srv.stop()


class Boom(Slow):
    name = "boom"

    def predict(self, **_):
        raise RuntimeError("secret internal detail /srv/x.py line 3")


def test_internal_errors_never_leak_a_traceback():
    srv = serve(Boom(0.0))
    try:
        r = httpx.post(srv.url + "/v1/chat/completions", json={"messages": image_message(data_url(png_bytes()))})
        assert r.status_code == 500
        assert "secret" not in r.text and "Traceback" not in r.text and r.json()["error"]["type"] == "server_error"
        assert httpx.get(srv.url + "/health").json()["running"] == 0
    finally:
        srv.stop()
