"""`Analyzer`: photo or video frame -> one `FaceResult` per face (box, landmarks, blendshapes, pose, AU cues,
age/gender, expression probabilities, label, explanation, crop, per-stage timings).

Models load lazily on first use (or eagerly with `Analyzer.load`) and are reused; one Analyzer per process/thread.
When the detector's ``max_faces`` cap dropped faces, each result's ``meta["faces_found"]`` is the count before it.
Stages per image: detect (FaceLandmarker + BlazeFace, `emollama.faces.detect`) -> per face: crop (`align`),
attributes (`attributes`), expression (`expression_net`, the learned default: its calibrated argmax is the label;
or the mini-Xception baseline fused with AU rules by `decide`), AU cues + explanation (`au`, `explain`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from emollama.faces.align import CropConfig, crop_face, to_rgb_array
from emollama.faces.attributes import AttributePredictor, DlibOnnxAttributes, NoAttributes
from emollama.faces.au import au_cues
from emollama.faces.decide import DecisionConfig, decide
from emollama.faces.detect import DetectedFace, DetectorConfig, FaceDetector
from emollama.faces.explain import explain
from emollama.faces.expression import EXPRESSION_MODELS, MiniXception
from emollama.faces.find import WHOLE_IMAGE_SOURCE, FaceFinder
from emollama.faces.types import FaceResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnalyzerConfig:
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    crop: CropConfig = field(default_factory=CropConfig)  # the MLLM face-branch crop (FaceResult.crop)
    decision: DecisionConfig = field(default_factory=DecisionConfig)  # rules of the mini-xception baseline only
    attributes: bool = True
    expression: bool = True
    keep_crops: bool = True
    faces: str = "auto"  # auto | detect | whole-image (emollama.faces.find)
    expression_model: str = "emonet"  # emonet (learned, default) | mini-xception (2017 baseline + AU rules)


def make_expression(name: str):
    """The expression model called ``name`` (`EXPRESSION_MODELS`), not loaded yet."""
    if name == "emonet":
        from emollama.faces.expression_net import LearnedExpression

        return LearnedExpression()
    if name == "mini-xception":
        return MiniXception()
    raise ValueError(f"expression model must be one of {', '.join(EXPRESSION_MODELS)}; got {name!r}")


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


class Analyzer:
    """Per-face analysis of images (``analyze_image``) and video frames (``analyze_frame``, MediaPipe VIDEO mode).

    Args:
        cfg: `AnalyzerConfig`; detector / attributes / expression: inject alternatives (tests, other backends).
    """

    def __init__(
        self,
        cfg: AnalyzerConfig | None = None,
        *,
        detector: FaceDetector | None = None,
        attributes: AttributePredictor | None = None,
        expression=None,
    ) -> None:
        self.cfg = cfg or AnalyzerConfig()
        self.detector = detector or FaceDetector(self.cfg.detector)
        self.finder = FaceFinder(self.detector, self.cfg.faces)
        self.attributes = attributes or (DlibOnnxAttributes() if self.cfg.attributes else NoAttributes())
        self.expression = expression or (make_expression(self.cfg.expression_model) if self.cfg.expression else None)
        self.last_timings: dict[str, float] = {}
        self._frame_count = 0

    @property
    def expression_identity(self) -> str | None:
        """Which expression weights label the faces (``"NAME sha256:PREFIX"``), None without an expression model."""
        return getattr(self.expression, "identity", None) if self.expression is not None else None

    def load(self) -> dict[str, float]:
        """Load every model now; returns load times in ms per component."""
        out = {}
        for name, obj in (
            ("detector", self.detector),
            ("attributes", self.attributes),
            ("expression", self.expression),
        ):
            if obj is not None and hasattr(obj, "load"):
                t0 = time.perf_counter()
                obj.load()
                out[name] = _ms(t0)
        log.info("analyzer models loaded: %s", {k: round(v) for k, v in out.items()})
        return out

    def analyze_image(self, image) -> list[FaceResult]:
        """Analyse a photo: an RGB uint8 (H, W, 3) array or any PIL image (grayscale/RGBA converted)."""
        t0 = time.perf_counter()
        rgb = to_rgb_array(image)
        faces = self.finder.find(rgb)
        return self._analyze(rgb, faces, _ms(t0))

    def analyze_frame(self, frame, timestamp_ms: int, frame_index: int | None = None) -> list[FaceResult]:
        """Analyse one video frame (VIDEO running mode: ``timestamp_ms`` must increase from call to call)."""
        t0 = time.perf_counter()
        rgb = to_rgb_array(frame)
        faces = self.detector.detect_video(rgb, int(timestamp_ms))
        if self.finder.wants_whole_image(rgb, len(faces)):
            faces = [self.finder.whole_image_face(rgb)]
        results = self._analyze(rgb, faces, _ms(t0))
        idx = self._frame_count if frame_index is None else frame_index
        self._frame_count += 1
        for r in results:
            r.frame_index, r.timestamp_ms = idx, int(timestamp_ms)
        return results

    def _analyze(self, rgb: np.ndarray, faces: list[DetectedFace], detect_ms: float) -> list[FaceResult]:
        results = [self._one(rgb, f, detect_ms) for f in faces]
        found = getattr(self.detector, "last_found", len(faces))  # an injected detector may not count
        if any(f.box.source == WHOLE_IMAGE_SOURCE for f in faces):  # the padded copy's pass set last_found
            found = len(faces)
        if found > len(results):  # the max_faces cap dropped faces: every result carries it, so records can say so
            for r in results:
                r.meta["faces_found"] = found
        stages = ("crop", "attributes", "expression", "decide")
        self.last_timings = {"detect": detect_ms, **{s: sum(r.timings.get(s, 0.0) for r in results) for s in stages}}
        self.last_timings["total"] = sum(self.last_timings.values())
        log.debug("analyzed %d faces in %.1f ms: %s", len(results), self.last_timings["total"], self.last_timings)
        return results

    def _one(self, rgb: np.ndarray, face: DetectedFace, detect_ms: float) -> FaceResult:
        timings = {"detect": detect_ms}
        t = time.perf_counter()
        crop, region = crop_face(rgb, face.box, self.cfg.crop)
        timings["crop"] = _ms(t)

        t = time.perf_counter()
        attrs = self.attributes.predict(rgb, [face.box])[0]
        timings["attributes"] = _ms(t)

        prior: dict[str, float] = {}
        if self.expression is not None:
            t = time.perf_counter()
            prior = self.expression.predict_face(rgb, face.box)
            timings["expression"] = _ms(t)

        t = time.perf_counter()
        cues = au_cues(face.blendshapes)
        if prior and not isinstance(self.expression, MiniXception):
            # the learned model's calibrated probabilities are the decision: no hand-written fusion on top
            label, probs, source = max(prior, key=prior.__getitem__), prior, "learned"
        elif prior or cues:
            d = decide(prior or None, cues or None, self.cfg.decision)
            label, probs, source = d.label, d.probs, d.source
        else:
            label, probs, source = None, {}, "none"
        text = explain(label, cues, probs) if label else ""
        timings["decide"] = _ms(t)

        return FaceResult(
            box=face.box,
            landmarks=face.landmarks,
            blendshapes=dict(face.blendshapes),
            pose=face.pose,
            au=cues,
            attributes=attrs,
            expression_prior=prior,
            probs=probs,
            label=label,
            explanation=text,
            crop=crop if self.cfg.keep_crops else None,
            crop_box=region,
            timings=timings,
            meta={"decision": source},
        )

    def reset_video(self) -> None:
        """Start a new clip: VIDEO-mode state is dropped and timestamps may restart at 0."""
        if hasattr(self.detector, "reset_video"):
            self.detector.reset_video()
        self._frame_count = 0

    def close(self) -> None:
        self.detector.close()

    def __enter__(self) -> Analyzer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
