"""Age / gender (race optional) behind one `AttributePredictor` protocol.

Default: dlib's age and gender networks as ONNX (assets ``age_v1``, ``gender_v1``; ASSETS.md §4.2), with the
preprocessing of their manifest: dlib 5-point landmarks on the face box (asset ``shape_predictor_5``), aligned chips
with padding 0.2 (64x64 for age, 32x32 for gender), RGB NCHW float32 ``(byte - mean) / 256``. Age = expectation over
81 classes weighted (0.25, 1, 2, ..., 80) years; its RAF-DB group probabilities are the class mass in each group.
Gender output is [female, male].

Race is **off by default** (``race=None``): the only registry race model is a TFJS graph of unclear licence
(probably UTKFace, non-commercial) whose answer flips with the crop (ASSETS.md §4.8). A race predictor can be plugged
in behind the same protocol; evaluation of race-conditioned behaviour uses dataset labels, not predictions.
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

import numpy as np

from emollama.faces._deps import require
from emollama.faces.contract import AGE_GROUPS, GENDERS, age_group
from emollama.faces.types import FaceAttributes, FaceBox

log = logging.getLogger(__name__)

AGE_WEIGHTS = np.array([0.25, *range(1, 81)], dtype=np.float64)  # 81 classes, years
MEANS = np.array([122.781998, 117.000999, 104.297997], dtype=np.float32)


@runtime_checkable
class AttributePredictor(Protocol):
    """Predicts `FaceAttributes` for each face box of an RGB image."""

    def predict(self, rgb: np.ndarray, boxes: list[FaceBox]) -> list[FaceAttributes]: ...


def age_group_probs(class_probs: np.ndarray) -> np.ndarray:
    """(81,) age-class probabilities -> (5,) probabilities over RAF-DB `AGE_GROUPS`."""
    groups = np.array([AGE_GROUPS.index(age_group(a)) for a in AGE_WEIGHTS])
    return np.bincount(groups, weights=np.asarray(class_probs, dtype=np.float64), minlength=len(AGE_GROUPS))


def attributes_from_probs(age_probs: np.ndarray | None, gender_probs: np.ndarray | None) -> FaceAttributes:
    """Turn raw network outputs into `FaceAttributes` (pure; unit-tested without models)."""
    out = FaceAttributes()
    if age_probs is not None:
        p = np.asarray(age_probs, dtype=np.float64)
        p = p / max(p.sum(), 1e-12)
        out.age = float(p @ AGE_WEIGHTS)
        out.age_group = age_group(out.age)
        out.age_group_probs = age_group_probs(p).astype(np.float32)
        out.age_confidence = float(out.age_group_probs[AGE_GROUPS.index(out.age_group)])
    if gender_probs is not None:
        g = np.asarray(gender_probs, dtype=np.float32)
        g = g / max(float(g.sum()), 1e-12)
        out.gender_probs = g
        out.gender = GENDERS[int(np.argmax(g))]
        out.gender_confidence = float(g.max())
    return out


class DlibOnnxAttributes:
    """The default `AttributePredictor` (see module docstring). Models load lazily on first use."""

    def __init__(self, threads: int = 1) -> None:
        self.threads = threads
        self._sp = self._age = self._gender = None

    def load(self) -> None:
        if self._sp is not None:
            return
        from emollama.assets import resolve

        dlib, ort = require("dlib"), require("onnxruntime")
        so = ort.SessionOptions()
        so.intra_op_num_threads = so.inter_op_num_threads = self.threads
        so.log_severity_level = 3
        self._sp = dlib.shape_predictor(str(resolve("shape_predictor_5")))
        self._age = ort.InferenceSession(str(resolve("age_v1")), so, providers=["CPUExecutionProvider"])
        self._gender = ort.InferenceSession(str(resolve("gender_v1")), so, providers=["CPUExecutionProvider"])

    def chips(self, rgb: np.ndarray, box: FaceBox) -> tuple[np.ndarray, np.ndarray]:
        """(64x64 age chip, 32x32 gender chip), uint8 RGB, aligned on dlib's 5 landmarks inside ``box``."""
        self.load()
        dlib = require("dlib")
        rect = dlib.rectangle(int(box.x0), int(box.y0), int(box.x1), int(box.y1))
        shape = self._sp(rgb, rect)
        age = dlib.extract_image_chip(rgb, dlib.get_face_chip_details(shape, 64, 0.2))
        gender = dlib.extract_image_chip(rgb, dlib.get_face_chip_details(shape, 32, 0.2))
        return np.asarray(age), np.asarray(gender)

    @staticmethod
    def _blob(chips: list[np.ndarray]) -> np.ndarray:
        x = np.stack(chips).astype(np.float32)
        return np.ascontiguousarray(((x - MEANS) / 256.0).transpose(0, 3, 1, 2))

    def predict(self, rgb: np.ndarray, boxes: list[FaceBox]) -> list[FaceAttributes]:
        if not boxes:
            return []
        self.load()
        pairs = [self.chips(rgb, b) for b in boxes]
        age = self._age.run(None, {self._age.get_inputs()[0].name: self._blob([a for a, _ in pairs])})[0]
        gen = self._gender.run(None, {self._gender.get_inputs()[0].name: self._blob([g for _, g in pairs])})[0]
        return [attributes_from_probs(a, g) for a, g in zip(age, gen, strict=True)]


class NoAttributes:
    """Predicts nothing (attributes disabled)."""

    def predict(self, rgb: np.ndarray, boxes: list[FaceBox]) -> list[FaceAttributes]:
        return [FaceAttributes() for _ in boxes]
