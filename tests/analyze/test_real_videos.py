"""`emollama analyze` on the real videos with the real face stack (media tier; skipped without the cache)."""

from __future__ import annotations

import json

import pytest

from emollama import assets
from emollama.cli.__main__ import main

pytestmark = pytest.mark.media
FIX = "run `python scripts/install_faces.py` to install the face stack and fill the asset cache"


def _media(name: str) -> str:
    try:
        for model in ("face_landmarker", "blazeface_full_range", "age_v1", "gender_v1", "emotion_tflite"):
            assets.resolve(model, download=False)
        return str(assets.resolve(name, download=False))
    except assets.AssetError as err:
        pytest.skip(f"{err}; {FIX}")


def _run(tmp_path, *paths, policy="fps:2"):
    pytest.importorskip("mediapipe")
    out = tmp_path / "r.jsonl"
    rc = main(["analyze", *paths, "--out", str(out), "--video-sampling", policy, "--no-progress"])
    return rc, [json.loads(x) for x in out.read_text().splitlines()]


def test_pexels_video_is_one_track_over_most_frames(tmp_path):
    rc, recs = _run(tmp_path, _media("feat_pexels_video"))
    assert rc == 0
    tracks = [r for r in recs if r["kind"] == "track"]
    assert len(tracks) == 1
    t = tracks[0]
    assert t["frames_with_face"] >= 0.8 * t["frames_sampled"] and t["frames_sampled"] >= 35  # 19.7 s at 2 fps
    timeline = [lab for _, _, lab in t["label_timeline"]]
    assert timeline[-1] == "happiness"  # she smiles at the end (and at the start: see the xfail below)
    assert t["label"] == "happiness" and "AU12" in t["explanation"]


@pytest.mark.xfail(strict=True, reason="the shipped FER2013 model reads her first smiling frames as neutral/sad; "
                                       "the mini-Xception + rules baseline got them (issue #12)")
def test_pexels_video_starts_with_a_smile(tmp_path):
    rc, recs = _run(tmp_path, _media("feat_pexels_video"))
    t = next(r for r in recs if r["kind"] == "track")
    assert t["label_timeline"][0][2] == "happiness"


def test_no_face_clip_gives_no_face_record_not_an_error(tmp_path):
    rc, recs = _run(tmp_path, _media("feat_no_face"))
    assert rc == 0 and [r["kind"] for r in recs] == ["no_face"]


def test_face_appearing_mid_clip_is_tracked(tmp_path):
    rc, recs = _run(tmp_path, _media("feat_noface_face"), policy="fps:4")
    assert rc == 0
    tracks = [r for r in recs if r["kind"] == "track"]
    assert tracks and tracks[0]["frame_range"][0] > 0  # the face is absent at the start


def test_photos_and_video_in_one_batch(tmp_path):
    rc, recs = _run(tmp_path, _media("astronaut"), _media("feat_multi_face"), _media("feat_single_face_video"))
    assert rc == 0
    by_src = {}
    for r in recs:
        by_src.setdefault(r["source"].rsplit("/", 1)[-1], []).append(r)
    assert [r["label"] for r in by_src["astronaut.png"]] == ["happiness"]
    assert len(by_src["multi_face.jpg"]) >= 4
    assert by_src["single_face.mp4"][0]["kind"] == "track"
