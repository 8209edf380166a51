"""`emollama prepare`: end to end on a tiny folder dataset, and kill -9 mid-run then resume == a clean run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

from emollama.cli.__main__ import main
from emollama.priors.cache import PriorCache

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data"))
import fer_layouts as F  # noqa: E402


def dataset(root: Path, n: int) -> Path:
    for i in range(n):
        F.image(root / "train" / ("happy", "sad", "angry")[i % 3] / f"{i:02d}.png", 9 * i)
    F.frames(root / "test" / "happy" / "clip", 3)
    return root


def cli(root: Path, out: Path, *extra: str) -> list[str]:
    return ["prepare", "folder", str(root), "--out", str(out), "--extractor", "synthetic", "--crop-size", "16",
            *extra]


def contents(path: Path) -> dict:
    """key -> every stored array, after checking the index and every shard (no duplicate or unindexed key)."""
    c = PriorCache(path)
    assert c.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    shard_keys = []
    for shard in sorted((path / "shards").iterdir()):
        assert not shard.name.startswith(".tmp"), "temp file left behind"
        with safe_open(str(shard), framework="numpy") as f:
            keys = json.loads(f.metadata()["keys"])
            assert all(f.get_tensor(f"{k}/valid").shape for k in keys)  # readable
        shard_keys += keys
    assert len(shard_keys) == len(set(shard_keys)) == len(c), "duplicate or unindexed entries"
    out = {}
    for key in c:
        p, (crops, has) = c.get(key), c.get_crops(key)
        out[key] = [np.asarray(p.landmarks), np.asarray(p.blendshapes), np.asarray(p.valid), crops, has]
    return out


def test_prepare_cli_report_and_manifest(tmp_path, capsys):
    root = dataset(tmp_path / "ds", 4)
    (root / "train" / "sad" / "zz.jpg").write_bytes(b"")  # an empty file: failed, counted, exit 3
    rc = main(cli(root, tmp_path / "c", "--workers", "1", "--report", str(tmp_path / "r.json")))
    assert rc == 3
    out = capsys.readouterr().out
    assert "computed 5 (no face 0), cached already 0, failed 1" in out and "empty file (0 bytes): 1" in out
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["computed"] == 5 and rep["failed"] == {"empty file (0 bytes)": 1} and rep["cache"]["entries"] == 5
    rows = [json.loads(x) for x in (tmp_path / "c" / "manifests" / "folder_all_synthetic.jsonl").open()]
    assert len(rows) == 6 and {r["split"] for r in rows} == {"train", "test"}
    assert sum(r["prior_key"] is None for r in rows) == 1
    assert main(cli(root, tmp_path / "c", "--split", "test")) == 0
    assert "computed 0 (no face 0), cached already 1" in capsys.readouterr().out
    assert (tmp_path / "c" / "manifests" / "folder_test_synthetic.jsonl").exists()


def test_kill_9_mid_run_then_resume_equals_clean_run(tmp_path):
    root = dataset(tmp_path / "ds", 14)
    assert main(cli(root, tmp_path / "clean", "--workers", "1")) == 0
    clean = contents(tmp_path / "clean")
    env = {**os.environ, "EMOLLAMA_PREPARE_TEST_DELAY": "0.15"}
    cmd = [sys.executable, "-m", "emollama.cli", *cli(root, tmp_path / "c", "--workers", "2", "--shard-mb", "0.001")]
    proc = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    shards, deadline = tmp_path / "c" / "shards", time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if shards.is_dir() and len([p for p in shards.iterdir() if not p.name.startswith(".")]) >= 3:
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"run finished before the kill: {proc.stderr.read().decode()[-500:]}"
    os.killpg(proc.pid, signal.SIGKILL)  # the parent and its workers, mid-run
    proc.wait()
    partial = PriorCache(tmp_path / "c")
    assert 0 < len(partial) < len(clean)
    assert main(cli(root, tmp_path / "c", "--workers", "2")) == 0
    resumed = contents(tmp_path / "c")
    assert sorted(resumed) == sorted(clean)
    for key in clean:
        for a, b in zip(clean[key], resumed[key], strict=True):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bad", [["--workers", "0"], ["--video-sampling", "uniform:0"], ["--video-sampling", "peak:4"],
                                 ["--extractor", "synthetc"]])
def test_bad_arguments_are_user_errors(tmp_path, bad, capsys):
    assert main(cli(dataset(tmp_path / "ds", 1), tmp_path / "c", *bad)) == 1
    assert "emollama prepare: error:" in capsys.readouterr().err


def test_prepare_frames_for_model(tmp_path, capsys):
    from emollama.data.benchmarks import get_benchmark
    from emollama.model.towers import Preprocess
    from emollama.priors.frames import frames_key_for, get_frames

    root = dataset(tmp_path / "ds", 2)
    args = cli(root, tmp_path / "c", "--workers", "1", "--video-sampling", "uniform:2", "--frames-for-model", "16",
               "--report", str(tmp_path / "r.json"))
    assert main(args) == 0
    assert "tower frames (16 px): computed 3, cached already 0, failed 0" in capsys.readouterr().out
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["cache"]["entries"] == 3 and rep["cache"]["by_status"]["frames"] == 3  # priors counted apart
    assert main(args) == 0
    assert "tower frames (16 px): computed 0, cached already 3" in capsys.readouterr().out
    c = PriorCache(tmp_path / "c")
    clip = get_benchmark("folder").load(root, "test").samples[0]
    pixels, idx = get_frames(c, frames_key_for(c, clip, "uniform:2", Preprocess(16)))
    assert pixels.shape == (2, 16, 16, 3) and pixels.dtype == np.uint8 and list(idx) == [0, 2]
    assert main([*cli(root, tmp_path / "d"), "--frames-for-model", "nodir"]) == 1
    assert "--frames-for-model" in capsys.readouterr().err
