"""Track faces across sampled video frames into track ids, and aggregate per-track results.

Input is a minimal protocol so this module does not depend on any detector's types: each detection is a dict or any
object with ``box`` (x0, y0, x1, y1) (or a box object with ``.xyxy``) in image pixels and optionally ``landmarks``
(K, 2+) in image pixels, ``probs`` {label: p}, ``au`` {name: value} and ``label``.

Matching cost = (1 - IoU) + landmark_weight * mean landmark distance / box diagonal, both against each track's
constant-velocity prediction, so two faces crossing paths keep their ids. A pair is allowed when IoU >= min_iou or the
landmarks agree (e.g. a second detector reports a looser box around the same face). Tracks unseen for more than
``max_gap`` sampled frames end; a face reappearing later gets a new id.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


def _get(det: Any, name: str) -> Any:
    return det.get(name) if isinstance(det, Mapping) else getattr(det, name, None)


def _box(det: Any) -> np.ndarray:
    box = _get(det, "box")
    box = getattr(box, "xyxy", box)  # accept box objects exposing .xyxy
    arr = np.asarray(box, dtype=np.float64).reshape(-1)
    if arr.shape != (4,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"detection box must be 4 finite numbers (x0, y0, x1, y1), got {box!r}")
    return arr


def _landmarks(det: Any) -> np.ndarray | None:
    """(K, 2) image-pixel x, y; extra columns (e.g. MediaPipe's z) are dropped."""
    lms = _get(det, "landmarks")
    return None if lms is None else np.asarray(lms, dtype=np.float64)[:, :2]


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


@dataclass
class TrackPoint:
    """One detection assigned to a track: frame index, time (s), box (4,), optional landmarks/probs/au/label."""

    frame_index: int
    time_s: float | None
    box: np.ndarray
    landmarks: np.ndarray | None = None
    probs: dict[str, float] | None = None
    au: dict[str, float] | None = None
    label: str | None = None
    detection: Any = None


@dataclass
class Track:
    """A face over time. ``points`` are in frame order; aggregates are computed from them."""

    track_id: int
    points: list[TrackPoint] = field(default_factory=list)

    @property
    def frame_range(self) -> tuple[int, int]:
        """(first, last) frame index, inclusive."""
        return self.points[0].frame_index, self.points[-1].frame_index

    @property
    def frame_indices(self) -> list[int]:
        return [p.frame_index for p in self.points]

    @property
    def detections(self) -> list[Any]:
        """Each point's detection in frame order (what `FaceTracker(summarize=...)` kept of it)."""
        return [p.detection for p in self.points]

    @property
    def labels(self) -> list[str | None]:
        """Per-frame labels (the detection's label, else the argmax of its probs)."""
        return [
            p.label if p.label is not None else (max(p.probs, key=p.probs.get) if p.probs else None)
            for p in self.points
        ]

    @property
    def label(self) -> str | None:
        """Label over time: the majority of per-frame labels; ties go to the higher mean probability."""
        counts = Counter(x for x in self.labels if x is not None)
        if not counts:
            return None
        top = max(counts.values())
        mp = self.mean_probs
        return max((x for x, c in counts.items() if c == top), key=lambda x: (mp.get(x, 0.0), x))

    @property
    def mean_probs(self) -> dict[str, float]:
        """Mean of per-frame probabilities over the frames that have them."""
        rows = [p.probs for p in self.points if p.probs]
        keys = sorted({k for r in rows for k in r})
        return {k: float(np.mean([r.get(k, 0.0) for r in rows])) for k in keys}

    @property
    def au_series(self) -> dict[str, np.ndarray]:
        """AU name -> (len(points),) float64 values aligned with `frame_indices`; NaN where missing."""
        names = sorted({k for p in self.points if p.au for k in p.au})
        return {n: np.array([(p.au or {}).get(n, math.nan) for p in self.points], dtype=np.float64) for n in names}

    def summary(self) -> dict[str, Any]:
        """JSON-friendly aggregate record."""
        return {
            "track_id": self.track_id,
            "frame_range": list(self.frame_range),
            "frames": self.frame_indices,
            "times_s": [p.time_s for p in self.points],
            "label": self.label,
            "labels": self.labels,
            "mean_probs": self.mean_probs,
            "au_series": {k: [None if math.isnan(x) else float(x) for x in v] for k, v in self.au_series.items()},
        }


class FaceTracker:
    """Online tracker over sampled frames.

    Args:
        min_iou: a detection may join a track only with IoU >= this, or when landmarks are close (below).
        landmark_weight: weight of the normalised landmark distance in the matching cost.
        max_landmark_dist: landmark-only gate: mean landmark distance / box diagonal below which a match is allowed
            even with low IoU (box conventions that differ between detectors).
        max_gap: a track survives this many consecutive sampled frames without a detection, then ends.
        method: 'greedy' (lowest cost first; no extra dependency) or 'hungarian' (needs scipy).
        summarize: when given, each point keeps ``summarize(detection)`` instead of the detection, and only a track's
            newest point keeps its landmarks (matching reads no others): memory per point stays small on long videos.
    """

    def __init__(
        self,
        *,
        min_iou: float = 0.1,
        landmark_weight: float = 1.0,
        max_landmark_dist: float = 0.25,
        max_gap: int = 2,
        method: str = "greedy",
        summarize: Callable[[Any], Any] | None = None,
    ) -> None:
        if method not in ("greedy", "hungarian"):
            raise ValueError(f"method must be 'greedy' or 'hungarian', got {method!r}")
        self.min_iou, self.landmark_weight, self.max_landmark_dist = min_iou, landmark_weight, max_landmark_dist
        self.max_gap, self.method, self.summarize = max_gap, method, summarize
        self._active: list[tuple[Track, int]] = []  # (track, sampled-frame step of its last detection)
        self._done: list[Track] = []
        self._step = -1
        self._next_id = 0

    def _predict(self, track: Track, frame_index: int) -> np.ndarray:
        """Box at ``frame_index`` extrapolated with the velocity of the last two points (pixels / frame)."""
        last = track.points[-1]
        if len(track.points) < 2:
            return last.box
        prev = track.points[-2]
        dt = max(1, last.frame_index - prev.frame_index)
        return last.box + (last.box - prev.box) / dt * (frame_index - last.frame_index)

    def _cost(self, track: Track, pred: np.ndarray, box: np.ndarray, lms: np.ndarray | None) -> float:
        ov = iou(pred, box)
        last = track.points[-1]
        dist = None
        if lms is not None and last.landmarks is not None and last.landmarks.shape == lms.shape:
            shift = (pred[:2] + pred[2:] - last.box[:2] - last.box[2:]) / 2  # follow the predicted box centre
            diag = float(np.hypot(pred[2] - pred[0], pred[3] - pred[1])) or 1.0
            dist = float(np.linalg.norm(last.landmarks + shift - lms, axis=-1).mean()) / diag
        if ov < self.min_iou and (dist is None or dist > self.max_landmark_dist):
            return math.inf
        return (1.0 - ov) + (self.landmark_weight * dist if dist is not None else 0.0)

    def _assign(self, cost: np.ndarray) -> list[tuple[int, int]]:
        if cost.size == 0:
            return []
        if self.method == "hungarian":
            try:
                from scipy.optimize import linear_sum_assignment
            except ImportError as e:
                raise ImportError("FaceTracker(method='hungarian') needs scipy; use method='greedy'") from e
            finite = np.where(np.isfinite(cost), cost, 1e9)
            rows, cols = linear_sum_assignment(finite)
            return [(r, c) for r, c in zip(rows, cols, strict=True) if np.isfinite(cost[r, c])]
        pairs, used_r, used_c = [], set(), set()
        for flat in np.argsort(cost, axis=None, kind="stable"):
            r, c = divmod(int(flat), cost.shape[1])
            if not np.isfinite(cost[r, c]):
                break
            if r not in used_r and c not in used_c:
                pairs.append((r, c))
                used_r.add(r)
                used_c.add(c)
        return pairs

    def update(self, detections: Sequence[Any], frame_index: int, time_s: float | None = None) -> list[int]:
        """Assign the detections of one sampled frame to tracks; returns a track id per detection."""
        self._step += 1
        boxes = [_box(d) for d in detections]
        lms = [_landmarks(d) for d in detections]
        preds = [self._predict(t, frame_index) for t, _ in self._active]
        cost = np.array(
            [
                [self._cost(t, p, b, lm) for b, lm in zip(boxes, lms, strict=True)]
                for (t, _), p in zip(self._active, preds, strict=True)
            ]
        ).reshape(len(preds), len(boxes))
        ids = [-1] * len(detections)
        for r, c in self._assign(cost):
            ids[c] = self._active[r][0].track_id
            self._append(self._active[r][0], detections[c], boxes[c], lms[c], frame_index, time_s)
            self._active[r] = (self._active[r][0], self._step)
        for c, d in enumerate(detections):
            if ids[c] < 0:
                track = Track(self._next_id)
                self._next_id += 1
                self._append(track, d, boxes[c], lms[c], frame_index, time_s)
                self._active.append((track, self._step))
                ids[c] = track.track_id
        # end tracks unseen for more than max_gap sampled frames, so a new face there gets a new id
        self._done += [t for t, last in self._active if self._step - last > self.max_gap]
        self._active = [(t, last) for t, last in self._active if self._step - last <= self.max_gap]
        return ids

    def _append(self, track: Track, det: Any, box, lms, frame_index: int, time_s: float | None) -> None:
        probs, au = _get(det, "probs"), _get(det, "au")
        if self.summarize is not None:
            if track.points:
                track.points[-1].landmarks = None
            det = self.summarize(det)
        track.points.append(
            TrackPoint(
                frame_index=frame_index,
                time_s=time_s,
                box=box,
                landmarks=lms,
                probs=dict(probs) if probs else None,
                au=dict(au) if au else None,
                label=_get(det, "label"),
                detection=det,
            )
        )

    def finish(self) -> list[Track]:
        """All tracks (ended and still active), ordered by id."""
        tracks = self._done + [t for t, _ in self._active]
        return sorted(tracks, key=lambda t: t.track_id)


def track_faces(frames: Iterable[tuple[int, float | None, Sequence[Any]]], **kwargs: Any) -> list[Track]:
    """Track over ``(frame_index, time_s, detections)`` triples in time order; kwargs go to `FaceTracker`."""
    tracker = FaceTracker(**kwargs)
    for frame_index, time_s, dets in frames:
        tracker.update(dets, frame_index, time_s)
    tracks = tracker.finish()
    logger.debug("tracked %d face track(s)", len(tracks))
    return tracks
