"""Both API providers (google-genai and openai SDKs) against a local fake server, with injected faults.

Backoff waits run on a fake clock (instant, recorded), so a Retry-After of 1 s is checked without sleeping. The
SDK timeout is real (0.5 s) and the "slow" fault sleeps past it.
"""

from __future__ import annotations

import json
import logging

import fake_llm
import pytest
from fake_llm import SECRET, FakeLLM, FakeTime, make_samples, reply_for

from emollama.data.schema import read_jsonl
from emollama.instruct.client import ClientConfig
from emollama.instruct.conversation import generate_conversations
from emollama.instruct.providers import build_provider

pytest.importorskip("openai")
pytest.importorskip("google.genai")

FAST = ClientConfig(concurrency=1, max_attempts=5, max_malformed=3, backoff_base=0.01, backoff_max=0.05,
                    timeout=0.5)


@pytest.fixture(autouse=True)
def _keys(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.setenv("EMOLLAMA_KEYS_FILE", str(tmp_path / "no-keys.yaml"))


def _provider(name: str, url: str):
    if name == "openai":
        return build_provider("openai", model="fake-vlm", base_url=f"{url}/v1", timeout=FAST.timeout)
    return build_provider("gemini", model="gemini-fake", base_url=url, timeout=FAST.timeout)


def _run(name, server, tmp_path, samples, dataset="rafdb", cfg=FAST, **kw):
    ft = FakeTime()
    rep = generate_conversations(samples, dataset, _provider(name, server.url), tmp_path / "out.jsonl",
                                 tmp_path / "ledger.sqlite", seed=3, client_config=cfg, sleep=ft.sleep,
                                 clock=ft.clock, **kw)
    return rep, list(read_jsonl(tmp_path / "out.jsonl")), ft


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_clean_run_image_and_video(provider, tmp_path):
    images, clips = make_samples(tmp_path, "rafdb", 3), make_samples(tmp_path, "dfew", 2, fold=1)
    with FakeLLM() as server:
        rep, recs, _ = _run(provider, server, tmp_path, images)
        assert rep["generated"] == 3 and rep["n_rejected"] == 0
        assert rep["tokens"] == {"prompt": 300, "completion": 60, "total": 360, "paid_this_run": 360}
        r = recs[0]
        assert r.image == "media/00000.jpg" and r.kind == "conversation" and r.label_name == images[0].label
        assert r.conversations[0].value.startswith("<image>\n") and len(r.conversations) == 2
        assert r.label_name in r.conversations[1].value
        assert r.generator.startswith(f"{provider}:") and r.extra["prompt_version"] == "conversation_v1"
        req = server.requests[0]
        sent = json.dumps(req["body"])
        assert images[0].label in sent and ("inlineData" in sent or "data:image/jpeg;base64," in sent)
        # video: centre frame attached, two turns, follow-up hedges
        rep2, recs2, _ = _run(provider, server, tmp_path / "v", clips, dataset="dfew")
        assert rep2["generated"] == 2 and recs2[0].video == "media/00000" and len(recs2[0].conversations) == 4
        assert "cannot be seen" in recs2[0].conversations[3].value


@pytest.mark.parametrize("provider", ["openai", "gemini"])
def test_faults_are_retried_and_outputs_are_right(provider, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    samples = make_samples(tmp_path, "rafdb", 4)
    # FIFO over requests (concurrency 1): sample 0 gets 429, 500, a timeout, then succeeds; sample 1 two malformed
    # replies; sample 2 a malformed reply then a valid one naming the wrong class (label gate -> new attempt)
    faults = ["429", "500", "slow", "ok", "truncated_body", "truncated_json", "ok", "missing_field", "wrong_label"]
    with FakeLLM(faults=faults, retry_after="1") as server:
        rep, recs, ft = _run(provider, server, tmp_path, samples)
    assert rep["generated"] == 4 and rep["n_rejected"] == 0
    assert [r.label_name for r in recs] == [s.label for s in samples]
    for r, s in zip(recs, samples, strict=True):  # the fake model's reply for the right label

        assert r.conversations[1].value.startswith(f"The person shows {s.label}.")
    req = rep["requests"]
    assert req["transient:429"] == 1 and req["transient:500"] == 1 and req["transient:timeout"] == 1
    assert req["malformed"] == 3  # truncated body, truncated model JSON, missing field
    assert rep["gate_failures_retried"] == {"label_mismatch": 1}
    assert req["requests"] == len(server.requests) == 4 + len(faults) - faults.count("ok")
    assert any(s >= 1.0 for s in ft.sleeps), f"Retry-After: 1 not honoured: {ft.sleeps}"
    # the key went to the server but never to a log, the ledger or the output
    assert any(SECRET in json.dumps(r["headers"]) for r in server.requests)
    assert SECRET not in caplog.text
    for f in tmp_path.iterdir():
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f.name


def test_exhausted_retries_drop_and_count(tmp_path):
    samples = make_samples(tmp_path, "rafdb", 2)
    with FakeLLM(faults=["500"] * FAST.max_attempts) as server:
        rep, recs, _ = _run("openai", server, tmp_path, samples)
    assert rep["generated"] == 1 and rep["rejected"] == {"api_failed": 1}
    assert recs[0].id == "rafdb/00001/conversation"


def test_label_gate_drops_after_retries(tmp_path):
    samples = make_samples(tmp_path, "rafdb", 1)
    with FakeLLM(faults=["wrong_label"] * 3) as server:
        rep, recs, _ = _run("openai", server, tmp_path, samples)
    assert recs == [] and rep["rejected"] == {"label_mismatch": 1}
    assert rep["gate_failures_retried"] == {"label_mismatch": 3} and len(server.requests) == 3


def test_duplicate_text_is_dropped(tmp_path, monkeypatch):
    samples = make_samples(tmp_path, "rafdb", 8)[::7]  # two samples with the same label (index 0)
    monkeypatch.setattr(fake_llm, "reply_for", lambda prompt, seed, wrong_label=False: reply_for(prompt, 0))
    with FakeLLM() as server:
        rep, recs, _ = _run("openai", server, tmp_path, samples)
    assert rep["generated"] == 1 and rep["rejected"] == {"duplicate": 1}


def test_rate_limit_spaces_requests(tmp_path):
    samples = make_samples(tmp_path, "rafdb", 4)
    cfg = ClientConfig(concurrency=1, rate=2.0, burst=1, timeout=1.0)
    with FakeLLM() as server:
        rep, _, ft = _run("openai", server, tmp_path, samples, cfg=cfg)
    assert rep["generated"] == 4
    assert sum(ft.sleeps) == pytest.approx(1.5, abs=0.05)  # 4 requests at 2/s: 3 waits of 0.5 s


def test_missing_key_is_a_clear_error(monkeypatch):
    from emollama.instruct.providers import PermanentError

    monkeypatch.setenv("EMOLLAMA_OFFLINE", "1")
    with pytest.raises(PermanentError, match="EMOLLAMA_OFFLINE"):  # the test suite can never reach a real API
        build_provider("gemini")
    monkeypatch.setenv("EMOLLAMA_OFFLINE", "0")
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(PermanentError, match="OPENAI_API_KEY"):
        build_provider("openai", base_url="https://api.example.com/v1")
    assert build_provider("openai", base_url="http://localhost:11434/v1").secrets() == ()  # Ollama needs none


def test_key_from_config_file(monkeypatch, tmp_path):
    from emollama.instruct.providers import resolve_api_key

    monkeypatch.delenv("GEMINI_API_KEY")
    monkeypatch.setenv("EMOLLAMA_OFFLINE", "0")
    keys = tmp_path / "keys.yaml"
    keys.write_text("gemini: from-file-key\n")
    monkeypatch.setenv("EMOLLAMA_KEYS_FILE", str(keys))
    assert resolve_api_key("gemini", ("GEMINI_API_KEY",)) == "from-file-key"
    assert "from-file-key" not in repr(build_provider("gemini"))
