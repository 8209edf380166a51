"""Unit tests: quality gates, prompt files and reply parsing, the robust client's pieces (no network)."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest
from fake_llm import SECRET, FakeTime

from emollama.constants import RAFDB_CLASSES
from emollama.instruct.client import ClientConfig, Ledger, RobustClient, TokenBucket, ordered_map, redact, request_key
from emollama.instruct.gates import GateConfig, label_problem, length_problem, text_key
from emollama.instruct.providers import Generation, GenerationRequest, MalformedResponse, TransientError, Usage
from emollama.instruct.providers.base import parse_retry_after
from emollama.instruct.providers.prompts import load_prompts, parse_reply

MAFW = ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise", "contempt", "anxiety",
        "helplessness", "disappointment")


@pytest.mark.parametrize("answer, label, expected", [
    ("The person looks sad; the mouth corners are pulled down.", "sadness", None),
    ("She appears joyful with a broad smile.", "happiness", None),
    ("He is not angry but clearly sad.", "sadness", None),
    ("The person looks angry.", "sadness", "label_mismatch"),
    ("The person looks sad and a little angry.", "sadness", "label_ambiguous"),
    ("A contemptuous sneer, but mostly sad.", "sadness", "label_ambiguous"),  # contempt is not a RAF-DB class
    ("The mouth is open and the brows are raised.", "surprise", "label_missing"),
    ("She seems upset.", "sadness", "label_missing"),
])
def test_label_gate(answer, label, expected):
    assert label_problem([("q", answer)], label, RAFDB_CLASSES) == expected


def test_label_gate_checks_followups_and_dataset_words():
    turns = [("q", "She is sad."), ("Why is she angry?", "The cause cannot be seen.")]
    assert label_problem(turns, "sadness", RAFDB_CLASSES) == "question_names_other_class"
    joy = ("sadness", "joy", "surprise")  # FERID's "joy" vocabulary
    assert label_problem([("q", "The woman looks happy.")], "happiness", joy) is None
    assert label_problem([("q", "The woman looks helpless.")], "helplessness", MAFW) is None


def test_length_gate_and_dedupe_key():
    cfg = GateConfig(min_chars=10, max_chars=80, max_sentences=2)
    assert length_problem([("q", "Sad.")], cfg) == "too_short"
    assert length_problem([("q", "x" * 81)], cfg) == "too_long"
    assert length_problem([("q", "She is sad. Really. Very much so.")], cfg) == "too_many_sentences"
    assert length_problem([("q", "She is sad. Really.")], cfg) is None
    assert text_key([("a", "She is SAD!")]) == text_key([("b", "she  is sad")]) != text_key([("a", "He is sad")])


def _request(kind: str = "image", **kw) -> GenerationRequest:
    return GenerationRequest("rafdb/1", "sadness", "sadness", RAFDB_CLASSES, kind, None, "What is it?", 1, **kw)


def test_prompt_file_renders_every_slot():
    from emollama.faces.contract import AGRAttributes
    from emollama.instruct.providers import Cues

    p = load_prompts()
    for kind in ("image", "video"):
        cues = Cues(au={"AU15": 0.8, "AU1": 0.05}, agr=AGRAttributes("20-39", "female"), caption="A man waits.")
        system, user = p.render(_request(kind, cues=cues))
        assert '"sadness"' in user and "surprise, fear, disgust" in user and "What is it?" in user
        assert "AU15 0.80" in user and "AU1 " not in user and "adult woman" in user
        assert ("A man waits." in user) == (kind == "video") and "{" + "label}" not in user
        assert '{"answer": "..."' in user and system
        bare = p.render(_request(kind))[1]
        assert "Attributes" not in bare and "action cues" not in bare and "captioning" not in bare


def test_parse_reply():
    fields = ("answer", "followup_question", "followup_answer")
    turns = parse_reply('```json\n{"answer": "Sad.", "followup_question": "Why?", "followup_answer": "Unclear."}\n```',
                        _request("video"), fields)
    assert turns == (("What is it?", "Sad."), ("Why?", "Unclear."))
    with pytest.raises(MalformedResponse, match="truncated"):
        parse_reply('{"answer": "The person lo', _request(), ("answer",))
    with pytest.raises(MalformedResponse, match="missing"):
        parse_reply('{"answer": "Sad.", "followup_question": ""}', _request("video"), fields)
    with pytest.raises(MalformedResponse, match="empty"):
        parse_reply("", _request(), ("answer",))


def test_retry_after_and_redaction():
    assert parse_retry_after({"retry-after": "3"}) == 3.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert 0 <= parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) < 1
    assert parse_retry_after({}) is None and parse_retry_after({"retry-after": "soon"}) is None
    assert SECRET not in redact(f"bad key {SECRET} / ...{SECRET[-8:]}", [SECRET])


def test_client_retries_honour_retry_after_and_never_log_the_key(tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    ft = FakeTime()
    calls = iter([TransientError(f"429 for key {SECRET}", status=429, retry_after=7.0), MalformedResponse("cut"),
                  Generation((("q", "a"),), Usage(5, 2))])

    def fn():
        item = next(calls)
        if isinstance(item, Exception):
            raise item
        return item

    client = RobustClient(ClientConfig(backoff_base=0.01), Ledger(tmp_path / "l.sqlite"), [SECRET], ft.sleep, ft.clock)
    out = client.call("k", {"sample_id": "s"}, fn)
    assert out.status == "ok" and client.stats["retries"] == 2 and client.usage == Usage(5, 2)
    assert ft.sleeps and max(ft.sleeps) >= 7.0
    assert SECRET not in caplog.text
    # a second client over the same ledger serves the reply without calling fn
    again = RobustClient(ClientConfig(), Ledger(tmp_path / "l.sqlite"))
    assert again.call("k", {}, lambda: pytest.fail("called")).cached


def test_failed_requests_are_retried_on_rerun(tmp_path):
    ledger = Ledger(tmp_path / "l.sqlite")
    cfg = ClientConfig(max_attempts=2, backoff_base=0.0, jitter=0.0)

    def down():
        raise TransientError("503", status=503)

    assert RobustClient(cfg, ledger, sleep=lambda s: None).call("k", {}, down).status == "failed"
    assert ledger.counts() == {"failed": 1}
    out = RobustClient(cfg, ledger).call("k", {}, lambda: Generation((("q", "a"),)))
    assert out.status == "ok" and not out.cached and ledger.counts() == {"ok": 1}


def test_request_key_is_content_hash():
    a = request_key(provider="p", model="m", sample_id="s", seed=1)
    assert a == request_key(seed=1, sample_id="s", model="m", provider="p")
    assert a != request_key(provider="p", model="m", sample_id="s", seed=2)


def test_token_bucket_rate():
    ft = FakeTime()
    bucket = TokenBucket(rate=4.0, burst=2, sleep=ft.sleep, clock=ft.clock)
    for _ in range(6):
        bucket.acquire()
    assert sum(ft.sleeps) == pytest.approx(1.0)  # 2 free (burst), then 4 at 4/s


def test_ordered_map_order_and_bounded_concurrency():
    active, peak, lock = 0, 0, threading.Lock()

    def work(i: int) -> int:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.01 * (i % 3))
        with lock:
            active -= 1
        return i * i

    assert list(ordered_map(work, range(20), workers=3)) == [i * i for i in range(20)]
    assert peak <= 3


def test_media_centre_frame(tmp_path):
    from PIL import Image

    from emollama.instruct.providers.media import media_bytes

    for i in range(5):
        Image.new("RGB", (4, 4), (i * 50, 0, 0)).save(tmp_path / f"{i:03d}.png")
    data, mime = media_bytes(tmp_path, "video")
    assert mime == "image/png" and data == Path(tmp_path / "002.png").read_bytes()
