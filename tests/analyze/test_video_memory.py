"""Videos keep per-frame summaries only (issue #10 item 9): memory flat in video length, records unchanged."""

from __future__ import annotations

import weakref

import numpy as np

from emollama.analyze.inputs import Item
from emollama.analyze.records import frame_summary, track_record
from emollama.analyze.runner import AnalyzeOptions, Runner
from emollama.data.synthetic import synthetic_video
from emollama.faces.track import FaceTracker, track_faces
from emollama.faces.types import FaceAttributes, FaceBox, FaceResult

LABELS = ("happiness", "neutral", "surprise")


def _face(t: int, cx: float, i: int, **meta) -> FaceResult:
    """A full-size result (224 px crop, 478-point mesh, 52 blendshapes) of a face moving right, label cycling."""
    rng = np.random.default_rng(t * 10 + i)
    box = FaceBox(cx + 3 * t, 20.0, cx + 3 * t + 30, 50.0, 0.9, "fake")
    lms = np.stack([rng.uniform(box.x0, box.x1, 478), rng.uniform(box.y0, box.y1, 478), rng.normal(0, 1, 478)], 1)
    probs = dict(zip(LABELS, rng.dirichlet([1, 1, 1]).tolist(), strict=True))
    return FaceResult(box=box, landmarks=lms.astype(np.float32), blendshapes={f"b{k}": 0.1 for k in range(52)},
                      pose=(0.1, -0.05 * i, 0.02), au={"AU12": probs["happiness"], "AU26": probs["surprise"]},
                      attributes=FaceAttributes(age=30.0 + t % 5, age_group="20-39", gender="female",
                                                gender_confidence=0.8), expression_prior=dict(probs), probs=probs,
                      label=max(probs, key=probs.get), explanation=f"frame {t} face {i}",
                      crop=np.full((224, 224, 3), t % 255, np.uint8), crop_box=box, timings={"detect": 1.0 + t},
                      frame_index=t, timestamp_ms=100 * t, meta=dict(meta))


class _Analyzer:
    """Returns two full-size faces per frame and counts how many earlier frames' crops are still alive."""

    def __init__(self, capped_every: int = 0) -> None:
        self.crops: list[weakref.ref] = []
        self.max_alive = 0
        self.capped_every = capped_every
        self.calls = 0

    def analyze_frame(self, rgb, timestamp_ms: int, frame_index: int | None = None) -> list[FaceResult]:
        self.max_alive = max(self.max_alive, sum(r() is not None for r in self.crops))
        meta = {"faces_found": 5} if self.capped_every and self.calls % self.capped_every == 0 else {}
        self.calls += 1
        faces = [_face(frame_index, 5.0, 0, **meta), _face(frame_index, 150.0, 1, **meta)]
        self.crops += [weakref.ref(f.crop) for f in faces]
        return faces


def _video(path, frames: int) -> None:
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width = s.height = 64
        s.pix_fmt = "yuv420p"
        for f in synthetic_video("happiness", frames, 64):
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def test_long_video_keeps_no_frame_results(tmp_path):
    # before: each frame's results (crop, mesh) stayed in the tracker until the end: 2 x 40 crops alive at the end
    _video(tmp_path / "v.mp4", 40)
    an = _Analyzer()
    recs = Runner(an, AnalyzeOptions(video_sampling="all")).analyze_item(Item(tmp_path / "v.mp4", "video"))
    assert [r["kind"] for r in recs] == ["track", "track"] and recs[0]["frames_with_face"] == 40
    assert an.calls == 40 and an.max_alive <= 4  # this frame's and the previous frame's faces at most


def test_save_crops_still_gets_every_crop(tmp_path):
    _video(tmp_path / "v.mp4", 6)
    runner = Runner(_Analyzer(), AnalyzeOptions(video_sampling="all"), crops_dir=tmp_path / "crops")
    runner.analyze_item(Item(tmp_path / "v.mp4", "video"))
    assert len(list((tmp_path / "crops").glob("v*_f*_face*.png"))) == 12  # 6 frames x 2 faces


def test_summaries_give_the_same_track_records():
    frames = [(t, t / 10, [_face(t, 5.0, 0), _face(t, 150.0, 1)] if t != 7 else [_face(t, 5.0, 0)])
              for t in range(30)]
    kw = dict(source="v.mp4", frames_sampled=30, image_size=(64, 64), au_series=True)
    full = [track_record(t, **kw) for t in track_faces(frames)]
    lean = [track_record(t, **kw) for t in track_faces(frames, summarize=frame_summary)]
    assert len(full) == 2 and lean == full


def test_summarizing_tracker_keeps_landmarks_of_the_newest_point_only():
    tracker = FaceTracker(summarize=frame_summary)
    for t in range(5):
        tracker.update([_face(t, 5.0, 0)], t, t / 10)
    (track,) = tracker.finish()
    assert [p.landmarks is not None for p in track.points] == [False] * 4 + [True]
    assert all(p.detection.crop is None and p.detection.landmarks is None for p in track.points)
    assert track.points[0].detection.probs == _face(0, 5.0, 0).probs


def test_face_cap_in_video_frames_is_reported(tmp_path):
    _video(tmp_path / "v.mp4", 12)
    runner = Runner(_Analyzer(capped_every=4), AnalyzeOptions(video_sampling="all"))
    recs = runner.analyze_item(Item(tmp_path / "v.mp4", "video"))
    assert len(recs) == 2
    for r in recs:
        assert r["faces_truncated"] is True and "3 of 12 sampled frames" in r["warnings"][0]
