"""`emollama analyze` end to end with the dependency-free synthetic backend: records, errors, resume, kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from emollama.cli.__main__ import main
from emollama.data.synthetic import draw_face, synthetic_video


def _video(path, frames=12, size=64):
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width = s.height = size
        s.pix_fmt = "yuv420p"
        for f in synthetic_video("surprise", frames, size):
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


@pytest.fixture
def corpus(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    for i, lab in enumerate(["happiness", "sadness", "anger"]):
        draw_face(lab, 64)[0].save(d / f"face{i}.png")
    Image.new("RGB", (40, 40), (7, 7, 7)).save(d / "blank.png")
    (d / "empty.jpg").write_bytes(b"")
    (d / "text.png").write_text("not an image")
    Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)).save(d / "cut.jpg")
    (d / "cut.jpg").write_bytes((d / "cut.jpg").read_bytes()[:200])
    (d / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 50)
    _video(d / "clip.mp4")
    return d


def _records(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_corpus_records_and_errors(corpus, tmp_path, capsys):
    out = tmp_path / "r.jsonl"
    rc = main(["analyze", str(corpus), "--backend", "synthetic", "--out", str(out), "--no-progress"])
    assert rc == 3  # some items failed, the rest was analysed
    recs = {os.path.basename(r["source"]): r for r in _records(out)}
    assert {k: v["kind"] for k, v in recs.items()} == {
        "blank.png": "no_face", "broken.mp4": "error", "clip.mp4": "track", "cut.jpg": "error",
        "empty.jpg": "error", "face0.png": "face", "face1.png": "face", "face2.png": "face", "text.png": "error"}
    assert recs["empty.jpg"]["error"]["reason"] == "empty file (0 bytes)"
    assert recs["cut.jpg"]["error"]["reason"] == "truncated or corrupt image"
    assert recs["text.png"]["error"]["reason"] == "not a recognised image format"
    assert recs["broken.mp4"]["error"]["reason"] in ("unreadable video", "no frames decoded")
    track = recs["clip.mp4"]
    assert track["frames_with_face"] == track["frames_sampled"] > 0 and track["track_id"] == 0
    assert len(track["label_timeline"]) == track["frames_with_face"]
    face = recs["face0.png"]
    assert set(face["probabilities"]) >= {"happiness", "neutral"} and face["label"] in face["probabilities"]
    printed = capsys.readouterr()
    assert "9 analysed" in printed.out and "error: " in printed.err


def test_rerun_skips_done_items_and_csv(corpus, tmp_path, capsys):
    out = tmp_path / "r.csv"
    main(["analyze", str(corpus), "--backend", "synthetic", "--out", str(out), "--no-progress"])
    first = out.read_text()
    capsys.readouterr()
    main(["analyze", str(corpus), "--backend", "synthetic", "--out", str(out), "--no-progress"])
    assert out.read_text() == first
    summary = capsys.readouterr().out
    assert "0 analysed" in summary and "9 already done" in summary
    assert first.count("\n") == 10  # header + 9 items (1 record each)


def _strip(recs):
    for r in recs:
        r.pop("timings_ms", None)
    return sorted(json.dumps(r, sort_keys=True) for r in recs)


def test_kill_9_then_resume_equals_clean_run(corpus, tmp_path):
    clean = tmp_path / "clean.jsonl"
    assert main(["analyze", str(corpus), "--backend", "synthetic", "--out", str(clean), "--no-progress"]) == 3
    out = tmp_path / "killed.jsonl"
    cmd = [sys.executable, "-m", "emollama.cli.__main__", "analyze", str(corpus), "--backend", "synthetic",
           "--out", str(out), "--no-progress"]
    env = {**os.environ, "EMOLLAMA_SYNTHETIC_DELAY_MS": "400"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline and (not out.exists() or out.read_text().count("\n") < 2):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = out.read_text().count("\n")
    assert 2 <= partial < 9, "the kill must land mid-run"
    subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
    assert _strip(_records(out)) == _strip(_records(clean))


def test_annotate_and_crops(corpus, tmp_path):
    main(["analyze", str(corpus / "face0.png"), str(corpus / "clip.mp4"), "--backend", "synthetic",
          "--out", str(tmp_path / "o.jsonl"), "--annotate", str(tmp_path / "ann"), "--no-progress"])
    (image,) = (tmp_path / "ann").glob("face0_annotated-*.jpg")  # '-<hash of the path>': same-named inputs differ
    (video,) = (tmp_path / "ann").glob("clip_annotated-*.mp4")
    assert video.stat().st_size > 0


def test_changed_options_refuse_to_mix(corpus, tmp_path, capsys):
    out = tmp_path / "o.jsonl"
    main(["analyze", str(corpus / "face0.png"), "--backend", "synthetic", "--out", str(out), "--no-progress"])
    rc = main(["analyze", str(corpus / "face0.png"), "--backend", "synthetic", "--out", str(out), "--landmarks",
               "--no-progress"])
    assert rc == 1 and "different analysis options" in capsys.readouterr().err


def test_bad_policy_fails_fast(corpus, tmp_path, capsys):
    rc = main(["analyze", str(corpus), "--backend", "synthetic", "--video-sampling", "every:3",
               "--out", str(tmp_path / "o.jsonl")])
    assert rc == 1 and "invalid frame sampling policy" in capsys.readouterr().err


def test_records_match_the_published_json_schema(corpus, tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    from pathlib import Path

    schema = json.loads((Path(__file__).parents[2] / "docs" / "analyze.schema.json").read_text())
    out = tmp_path / "o.jsonl"
    main(["analyze", str(corpus), "--backend", "synthetic", "--out", str(out), "--no-progress", "--au-series"])
    records = _records(out)
    for rec in records:
        jsonschema.validate(rec, schema)
    labelled = [r for r in records if r["kind"] in ("face", "track")]
    assert labelled and all(r["expression_model"] == "synthetic" for r in labelled)
    assert all("expression_model" not in r for r in records if r["kind"] not in ("face", "track"))


def test_prefetch_order_errors_and_early_exit():
    from emollama.analyze.runner import prefetch

    assert list(prefetch(iter(range(50)), depth=3)) == list(range(50))

    def boom():
        yield 1
        raise RuntimeError("decode failed")

    with pytest.raises(RuntimeError, match="decode failed"):
        list(prefetch(boom()))
    t0 = time.perf_counter()
    for x in prefetch(iter(range(1000)), depth=2):
        if x == 3:
            break  # the producer must stop promptly, not block on a full queue
    assert time.perf_counter() - t0 < 2.0
