"""`emollama analyze` hardening (issue #10): truncated videos are flagged (CLI and server) and the pixel limit is
one limit, ours. Inputs come from the bad-input corpus of make_corpus.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from emollama.media.decode import MediaError, load_image

SCHEMA = Path(__file__).parents[2] / "docs" / "analyze.schema.json"
CUTS = ["cut_synthetic_50", "cut_synthetic_99", "cut_pexels_10", "cut_pexels_50", "cut_pexels_99"]


def analyze(*args: str | Path) -> int:
    from emollama.cli.__main__ import main

    return main(["analyze", *(str(a) for a in args), "--backend", "synthetic", "--no-progress"])


def records(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def _check_schema(recs: list[dict]) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text())
    for r in recs:
        jsonschema.validate(r, schema)


def _assert_flagged(rec: dict) -> None:
    assert rec["media"] == "video" and rec["kind"] in ("track", "no_face")
    assert rec["video_truncated"] is True and rec["frames_sampled"] <= rec["frames_expected"]
    first, last = rec["time_covered_s"]
    assert first <= last < rec["duration_s"] - 0.05
    (warning,) = [w for w in rec["warnings"] if w.startswith("video truncated")]
    assert f"of {rec['duration_s']:.1f} s" in warning


# --- item 2: a truncated video says so in its records ------------------------------------------------------------
@pytest.mark.parametrize("name", CUTS)
def test_truncated_video_records_say_so(bad_corpus, tmp_path, name):
    if name not in bad_corpus:
        pytest.skip("the Pexels clip is not in the asset cache (python scripts/install_faces.py)")
    out = tmp_path / "r.jsonl"
    analyze(bad_corpus[name], "--out", out)
    recs = records(out)
    _check_schema(recs)
    for rec in recs:
        _assert_flagged(rec)


def test_complete_video_has_no_warning(bad_corpus, tmp_path):
    out = tmp_path / "r.jsonl"
    assert analyze(bad_corpus["clip_ok"], bad_corpus["utf8_image"], "--out", out) == 0
    video, photo = records(out)
    _check_schema([video, photo])
    assert "warnings" not in video and "video_truncated" not in video
    assert video["frames_sampled"] == video["frames_expected"] == 6
    assert video["duration_s"] == pytest.approx(3.0, abs=0.05) and video["time_covered_s"] == [0.0, 2.5]
    assert "warnings" not in photo


def test_truncated_video_flagged_by_the_server(bad_corpus):
    from fastapi.testclient import TestClient

    from emollama.api import Analyzer
    from emollama.serve.app import create_app

    data = bad_corpus["cut_synthetic_50"].read_bytes()
    with TestClient(create_app(Analyzer("synthetic"))) as client:
        resp = client.post("/v1/analyze", files={"file": ("cut.mp4", data, "video/mp4")})
    assert resp.status_code == 200, resp.text
    recs = resp.json()["records"]
    _check_schema(recs)
    for rec in recs:
        _assert_flagged(rec)


# --- item 4: one pixel limit (--max-pixels), checked on the header before decoding --------------------------------
def test_pillow_default_limit_does_not_apply(bad_corpus, monkeypatch):
    # stands in for Pillow's 89.48 MP default below our 100 M default, at a size a test can decode
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)
    assert load_image(bad_corpus["small_12k"], max_pixels=20_000).shape == (120, 100, 3)
    with pytest.raises(MediaError, match=r"image too large .*12,000 pixels > 5,000.*--max-pixels"):
        load_image(bad_corpus["small_12k"], max_pixels=5_000)


@pytest.mark.parametrize("name, max_pixels", [("huge_100mp", None), ("huge_196mp", 200_000_000)])
def test_huge_image_under_max_pixels_is_not_refused(bad_corpus, tmp_path, name, max_pixels):
    out = tmp_path / "r.jsonl"
    analyze(bad_corpus[name], "--out", out, *(["--max-pixels", max_pixels] if max_pixels else []))
    (rec,) = records(out)
    # only its header is real: decoding gets past the size check, then stops at the broken scan
    assert rec["error"]["reason"] == "truncated or corrupt image", rec["error"]


def test_huge_image_over_max_pixels_is_refused_from_its_header(bad_corpus, tmp_path):
    out = tmp_path / "r.jsonl"
    assert analyze(bad_corpus["huge_196mp"], "--out", out, "--max-pixels", 150_000_000) == 3
    err = records(out)[0]["error"]
    assert err["reason"] == "image too large" and "14000x14000 = 196,000,000 pixels > 150,000,000" in err["detail"]
    assert "--max-pixels" in err["fix"]


def test_truncation_in_csv_and_an_older_csv_keeps_its_columns(bad_corpus, tmp_path):
    import csv

    out = tmp_path / "r.csv"
    analyze(bad_corpus["cut_synthetic_50"], "--out", out)
    (row,) = csv.DictReader(out.open(encoding="utf-8"))
    assert row["video_truncated"] == "True" and "video truncated" in row["warnings"]
    old = [c for c in next(csv.reader(out.open(encoding="utf-8"))) if c not in ("warnings", "video_truncated")]
    with out.open("w", encoding="utf-8", newline="") as fh:  # as written before those columns existed
        w = csv.DictWriter(fh, old, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerow(row)
    analyze(bad_corpus["cut_synthetic_99"], "--out", out)  # resumes the older file
    rows = list(csv.reader(out.open(encoding="utf-8")))
    assert len(rows) == 3 and {len(r) for r in rows} == {len(old)}
