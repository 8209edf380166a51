"""Shared types of the Python API: `Prediction`, `MediaLimits`, `Analysis`, and the typed media errors.

`MediaLimitError` is `emollama.media.errors.MediaTooLarge`: every over-limit input (pixels, video duration, frames)
raises it, so callers (the server's 413) tell it from other `MediaError`s by type, never by message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from emollama.faces.pipeline import FaceTrack
from emollama.media.errors import MediaError, MediaTooLarge

__all__ = ["ANALYZER_ID", "DEFAULT_QUESTION", "Analysis", "MediaError", "MediaLimitError", "MediaLimits",
           "Prediction"]

DEFAULT_QUESTION = "What is the facial expression of the person? Explain the facial cues."
ANALYZER_ID = "emollama-analyzer"
MediaLimitError = MediaTooLarge  # the 0.1 name: media over a configured limit, a 413 for the server


@dataclass(frozen=True)
class MediaLimits:
    """Bounds on one input. max_pixels: per image / video frame; max_video_s: duration in seconds; max_video_frames:
    frames analysed per video (a denser sampling policy is thinned to 'uniform:max_video_frames').

    These defaults are also `emollama serve`'s.
    """

    max_pixels: int = 40_000_000
    max_video_s: float = 60.0  # the server's limits since 0.1; EmoLlama keeps every analysed frame in memory
    max_video_frames: int = 32


@dataclass(frozen=True)
class Prediction:
    """One face (image) or one face track (video).

    Attributes:
        label / probabilities: expression label and class probabilities (analyzer fusion, or MLLM class scoring).
        text: the answer (MLLM generation; for `Analyzer` the explanation). explanation: the analyzer's sentence.
        au: AU-like cues in [0, 1]. agr: the AGR sentence from predicted age/gender (None when not confident).
        box: (x0, y0, x1, y1) pixels; track_id: video track id (None for images); face_index: order in the image.
        record: the `emollama analyze` record of this face/track (docs/analyze.schema.json).
    """

    label: str | None
    probabilities: Mapping[str, float]
    text: str
    explanation: str
    au: Mapping[str, float]
    agr: str | None
    box: tuple[float, float, float, float]
    track_id: int | None
    face_index: int
    media: str
    model: str
    record: Mapping[str, Any] = field(repr=False)

    @classmethod
    def from_record(cls, rec: dict[str, Any], face: FaceTrack, media: str, model: str, **override: Any
                    ) -> Prediction:
        """The analyzer's prediction for a face/track record and its `FaceTrack`; ``override`` replaces fields
        (the MLLM's label, probabilities, text and AGR sentence)."""
        from emollama.faces.contract import render_agr

        attrs = face.attributes
        fields = dict(label=rec.get("label"), probabilities=MappingProxyType(dict(rec.get("probabilities") or {})),
                      text=rec.get("explanation") or "", explanation=rec.get("explanation") or "",
                      au=MappingProxyType(dict(rec.get("au") or {})),
                      agr=render_agr(attrs.to_agr()) if attrs is not None else None,
                      box=tuple(rec["box"]), track_id=rec.get("track_id"), face_index=int(rec.get("face_index") or 0),
                      media=media, model=model, record=MappingProxyType(rec))
        fields.update(override)
        return cls(**fields)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe copy."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for k in ("probabilities", "au", "record"):
            out[k] = dict(out[k])
        out["box"] = list(self.box)
        return out


@dataclass
class Analysis:
    """One input through the analyzer: its `emollama analyze` records, the `FaceTrack` behind each face/track record
    (same order), and the analysed frames' pixels (when kept; the MLLM's `<image>`/`<video>`)."""

    media: str  # "image" | "video"
    records: list[dict[str, Any]]
    faces: list[FaceTrack]
    frames: list[np.ndarray]

    def select(self, faces: str = "all") -> list[tuple[dict[str, Any], FaceTrack]]:
        """(record, face) per face/track: 'all', or only the 'largest' (most frames, then box area)."""
        if faces not in ("all", "largest"):
            raise ValueError(f"faces must be 'all' or 'largest', got {faces!r}")
        pairs = list(zip([r for r in self.records if r["kind"] in ("face", "track")], self.faces, strict=True))
        if faces == "largest" and pairs:
            def size(p: tuple[dict[str, Any], FaceTrack]) -> tuple[int, float]:
                x0, y0, x1, y1 = p[0]["box"]
                return (p[0].get("frames_with_face") or 1, (x1 - x0) * (y1 - y0))

            pairs = [max(pairs, key=size)]
        return pairs
