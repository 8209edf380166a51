"""A dependency-free stand-in analyzer ('--backend synthetic'): for tests, CI and trying the CLI without the
face stack. It is NOT a face detector: a non-uniform image yields one centred "face" whose label is derived
deterministically from the pixel statistics; a (nearly) uniform image yields no face.
"""

from __future__ import annotations

import os
import time

import numpy as np

LABELS = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")


class SyntheticAnalyzer:
    """Same interface as `emollama.faces.analyzer.Analyzer` (analyze_image / analyze_frame)."""

    expression_identity = "synthetic"  # no weights: records say their labels came from this stand-in

    def __init__(self) -> None:
        # test hook: slow each call down so a test can kill the process mid-run
        self.delay_s = float(os.environ.get("EMOLLAMA_SYNTHETIC_DELAY_MS", "0")) / 1000.0

    def analyze_image(self, rgb: np.ndarray) -> list:
        from emollama.faces.types import FaceAttributes, FaceBox, FaceResult

        if self.delay_s:
            time.sleep(self.delay_s)
        rgb = np.asarray(rgb)
        if float(rgb.std()) < 5.0:
            return []
        h, w = rgb.shape[:2]
        means = rgb.reshape(-1, rgb.shape[-1]).mean(0) / 255.0
        logits = np.array([means[i % 3] * (i + 1) for i in range(len(LABELS))]) * 3
        probs = np.exp(logits - logits.max())
        probs /= probs.sum()
        label = LABELS[int(probs.argmax())]
        box = FaceBox(w * 0.25, h * 0.2, w * 0.75, h * 0.8, score=0.99, source="synthetic")
        return [FaceResult(box=box, probs={k: float(p) for k, p in zip(LABELS, probs, strict=True)}, label=label,
                           au={"AU12": float(means[0])},
                           attributes=FaceAttributes(age=30.0, age_group="20-39", gender="female",
                                                     gender_confidence=0.9),
                           explanation=f"Synthetic backend: pixel statistics map to {label}.",
                           timings={"detect": 0.0})]

    def analyze_frame(self, rgb: np.ndarray, timestamp_ms: int, frame_index: int | None = None) -> list:
        faces = self.analyze_image(rgb)
        for f in faces:
            f.frame_index, f.timestamp_ms = frame_index, int(timestamp_ms)
        return faces

    def close(self) -> None:
        pass
