"""Record building for `emollama analyze`: one record per face (images), per track (videos), or per failure.

The schema is documented in docs/analyze.schema.json; `SCHEMA_VERSION` changes whenever a field changes meaning.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from typing import Any

import numpy as np

SCHEMA_VERSION = 1


def _r(x: float | None, nd: int = 4) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), nd)


def _pose_deg(pose) -> dict[str, float] | None:
    if pose is None:
        return None
    yaw, pitch, roll = (math.degrees(float(v)) for v in pose)
    return {"yaw": round(yaw, 1), "pitch": round(pitch, 1), "roll": round(roll, 1)}


def add_warning(rec: dict[str, Any], text: str) -> dict[str, Any]:
    """Append ``text`` to the record's ``warnings`` list (created on first use, so clean records stay unchanged)."""
    rec.setdefault("warnings", []).append(text)
    return rec


def flag_capped(rec: dict[str, Any], text: str, found: int | None = None) -> dict[str, Any]:
    """Mark a record whose item lost faces to the max_faces cap: ``faces_truncated``, ``faces_found``, a warning."""
    rec["faces_truncated"] = True
    if found is not None:
        rec["faces_found"] = found
    return add_warning(rec, text)


def face_record(face, *, source: str, media: str, face_index: int, image_size: tuple[int, int],
                landmarks: bool = False, blendshapes: bool = False, expression_model: str | None = None
                ) -> dict[str, Any]:
    """Record of one `FaceResult` on a photo; ``expression_model`` names the weights behind its label (none for a
    stand-in analyzer)."""
    a = face.attributes
    rec: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": "face",
        "source": source,
        "media": media,
        "frame": 0,
        "time_s": None,
        "face_index": face_index,
        "track_id": None,
        "image_size": list(image_size),
        "box": [round(float(v), 1) for v in face.box.xyxy],
        "box_score": _r(face.box.score),
        "detector": face.box.source,
        "label": face.label,
        "confidence": _r(face.probs.get(face.label)) if face.label else None,
        "probabilities": {k: _r(v) for k, v in face.probs.items()},
        **({"expression_model": expression_model} if expression_model else {}),
        "expression_prior": {k: _r(v) for k, v in face.expression_prior.items()},
        "explanation": face.explanation,
        "au": {k: _r(v, 3) for k, v in face.au.items()},
        "age": None if a is None or a.age is None else {"years": _r(a.age, 1), "group": a.age_group},
        "gender": None if a is None or a.gender is None else {"value": a.gender,
                                                                 "confidence": _r(a.gender_confidence, 3)},
        "race": None if a is None else a.race,
        "pose": _pose_deg(face.pose),
        "timings_ms": {k: _r(v, 2) for k, v in face.timings.items()},
    }
    if blendshapes:
        rec["blendshapes"] = {k: _r(v) for k, v in face.blendshapes.items()}
    if landmarks and face.landmarks is not None:
        rec["landmarks"] = np.round(np.asarray(face.landmarks)[:, :2], 1).tolist()
    found = (getattr(face, "meta", None) or {}).get("faces_found")
    if found:  # set by the analyzer only when its max_faces cap dropped faces from this photo
        flag_capped(rec, f"{found} faces found; only the largest were kept (raise --max-faces)", found)
    return rec


def frame_summary(face: Any) -> Any:
    """What `track_record` reads of one frame's face: a `FaceResult` without its crop, landmarks, blendshapes and
    prior (~0.17 MB a frame), so a tracker holding a summary per sampled frame stays small on long videos."""
    from emollama.faces.types import FaceResult

    if not isinstance(face, FaceResult):
        return face
    return dataclasses.replace(face, landmarks=None, blendshapes={}, expression_prior={}, crop=None, crop_box=None)


