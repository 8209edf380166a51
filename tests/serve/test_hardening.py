"""Issue #10 hardening of `emollama serve`, one regression test per item: JSON nesting depth (400, not 500), empty API
keys refused at start-up, URL downloads under admission, one URL parse for the allow-list and the connection, and
header / keep-alive / body timeouts against slow clients. Everything runs on 127.0.0.1 with bounded waits."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time

import pytest

from emollama.media.errors import MediaError, MediaTooLarge

from .conftest import data_url, png_bytes, serve

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

AUTH = {"Authorization": "Bearer s3cret"}


def chat_body(url: str, text: str = "How?") -> dict:
    return {"messages": [{"role": "user", "content": [{"type": "text", "text": text},
                                                      {"type": "image_url", "image_url": {"url": url}}]}]}


# --- 1. JSON nesting depth -------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/analyze"])
@pytest.mark.parametrize("nest", [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000])
def test_deeply_nested_json_is_400_not_500(synthetic_server, path, nest):
    r = httpx.post(synthetic_server.url + path, content=nest, timeout=30,
                   headers={**AUTH, "content-type": "application/json"})
    assert r.status_code == 400, r.text[:300]
    assert r.json()["error"]["code"] == "json_too_deep" and "nested" in r.json()["error"]["message"]


def test_deeply_nested_multipart_request_field_is_400(synthetic_server):
    r = httpx.post(synthetic_server.url + "/v1/chat/completions", headers=AUTH, timeout=30,
                   data={"request": "[" * 50_000 + "]" * 50_000}, files={"file": ("a.png", png_bytes(), "image/png")})
    assert r.status_code == 400 and r.json()["error"]["code"] == "json_too_deep"


def test_brackets_inside_strings_do_not_count_as_depth(synthetic_server):
    body = chat_body(data_url(png_bytes()), text='[{"\\"' * 20_000)
    r = httpx.post(synthetic_server.url + "/v1/chat/completions", json=body, headers=AUTH, timeout=30)
    assert r.status_code == 200, r.text[:300]


def test_json_depth_scan_unit():
    from emollama.serve.limits import LimitError, json_depth, loads_bounded

    assert json_depth(b'{"a": [1, {"b": "]]]]}}}[[[["}], "c": "\\"[["}') == 3
    assert json_depth(b"[" * 10 + b"]" * 10) == 10 and json_depth(b'"just a string"') == 0
    assert loads_bounded(b'{"x": [[1]]}', max_depth=3) == {"x": [[1]]}
    with pytest.raises(LimitError) as err:
        loads_bounded(b'{"x": [[[1]]]}', max_depth=3)
    assert err.value.status == 400 and err.value.code == "json_too_deep"
    t0 = time.monotonic()  # an unterminated string of escaped quotes: a naive string regex rescans it per quote
    assert json_depth("[" * 70 + '"' + '\\"' * 200_000) == 70 and time.monotonic() - t0 < 5


# --- 2. empty API keys --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("argv", "env"), [(["--api-key", ""], None), (["--api-key", "   "], None),
                                           (["--api-key", "good", "--api-key", ""], None), ([], " \t")])
def test_empty_or_blank_api_key_is_refused_at_start_up(monkeypatch, capsys, argv, env):
    import uvicorn

    from emollama.cli.__main__ import main

    bound = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: bound.append(k))  # a failure must never reach the bind
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, *a, **k: bound.append(self))
    if env is None:
        monkeypatch.delenv("EMOLLAMA_API_KEY", raising=False)
    else:
        monkeypatch.setenv("EMOLLAMA_API_KEY", env)
    assert main(["serve", "--backend", "synthetic", "--host", "0.0.0.0", *argv]) == 1
    assert not bound and "API key" in capsys.readouterr().err


def test_settings_refuse_blank_keys_and_auth_refuses_an_empty_token(synthetic_server):
    from emollama.serve.limits import ServeSettings

    for bad in [("",), ("  ",), ("ok", "\t")]:
        with pytest.raises(ValueError, match="API key"):
            ServeSettings(api_keys=bad)
    for header in ["Bearer", "bearer", ""]:  # h11 strips trailing spaces, so 'Bearer ' arrives as 'Bearer'
        assert httpx.get(synthetic_server.url + "/v1/models", headers={"Authorization": header}).status_code == 401


# --- 3. URL downloads under admission ------------------------------------------------------------------------------
class SlowMedia:
    """A 127.0.0.1 HTTP server whose responses (a PNG) wait until `release`; counts the requests that arrived."""

    def __init__(self) -> None:
        self.gate, self.arrived, png = threading.Event(), 0, png_bytes()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                outer.arrived += 1
                outer.gate.wait(20)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(png)))
                self.end_headers()
                self.wfile.write(png)

            def log_message(self, *_):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/face.png"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.gate.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def test_url_downloads_count_against_admission():
    from emollama.api import Analyzer

    media, srv = SlowMedia(), serve(Analyzer("synthetic"), allow_url_hosts=("127.0.0.1",), max_concurrency=1,
                                    queue=1, url_timeout_s=20)
    results: list[int] = []

    def post(path: str, body: dict) -> None:
        results.append(httpx.post(srv.url + path, json=body, timeout=30).status_code)

    threads = [threading.Thread(target=post, args=("/v1/chat/completions", chat_body(media.url))),
               threading.Thread(target=post, args=("/v1/analyze", {"image_url": media.url}))]
    try:
        for t in threads:
            t.start()
        deadline, stats = time.monotonic() + 10, {}
        while time.monotonic() < deadline:  # both downloads admitted: one running, one queued behind it
            stats = httpx.get(srv.url + "/health").json()
            if stats["running"] + stats["queued"] == 2:
                break
            time.sleep(0.05)
        assert stats["running"] == 1 and stats["queued"] == 1, stats
        assert media.arrived == 1  # the queued one has not started its download
        t0 = time.monotonic()
        busy = httpx.post(srv.url + "/v1/chat/completions", json=chat_body(data_url(png_bytes())), timeout=30)
        assert busy.status_code == 429 and int(busy.headers["Retry-After"]) >= 1
        assert time.monotonic() - t0 < 2  # refused at once, not after the downloads
        media.gate.set()
        for t in threads:
            t.join(30)
        assert sorted(results) == [200, 200]
        assert httpx.get(srv.url + "/health").json()["running"] == 0
    finally:
        media.close()
        srv.stop()


# --- 4. one URL parse for the allow-list and the connection -------------------------------------------------------
@pytest.fixture
def connections(monkeypatch):
    """Every (host, port) the process tries to connect to; none succeeds."""
    seen: list[tuple[str, int]] = []

    def refuse(address, *_a, **_k):
        seen.append(address)
        raise ConnectionRefusedError("test: no network")

    monkeypatch.setattr(socket, "create_connection", refuse)
    return seen


@pytest.mark.parametrize("url", ["http://127.0.0.1%23@example.com/x.png", "http://user:pw@example.com/x.png",
                                 "http://127.0.0.1:80%23@example.com/x.png", "http://example.com\\@127.0.0.1/x.png",
                                 "https://@example.com/x.png"])
def test_urls_with_user_info_are_refused_before_connecting(connections, url):
    from emollama.serve.limits import LimitError, ServeSettings
    from emollama.serve.media import fetch

    with pytest.raises(LimitError) as err:
        fetch(url, ServeSettings(allow_url_hosts=("example.com",)))
    assert err.value.status == 400 and "user info" in err.value.message and connections == []


def test_the_connection_goes_to_exactly_the_checked_host(connections):
    from emollama.serve.limits import LimitError, ServeSettings
    from emollama.serve.media import fetch

    settings = ServeSettings(allow_url_hosts=("example.com", "::1"))
    for url in ["http://Example.COM/a.png?x=1#frag", "https://example.com:8443/b.png", "http://[::1]:9/c.png"]:
        with pytest.raises(LimitError, match="could not fetch"):
            fetch(url, settings)
    assert [(h.lower(), p) for h, p in connections] == [("example.com", 80), ("example.com", 8443), ("::1", 9)]
    for bad in ["http://example.com:99999/x", "http://example.com/a b", "http://evil.com/x", "ftp://example.com/x"]:
        with pytest.raises(LimitError):
            fetch(bad, settings)
    assert len(connections) == 3


# --- 5. header, keep-alive and body timeouts ------------------------------------------------------------------------
def closed_within(sock: socket.socket, limit_s: float) -> tuple[bool, float, bytes]:
    """Read until the server closes (True) or ``limit_s`` passes (False); also the elapsed time and the bytes read."""
    t0, got = time.monotonic(), b""
    sock.settimeout(0.1)
    while time.monotonic() - t0 < limit_s:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except ConnectionError:
            return True, time.monotonic() - t0, got
        if not chunk:
            return True, time.monotonic() - t0, got
        got += chunk
    return False, time.monotonic() - t0, got


@pytest.fixture(scope="module")
def short_timeouts_server():
    from emollama.api import Analyzer

    srv = serve(Analyzer("synthetic"), header_timeout_s=0.5, keep_alive_s=0.5, body_timeout_s=0.5)
    yield srv
    srv.stop()


def test_a_stalled_header_is_disconnected(short_timeouts_server):
    with socket.create_connection(("127.0.0.1", short_timeouts_server.port), timeout=5) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")  # then nothing
        closed, elapsed, _ = closed_within(s, 5)
    assert closed and elapsed < 3


def test_a_header_trickled_byte_by_byte_is_still_cut_off(short_timeouts_server):
    with socket.create_connection(("127.0.0.1", short_timeouts_server.port), timeout=5) as s:
        s.sendall(b"GET /health HTTP/1.1\r\n")
        t0, closed = time.monotonic(), False
        for _ in range(40):  # one header byte every 0.1 s: each resets an idle timer, never the deadline
            try:
                s.sendall(b"X")
            except OSError:
                closed = True
                break
            closed, _, _ = closed_within(s, 0.1)
            if closed:
                break
    assert closed and time.monotonic() - t0 < 3


def test_a_silent_connection_and_an_idle_keep_alive_are_closed(short_timeouts_server):
    with socket.create_connection(("127.0.0.1", short_timeouts_server.port), timeout=5) as s:
        closed, elapsed, _ = closed_within(s, 5)  # connected, sent nothing
    assert closed and elapsed < 3
    with socket.create_connection(("127.0.0.1", short_timeouts_server.port), timeout=5) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        closed, elapsed, got = closed_within(s, 5)
    assert got.startswith(b"HTTP/1.1 200") and closed and elapsed < 3


def test_a_stalled_body_gets_408(short_timeouts_server):
    with socket.create_connection(("127.0.0.1", short_timeouts_server.port), timeout=5) as s:
        s.sendall(b"POST /v1/analyze HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000\r\n\r\n{\"image_url\": ")
        closed, elapsed, got = closed_within(s, 5)
    assert got.startswith(b"HTTP/1.1 408") and closed and elapsed < 3
    assert json.loads(got.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "body_timeout"


def test_cli_defaults_are_the_settings_defaults():
    """The serve limits are stated once (ServeSettings); argparse reads them."""
    from dataclasses import fields

    from emollama.cli.__main__ import build_parser
    from emollama.cli.serve import build
    from emollama.serve.limits import ServeSettings

    _, s = build(build_parser().parse_args(["serve", "--backend", "synthetic"]))
    for f in fields(ServeSettings):
        if f.name != "api_keys":
            assert getattr(s, f.name) == getattr(ServeSettings(), f.name), f.name


def test_timeouts_are_flags_in_seconds(capsys):
    from emollama.cli.__main__ import build_parser
    from emollama.cli.serve import build

    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--header-timeout-s", "--keep-alive-s", "--body-timeout-s"):
        assert flag in text
    assert text.count("seconds") >= 4
    _, s = build(build_parser().parse_args(["serve", "--backend", "synthetic", "--header-timeout-s", "3",
                                            "--keep-alive-s", "2", "--body-timeout-s", "7"]))
    assert (s.header_timeout_s, s.keep_alive_s, s.body_timeout_s) == (3, 2, 7)


# --- media errors map by type, never by message -------------------------------------------------------------------
class _Raising:
    """A predictor whose analyze() raises ``err``: just enough of the `emollama.api` predictor contract."""

    name = "raising"

    def __init__(self, err: Exception) -> None:
        self.err = err

    def spawn(self):
        return _Raising(self.err)

    def load(self) -> None:
        pass

    def close(self) -> None:
        pass

    def analyze(self, **_kw):
        raise self.err


@pytest.mark.parametrize("err, status, code", [
    (MediaTooLarge("upload", "video too long", "90 s > 60 s", "trim it"), 413, "media_too_large"),
    (MediaError("upload", "image too large", "a plain MediaError", "resize it"), 400, "invalid_media"),  # no text match
    (MediaError("upload", "unreadable image"), 400, "invalid_media"),
])
def test_media_errors_map_to_status_by_type(err, status, code):
    srv = serve(_Raising(err))
    try:
        r = httpx.post(srv.url + "/v1/analyze", json={"image_url": data_url(png_bytes())}, timeout=30)
        assert r.status_code == status and r.json()["error"]["code"] == code, r.text
    finally:
        srv.stop()
