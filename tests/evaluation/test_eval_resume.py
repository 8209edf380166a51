"""`emollama eval` resume: kill -9 mid-run, rerun, and the reports equal a clean run's (timing aside)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from tests.evaluation.eval_fixtures import rafdb_root

from emollama.cli.__main__ import main


def _args(root, out):
    return ["eval", "--model", "tiny", "--dataset", "rafdb", "--root", str(root), "--mode", "both", "--out", str(out),
            "--batch-size", "1", "--n-boot", "50", "--max-new-tokens", "6", "--no-progress"]


def _report(path):
    d = json.loads(path.read_text())
    d["provenance"].pop("timing")  # wall-clock numbers legitimately differ
    return d


def test_kill_9_then_resume_equals_clean_run(tmp_path, capsys):
    root = rafdb_root(tmp_path)
    out = tmp_path / "killed"
    args = [*_args(root, out), "--limit", "4"]
    # a fresh interpreter (a fork of this torch-threaded process could deadlock), killed with SIGKILL mid-run
    env = {**os.environ, "EMOLLAMA_EVAL_DELAY_MS": "300", "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen([sys.executable, "-m", "emollama.cli", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    log = out / "predictions.jsonl"
    deadline = time.time() + 90
    while time.time() < deadline and proc.poll() is None and (not log.exists() or log.read_text().count("\n") < 3):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run ended before the kill"
    with log.open("a") as fh:  # as if the kill had landed mid-write: a torn last line
        fh.write('{"key": "test_0004", "mode": "sco')
    partial = log.read_text().count("\n")
    assert 3 <= partial < 8, "the kill must land mid-run"
    assert main(args) == 0
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(rows) == 8 and len({(r["key"], r["mode"]) for r in rows}) == 8  # every sample once per mode
    assert main([*_args(root, tmp_path / "clean"), "--limit", "4"]) == 0
    capsys.readouterr()
    for mode in ("score", "generate"):
        assert _report(out / f"{mode}.json") == _report(tmp_path / "clean" / f"{mode}.json")
    assert json.loads((out / "agreement.json").read_text()) == json.loads((tmp_path / "clean" / "agreement.json")
                                                                          .read_text())


def test_changed_prompts_refuse_the_old_log(tmp_path, capsys):
    root = rafdb_root(tmp_path)
    out = tmp_path / "o"
    assert main([*_args(root, out), "--limit", "1", "--mode", "score"]) == 0
    assert main([*_args(root, out), "--limit", "1", "--mode", "score", "--vocabulary", "adjectives"]) == 1
    assert "different" in capsys.readouterr().err
    assert main([*_args(root, out), "--limit", "1", "--mode", "score", "--vocabulary", "adjectives",
                 "--overwrite"]) == 0


@pytest.mark.parametrize("extra, msg", [(["--backend", "openai"], "--api-model"), (["--fold", "2"], "no folds")])
def test_cli_errors_are_actionable(tmp_path, capsys, extra, msg):
    assert main([*_args(rafdb_root(tmp_path), tmp_path / "o"), *extra]) == 1
    assert msg in capsys.readouterr().err


def test_cli_fold_list_gives_fold_mean(tmp_path, capsys):
    from tests.evaluation.eval_fixtures import dfew_two_folds

    root = dfew_two_folds(tmp_path)
    out = tmp_path / "o"
    assert main(["eval", "--model", "tiny", "--dataset", "dfew", "--root", str(root), "--fold", "1,2", "--out",
                 str(out), "--n-boot", "0", "--no-progress"]) == 0
    rep = json.loads((out / "score.json").read_text())
    assert set(rep["folds"]) == {"1", "2"} and rep["provenance"]["folds"] == ["1", "2"]
    assert "RANDOM" in rep["provenance"]["WARNING"]
    assert main(["eval", "--model", "tiny", "--dataset", "dfew", "--root", str(root), "--fold", "x", "--out",
                 str(out)]) == 1
    assert "expected k" in capsys.readouterr().err
