"""kill -9 in the middle of an API run, then resume: the final JSONL equals a clean run's, byte for byte, and no
finished request is paid twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from fake_llm import SECRET, FakeLLM, make_samples

from emollama.instruct.client import ClientConfig
from emollama.instruct.conversation import generate_conversations
from emollama.instruct.providers import build_provider

pytest.importorskip("openai")

N = 12
CFG = dict(concurrency=2, backoff_base=0.01, backoff_max=0.05, timeout=5.0)
SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from fake_llm import make_samples
    from emollama.instruct.client import ClientConfig
    from emollama.instruct.conversation import generate_conversations
    from emollama.instruct.providers import build_provider

    url, root = sys.argv[1], sys.argv[2]
    samples = make_samples(root, "rafdb", {n})
    provider = build_provider("openai", model="fake-vlm", base_url=url + "/v1", timeout=5.0)
    generate_conversations(samples, "rafdb", provider, root + "/out.jsonl", root + "/ledger.sqlite", seed=1,
                           client_config=ClientConfig(**{cfg!r}))
""")


def _ok_rows(ledger: Path) -> int:
    if not ledger.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT COUNT(*) FROM requests WHERE status='ok'").fetchone()[0]
    except sqlite3.OperationalError:  # table not created yet
        return 0


def _run(url: str, root: Path) -> dict:
    provider = build_provider("openai", model="fake-vlm", base_url=url + "/v1", timeout=5.0)
    return generate_conversations(make_samples(root, "rafdb", N), "rafdb", provider, root / "out.jsonl",
                                  root / "ledger.sqlite", seed=1, client_config=ClientConfig(**CFG))


def test_kill_9_then_resume_matches_clean_run(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    killed.mkdir()
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(tests=str(Path(__file__).parent), n=N, cfg=CFG))
    with FakeLLM() as fast:
        _run(fast.url, clean)
    with FakeLLM(delay=0.15) as slow:
        proc = subprocess.Popen([sys.executable, str(script), slow.url, str(killed)], env=os.environ.copy())
        try:
            deadline = time.monotonic() + 20
            while _ok_rows(killed / "ledger.sqlite") < 4:
                assert proc.poll() is None, "the run finished before it could be killed"
                assert time.monotonic() < deadline, "no progress in the subprocess"
                time.sleep(0.02)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
        sent_before = len(slow.requests)
    done = _ok_rows(killed / "ledger.sqlite")
    assert 4 <= done < N and not (killed / "out.jsonl").exists()  # only the temp file was being written
    with FakeLLM() as server:
        rep = _run(server.url, killed)
    assert (killed / "out.jsonl").read_bytes() == (clean / "out.jsonl").read_bytes()
    assert rep["generated"] == N and rep["requests"]["cached"] == done
    assert len(server.requests) == N - done  # every finished reply came from the ledger
    assert sent_before + len(server.requests) <= N + CFG["concurrency"]  # at most the in-flight ones twice
