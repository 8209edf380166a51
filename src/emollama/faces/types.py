"""Plain dataclasses for face analysis results (numpy only; nothing heavy is imported here).

Coordinates are image pixels, x to the right and y down, boxes as (x0, y0, x1, y1). A `FaceResult` duck-types as
the detection that `emollama.faces.track` expects (``box.xyxy``, ``landmarks``, ``probs``, ``au``, ``label``,
``score``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class FaceBox:
    """Axis-aligned face box in image pixels with a detector score in [0, 1] and the detector that produced it."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float = 1.0
    source: str = ""

    @property
    def xyxy(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.x1, self.y1)

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2)

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    def iou(self, other: FaceBox) -> float:
        iw = max(0.0, min(self.x1, other.x1) - max(self.x0, other.x0))
        ih = max(0.0, min(self.y1, other.y1) - max(self.y0, other.y0))
        inter = iw * ih
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def contains(self, x: float, y: float) -> bool:
        return self.x0 <= x <= self.x1 and self.y0 <= y <= self.y1


@dataclass
class FaceAttributes:
    """Age / gender (and optional race) of one face. Confidences in [0, 1]; None when not predicted."""

    age: float | None = None  # expected age in years
    age_group: str | None = None  # RAF-DB group, see emollama.faces.agr.AGE_GROUPS
    age_group_probs: np.ndarray | None = None  # (5,) over AGE_GROUPS
    age_confidence: float = 0.0
    gender: str | None = None  # "female" | "male"
    gender_probs: np.ndarray | None = None  # (2,) [female, male]
    gender_confidence: float = 0.0
    race: str | None = None  # off by default (ASSETS.md §4.8)
    race_probs: np.ndarray | None = None
    race_confidence: float = 0.0

    def to_agr(self):
        """As `emollama.faces.agr.AGRAttributes` (the AGR prompt's input)."""
        from emollama.faces.contract import AGRAttributes

        return AGRAttributes(
            age_group=self.age_group,
            gender=self.gender,
            race=self.race,
            age_confidence=self.age_confidence,
            gender_confidence=self.gender_confidence,
            race_confidence=self.race_confidence,
        )


@dataclass
class FaceResult:
    """Everything the analyzer knows about one face in one image / frame.

    Attributes:
        box: face box (from the mesh extents when a mesh exists, else the detector box).
        landmarks: (478, 3) image pixels x, y and MediaPipe's relative depth z (scaled like x), or None.
        blendshapes: 52 MediaPipe blendshape scores by name ("_neutral", "jawOpen", ...); empty without a mesh.
        pose: (yaw, pitch, roll) in radians from the facial transformation matrix, or None.
        au: AU-like cues in [0, 1] (see `emollama.faces.au`).
        attributes: age / gender (race optional).
        expression_prior: mini-Xception 7-class probabilities by label.
        probs: final fused probabilities by label (`emollama.faces.decide.LABELS`); label = argmax.
        explanation: one grounded sentence (`emollama.faces.explain`).
        crop / crop_box: the square aligned crop (uint8 HxWx3) and the image region it covers.
        timings: milliseconds per stage for this face (detection is shared by the image: see `meta`).
    """

    box: FaceBox
    landmarks: np.ndarray | None = None
    blendshapes: dict[str, float] = field(default_factory=dict)
    pose: tuple[float, float, float] | None = None
    au: dict[str, float] = field(default_factory=dict)
    attributes: FaceAttributes | None = None
    expression_prior: dict[str, float] = field(default_factory=dict)
    probs: dict[str, float] = field(default_factory=dict)
    label: str | None = None
    explanation: str = ""
    crop: np.ndarray | None = None
    crop_box: FaceBox | None = None
    timings: dict[str, float] = field(default_factory=dict)
    frame_index: int | None = None
    timestamp_ms: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def score(self) -> float:
        return self.box.score

    @property
    def has_mesh(self) -> bool:
        return self.landmarks is not None

    def to_dict(self, landmarks: bool = False, blendshapes: bool = False) -> dict[str, Any]:
        """JSON-safe record (no arrays unless asked for)."""
        a = self.attributes
        out: dict[str, Any] = {
            "box": [round(v, 1) for v in self.box.xyxy],
            "score": round(self.box.score, 4),
            "detector": self.box.source,
            "label": self.label,
            "probs": {k: round(v, 4) for k, v in self.probs.items()},
            "expression_prior": {k: round(v, 4) for k, v in self.expression_prior.items()},
            "explanation": self.explanation,
            "au": {k: round(v, 3) for k, v in self.au.items()},
            "pose": None if self.pose is None else [round(float(v), 4) for v in self.pose],
            "age": None if a is None or a.age is None else round(a.age, 1),
            "age_group": None if a is None else a.age_group,
            "gender": None if a is None else a.gender,
            "gender_confidence": None if a is None else round(a.gender_confidence, 3),
            "race": None if a is None else a.race,
            "timings_ms": {k: round(v, 2) for k, v in self.timings.items()},
        }
        if self.frame_index is not None:
            out["frame_index"], out["timestamp_ms"] = self.frame_index, self.timestamp_ms
        if blendshapes:
            out["blendshapes"] = {k: round(v, 4) for k, v in self.blendshapes.items()}
        if landmarks and self.landmarks is not None:
            out["landmarks"] = np.round(self.landmarks[:, :2], 1).tolist()
        return out