def track_record(track, *, source: str, frames_sampled: int, image_size: tuple[int, int],
                 au_series: bool = False, expression_model: str | None = None) -> dict[str, Any]:
    """Record of one face track over the sampled frames of a video (``expression_model``: as in `face_record`)."""
    dets = [p.detection for p in track.points]
    label = track.label
    probs = track.mean_probs
    # representative frame: the most confident frame agreeing with the track label (its explanation and box)
    agreeing = [d for d in dets if d.label == label] or dets
    rep = max(agreeing, key=lambda d: d.probs.get(label, 0.0) if label else 0.0)
    genders = Counter(d.attributes.gender for d in dets if d.attributes and d.attributes.gender)
    ages = [d.attributes.age for d in dets if d.attributes and d.attributes.age is not None]
    aus = sorted({k for d in dets for k in d.au})
    first, last = track.points[0], track.points[-1]
    rec: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "kind": "track",
        "source": source,
        "media": "video",
        "track_id": track.track_id,
        "frame": rep.frame_index,
        "time_s": _r((rep.timestamp_ms or 0) / 1000.0, 3),
        "frame_range": list(track.frame_range),
        "time_range": [_r(first.time_s, 3), _r(last.time_s, 3)],
        "frames_sampled": frames_sampled,
        "frames_with_face": len(track.points),
        "image_size": list(image_size),
        "box": [round(float(v), 1) for v in rep.box.xyxy],
        "box_score": _r(float(np.mean([d.box.score for d in dets]))),
        "detector": rep.box.source,
        "label": label,
        "confidence": _r(probs.get(label)) if label else None,
        "probabilities": {k: _r(v) for k, v in probs.items()},
        **({"expression_model": expression_model} if expression_model else {}),
        "label_timeline": [[p.frame_index, _r(p.time_s, 3), lab] for p, lab in zip(track.points, track.labels,
                                                                                   strict=True)],
        "explanation": rep.explanation,
        "au": {k: _r(float(np.mean([d.au.get(k, 0.0) for d in dets])), 3) for k in aus},
        "age": None if not ages else {"years": _r(float(np.median(ages)), 1),
                                      "group": Counter(d.attributes.age_group for d in dets if d.attributes
                                                       and d.attributes.age_group).most_common(1)[0][0]},
        "gender": None if not genders else {"value": genders.most_common(1)[0][0],
                                            "confidence": _r(genders.most_common(1)[0][1] / len(dets), 3)},
        "race": None,
        "pose": _pose_deg(rep.pose),
        "timings_ms": {k: _r(sum(d.timings.get(k, 0.0) for d in dets), 2) for k in sorted({k for d in dets
                                                                                            for k in d.timings})},
    }
    if au_series:
        rec["au_series"] = {k: [_r(d.au.get(k), 3) for d in dets] for k in aus}
    return rec


def empty_record(*, source: str, media: str, frames_sampled: int | None = None,
                 image_size: tuple[int, int] | None = None) -> dict[str, Any]:
    """No face found: a normal result, recorded so the item counts as done."""
    return {"schema_version": SCHEMA_VERSION, "kind": "no_face", "source": source, "media": media,
            "frames_sampled": frames_sampled, "image_size": None if image_size is None else list(image_size)}


def add_coverage(rec: dict[str, Any], info, report) -> dict[str, Any]:
    """Add what a video record says about how much of the clip was read: ``frames_expected`` (sampled frames asked
    for), ``duration_s``, ``time_covered_s`` (first and last decoded frame); and, when the file ends early,
    ``video_truncated`` and a warning, since a cut file otherwise decodes as if it were a complete short clip.

    Args:
        info / report: the reader's `VideoInfo` and `ReadReport` (`emollama.media.video`).
    """
    first, last = report.first_time_s or 0.0, report.last_time_s or 0.0
    rec.update(frames_expected=report.expected, duration_s=_r(info.duration_s, 3),
               time_covered_s=[_r(first, 3), _r(last, 3)])
    why = []
    if info.data_frames is not None:
        why.append(f"the file holds {info.data_frames} of the {info.num_frames} frames its index lists")
    # a frame count estimated from the duration may overshoot the real stream by a frame or two: not a cut
    nominal = info.frames_estimated and not report.error and info.duration_s - last <= 1.0
    if report.ended_early and not nominal:
        why.append(report.error or f"{report.missing} sampled frame(s) after {last:.1f} s are missing")
    if why:
        rec["video_truncated"] = True
        add_warning(rec, f"video truncated: decoded {report.returned} of {report.expected} sampled frames, "
                         f"{first:.1f}-{last:.1f} s of {info.duration_s:.1f} s; " + "; ".join(why))
    return rec


def error_record(*, source: str, media: str | None, reason: str, detail: str = "", fix: str = "") -> dict[str, Any]:
    """A failed item: the batch goes on; the reason is stable, the detail is the underlying message."""
    return {"schema_version": SCHEMA_VERSION, "kind": "error", "source": source, "media": media,
            "error": {"reason": reason, "detail": detail, "fix": fix}}
