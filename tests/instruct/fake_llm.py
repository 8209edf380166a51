"""A fake LLM HTTP server on 127.0.0.1 (stdlib only) speaking the two wire formats our SDKs use.

* OpenAI: ``POST /v1/chat/completions`` -> ``chat.completion`` JSON (``choices[0].message.content`` + ``usage``).
* Gemini (google-genai): ``POST /<api version>/models/<model>:generateContent`` -> ``candidates[0].content.parts``
  + ``usageMetadata``.

Replies are a pure function of the request (label from the prompt, seed from the body), so a resumed run and a clean
run see the same text. Faults are consumed FIFO from ``faults``: "429" (with Retry-After), "500", "slow" (sleeps past
the client timeout), "truncated_body" (HTTP body cut mid-JSON), "truncated_json" (model text cut mid-JSON),
"missing_field", "wrong_label" (names another class).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_LABEL = re.compile(r'expression of the person (?:in this image|in the clip) is\s+"([^"]+)"')


def reply_for(prompt: str, seed: int, wrong_label: bool = False) -> dict:
    """The JSON object the fake model returns for a prompt (video prompts get the follow-up fields)."""
    label = _LABEL.search(prompt).group(1)
    if wrong_label:
        label = "surprise" if label != "surprise" else "anger"
    out = {"answer": f"The person shows {label}. The brows and the mouth make the {label} clear (ref {seed})."}
    if "centre frame" in prompt:
        out["followup_question"] = "What is the person doing in the video?"
        out["followup_answer"] = "The person faces the camera; the cause of the expression cannot be seen."
    return out


class FakeLLM:
    """Context manager running the server in a daemon thread; ``url`` is ``http://127.0.0.1:<port>``."""

    def __init__(self, faults: list[str] | None = None, delay: float = 0.0, slow: float = 1.5,
                 retry_after: str = "1") -> None:
        self.faults = deque(faults or [])
        self.delay, self.slow, self.retry_after = delay, slow, retry_after
        self.requests: list[dict] = []  # {"path", "headers", "body"} of every request received
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self) -> FakeLLM:
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep test output clean
                pass

            def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                with fake.lock:
                    fake.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                    fault = fake.faults.popleft() if fake.faults else None
                if fake.delay:
                    time.sleep(fake.delay)
                if fault == "slow":
                    time.sleep(fake.slow)
                if fault == "429":
                    return self._send(429, b'{"error": {"code": 429, "message": "rate limited", "status": '
                                           b'"RESOURCE_EXHAUSTED"}}', {"Retry-After": fake.retry_after})
                if fault == "500":
                    return self._send(500, b'{"error": {"code": 500, "message": "boom", "status": "INTERNAL"}}')
                gemini = self.path.endswith(":generateContent")
                prompt, seed = _prompt_and_seed(body, gemini)
                text = json.dumps(reply_for(prompt, seed, wrong_label=fault == "wrong_label"))
                if fault == "truncated_json":
                    text = text[: len(text) // 2]
                if fault == "missing_field":
                    text = json.dumps({"reply": "hello"})
                payload = json.dumps(_gemini(text) if gemini else _openai(text, body.get("model", "m"))).encode()
                if fault == "truncated_body":
                    payload = payload[: len(payload) // 2]
                self._send(200, payload)

        return Handler


def _prompt_and_seed(body: dict, gemini: bool) -> tuple[str, int]:
    if gemini:
        parts = body["contents"][0]["parts"]
        return " ".join(p.get("text", "") for p in parts), body["generationConfig"].get("seed", 0)
    content = body["messages"][-1]["content"]
    text = content if isinstance(content, str) else " ".join(c.get("text", "") for c in content)
    return text, body.get("seed", 0)


def _gemini(text: str) -> dict:
    return {"candidates": [{"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": 100, "candidatesTokenCount": 20, "totalTokenCount": 120},
            "modelVersion": "gemini-fake-001"}


def _openai(text: str, model: str) -> dict:
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}


SECRET = "sk-test-SECRET-0123456789abcdef"  # the API key tests plant; it must never reach a log or a file


def make_samples(root, name: str = "rafdb", n: int = 3, fold: int | None = None) -> list:
    """``n`` samples of benchmark ``name`` with real tiny media under ``root``: JPEG images, or frame folders."""
    from pathlib import Path

    from PIL import Image

    from emollama.data.benchmarks import get_benchmark
    from emollama.data.benchmarks.base import Sample

    info = get_benchmark(name).info()
    video = info.modality == "video"
    out = []
    for i in range(n):
        sid = f"{i:05d}"
        rel = f"media/{sid}" if video else f"media/{sid}.jpg"
        path = Path(root) / rel
        if video:
            path.mkdir(parents=True, exist_ok=True)
            for f in range(3):
                Image.new("RGB", (8, 8), (10 * f, 20, 30)).save(path / f"{f:03d}.jpg")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (8, 8), (i * 20, 40, 60)).save(path)
        idx = i % len(info.canonical)
        out.append(Sample(sid, path, rel, video, idx, info.canonical[idx], "train", fold))
    return out


class FakeTime:
    """Fake ``sleep``/``clock`` pair: sleeping advances the clock instantly and records the duration."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)

    def clock(self) -> float:
        return self.now
