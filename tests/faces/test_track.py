"""Face tracking across sampled frames: crossings, gaps, appearance and disappearance, aggregates."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from emollama.faces.track import FaceTracker, iou, track_faces


def face(cx: float, cy: float, size: float = 40.0, **extra) -> dict:
    box = (cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2)
    # 5 "landmarks" at fixed offsets within the box, in image pixels
    lms = np.array([[cx - 10, cy - 8], [cx + 10, cy - 8], [cx, cy], [cx - 8, cy + 10], [cx + 8, cy + 10]])
    return {"box": box, "landmarks": lms, **extra}


def test_iou():
    assert iou(np.array([0, 0, 10, 10]), np.array([0, 0, 10, 10])) == 1.0
    assert iou(np.array([0, 0, 10, 10]), np.array([5, 0, 15, 10])) == pytest.approx(1 / 3)
    assert iou(np.array([0, 0, 10, 10]), np.array([20, 20, 30, 30])) == 0.0


@pytest.mark.parametrize("method", ["greedy", "hungarian"])
def test_two_faces_crossing_paths_keep_their_ids(method):
    if method == "hungarian":
        pytest.importorskip("scipy")
    # A moves right, B moves left, 15 px per sampled frame; they overlap completely at step 5
    frames = []
    for t in range(11):
        a = face(25 + 15 * t, 50, label="happy")
        b = face(175 - 15 * t, 56, label="sad")
        frames.append((t, t / 10, [b, a] if t % 2 else [a, b]))  # detector order changes between frames
    tracks = track_faces(frames, method=method)
    assert len(tracks) == 2
    by_label = {tr.label: tr for tr in tracks}
    assert set(by_label) == {"happy", "sad"}
    for tr in tracks:
        assert len(set(tr.labels)) == 1, f"identity switch in track {tr.track_id}: {tr.labels}"
        assert tr.frame_range == (0, 10)


def test_gap_within_max_gap_keeps_the_track():
    frames = [(t, None, [] if t in (3, 4) else [face(50 + 2 * t, 50)]) for t in range(8)]
    tracks = track_faces(frames, max_gap=2)
    assert len(tracks) == 1
    assert tracks[0].frame_indices == [0, 1, 2, 5, 6, 7]


def test_gap_longer_than_max_gap_starts_a_new_track():
    frames = [(t, None, [] if 2 <= t <= 5 else [face(50, 50)]) for t in range(8)]
    tracks = track_faces(frames, max_gap=2)
    assert [tr.frame_range for tr in tracks] == [(0, 1), (6, 7)]
    assert [tr.track_id for tr in tracks] == [0, 1]


def test_appearance_and_disappearance():
    frames = []
    for t in range(6):
        dets = [face(40, 40)]
        if 2 <= t <= 3:
            dets.append(face(150, 40))  # a second face shows up for two frames, far from the first
        frames.append((t * 5, t * 0.2, dets))  # sampled every 5th frame
    tracker = FaceTracker()
    ids = [tracker.update(d, i, ts) for i, ts, d in frames]
    assert ids[0] == [0] and ids[2] == [0, 1] and ids[3] == [0, 1] and ids[5] == [0]
    tracks = tracker.finish()
    assert [tr.frame_range for tr in tracks] == [(0, 25), (10, 15)]
    assert tracks[1].summary()["times_s"] == [0.4, 0.6000000000000001]


def test_landmarks_match_when_box_convention_changes():
    # a second detector reports a much looser box around the same face: IoU 1/12.25 < min_iou, landmarks identical
    tight = face(100, 100, size=40)
    loose = dict(tight, box=(30, 30, 170, 170))
    assert len(track_faces([(0, None, [tight]), (1, None, [loose])], min_iou=0.1)) == 1
    no_lms = [{"box": tight["box"]}, {"box": loose["box"]}]
    assert len(track_faces([(0, None, no_lms[:1]), (1, None, no_lms[1:])], min_iou=0.1)) == 2


def test_aggregates_labels_probs_and_au_series():
    probs = [{"happy": 0.7, "neutral": 0.3}, {"happy": 0.4, "neutral": 0.6}, {"happy": 0.9, "neutral": 0.1}]
    aus = [{"AU12": 0.8, "AU6": 0.5}, {"AU12": 0.2}, {"AU12": 0.9, "AU6": 0.7}]
    frames = [(i * 10, i * 0.5, [face(50, 50, probs=p, au=a)]) for i, (p, a) in enumerate(zip(probs, aus, strict=True))]
    (tr,) = track_faces(frames)
    assert tr.labels == ["happy", "neutral", "happy"]  # argmax of probs when no label is given
    assert tr.label == "happy"
    assert tr.mean_probs == pytest.approx({"happy": 2.0 / 3, "neutral": 1.0 / 3})
    series = tr.au_series
    assert series["AU12"].tolist() == pytest.approx([0.8, 0.2, 0.9])
    assert series["AU6"][0] == 0.5 and math.isnan(series["AU6"][1]) and series["AU6"][2] == 0.7
    summary = tr.summary()
    assert summary["au_series"]["AU6"] == [0.5, None, 0.7]
    assert summary["frame_range"] == [0, 20] and summary["frames"] == [0, 10, 20]


def test_majority_tie_goes_to_higher_mean_probability():
    frames = [
        (0, None, [face(50, 50, label="sad", probs={"sad": 0.5, "happy": 0.5})]),
        (1, None, [face(50, 50, label="happy", probs={"sad": 0.1, "happy": 0.9})]),
    ]
    assert track_faces(frames)[0].label == "happy"


def test_accepts_objects_and_box_objects():
    box = SimpleNamespace(xyxy=(10, 10, 50, 50))
    dets = [SimpleNamespace(box=box, landmarks=None, probs=None, au=None, label="neutral")]
    tracks = track_faces([(0, 0.0, dets), (1, 0.1, dets)])
    assert len(tracks) == 1 and tracks[0].label == "neutral" and tracks[0].au_series == {}


def test_bad_box_and_method_raise():
    with pytest.raises(ValueError, match="4 finite numbers"):
        FaceTracker().update([{"box": (1, 2, 3)}], 0)
    with pytest.raises(ValueError, match="greedy.*hungarian"):
        FaceTracker(method="sort")


def test_facemesh_style_landmarks_with_depth_column():
    def mesh_face(cx):
        d = face(cx, 50)
        return dict(d, landmarks=np.concatenate([d["landmarks"], np.ones((5, 1))], axis=1))  # (K, 3): x, y, z

    tracks = track_faces([(t, None, [mesh_face(50 + 5 * t)]) for t in range(3)])
    assert len(tracks) == 1 and tracks[0].points[0].landmarks.shape == (5, 2)


def test_accepts_the_face_pipeline_result_type():
    types = pytest.importorskip("emollama.faces.types")
    results = [
        types.FaceResult(
            box=types.FaceBox(10 + t, 10, 50 + t, 50), label="happy", probs={"happy": 0.8}, au={"AU12": 0.7}
        )
        for t in range(3)
    ]
    (tr,) = track_faces([(t, t * 0.1, [r]) for t, r in enumerate(results)])
    assert tr.label == "happy" and tr.au_series["AU12"].tolist() == [0.7, 0.7, 0.7]
    assert tr.points[1].detection is results[1]
