"""Zero-shot evaluation over an OpenAI-compatible API, against the local fake server (429 + Retry-After, resume)."""

from __future__ import annotations

import json

import pytest
from tests.evaluation.eval_fixtures import dfew_two_folds, rafdb_items, rafdb_root
from tests.instruct import fake_llm
from tests.instruct.fake_llm import FakeLLM

from emollama.evaluation.runner import build_items, evaluate
from emollama.instruct.client import ClientConfig

pytest.importorskip("openai")
ANSWERS = ["Happiness.", "I think the person is sad, not angry.", "happy or sad", "The person looks calm."]


@pytest.fixture
def zeroshot_replies(monkeypatch):
    """The fake server answers the FER question with free text chosen by the request seed + a counter."""
    calls = iter(range(10_000))

    def reply_for(prompt: str, seed: int, wrong_label: bool = False) -> dict:
        assert "Choose one from the following options" in prompt and "<image>" not in prompt
        return {"answer": ANSWERS[next(calls) % len(ANSWERS)]}

    monkeypatch.setattr(fake_llm, "reply_for", reply_for)


def _backend(url, ledger, frames=2):
    from emollama.evaluation.zeroshot import OpenAIZeroShotBackend

    cfg = ClientConfig(concurrency=1, backoff_base=0.01, max_retry_after=0.05)
    return OpenAIZeroShotBackend("fake-vlm", f"{url}/v1", frames=frames, client=cfg, ledger=ledger)


def test_zeroshot_images_with_a_429_then_resume(tmp_path, zeroshot_replies):
    info, items = rafdb_items(rafdb_root(tmp_path), limit=4)
    with FakeLLM(faults=["429"], retry_after="0.01") as srv:
        res = evaluate(_backend(srv.url, tmp_path / "o" / "ledger.sqlite"), items, info=info, mode="generate",
                       out_dir=tmp_path / "o", progress=False, n_boot=10)
        assert len(srv.requests) == 5  # 4 samples + 1 retry after the 429
        content = srv.requests[-1]["body"]["messages"][0]["content"]
        assert content[0]["type"] == "text" and content[1]["image_url"]["url"].startswith("data:image/jpeg;base64,")
        rep = res.reports["generate"]
        answers = [r.answer for r in rep.records]  # the fake wraps its text as {"answer": ...}
        assert sorted(json.loads(a)["answer"] for a in answers) == sorted(ANSWERS)
        status = {json.loads(r.answer)["answer"]: (r.status, r.pred) for r in rep.records}
        assert status["Happiness."] == ("ok", info.canonical.index("happiness"))
        assert status["I think the person is sad, not angry."] == ("ok", info.canonical.index("sadness"))
        assert status["happy or sad"][0] == "ambiguous"  # strict policy: counted, scored as wrong
        assert rep.to_dict()["unparseable"]["count"] == 1
        assert rep.provenance["model"] == "fake-vlm" and "zero-shot" in rep.provenance["backend"]
        # rerun in a fresh output dir with the same ledger: every reply is served from the ledger, no new request
        again = evaluate(_backend(srv.url, tmp_path / "o" / "ledger.sqlite"), items, info=info, mode="generate",
                         out_dir=tmp_path / "o2", progress=False, n_boot=10)
        assert len(srv.requests) == 5
        assert [r.answer for r in again.reports["generate"].records] == answers


def test_zeroshot_video_frames_and_permanent_failure(tmp_path, zeroshot_replies):
    from emollama.data.benchmarks import get_benchmark

    root = dfew_two_folds(tmp_path)
    bench = get_benchmark("dfew")
    info = bench.info()
    items = build_items([("1", bench.load(root, "test", 1).samples)], info)
    with FakeLLM(faults=["429"] * 4, retry_after="0") as srv:  # 2 tries per sample, both 429: counted as failed
        backend = _backend(srv.url, None, frames=2)
        backend.client.config.max_attempts = 2
        res = evaluate(backend, items, info=info, mode="generate", out_dir=tmp_path / "v", progress=False, n_boot=0)
        body = srv.requests[0]["body"]["messages"][0]["content"]
        assert sum(c["type"] == "image_url" for c in body) == 2 and "video" in body[0]["text"]
        rows = [json.loads(line) for line in (tmp_path / "v" / "predictions.jsonl").read_text().splitlines()]
        assert {r["status"] for r in rows} == {"api_failed"}
        rep = res.reports["generate"]
        assert rep.status_counts() == {"api_failed": 2} and len(rep.unparseable) == 2
        # the server recovered: --retry-failed asks again, only for the failed samples
        res = evaluate(_backend(srv.url, None, frames=2), items, info=info, mode="generate", out_dir=tmp_path / "v",
                       progress=False, n_boot=0, retry_failed=True)
        assert len(srv.requests) == 6
    assert res.reports["generate"].status_counts().get("api_failed") is None


def test_score_mode_is_refused_for_apis(tmp_path, zeroshot_replies):
    info, items = rafdb_items(rafdb_root(tmp_path), limit=1)
    with FakeLLM() as srv, pytest.raises(ValueError, match="cannot run mode 'score'"):
        evaluate(_backend(srv.url, None), items, info=info, mode="score", out_dir=tmp_path / "o", progress=False)
