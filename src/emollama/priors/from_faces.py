"""Facial priors for the MLLM: one interface (`FacePriorExtractor`), a registry of backends, and the conversion of
analyzer results into `emollama.faces.contract.FacePrior` (so training and inference see the same priors).

Backends (``PRIOR_EXTRACTORS.get(name)(**kwargs)``):

- ``mediapipe`` (default): `Analyzer` -> 478 landmarks normalised to the face crop, 52 blendshapes, pose, RAF-DB
  age-group probabilities, [female, male] probabilities, crops from `emollama.faces.align` (the analyzer's crop)
  preprocessed for the vision tower when a `Preprocess` is given.
- ``synthetic``: deterministic (seeded by the image bytes), no model or optional dependency; for tests.
- ``facexformer``: `emollama.faces.facexformer.FaceXFormerExtractor` on the detector's boxes (checkpoint path
  required).

``valid`` is True on frames where a face **with a landmark mesh** was found; other frames carry zeros.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from emollama.faces.align import landmarks_to_crop, to_rgb_array
from emollama.faces.au import BLENDSHAPE_NAMES, blendshape_vector
from emollama.faces.contract import AGE_GROUPS, FacePrior
from emollama.faces.types import FaceResult
from emollama.registry import Registry

log = logging.getLogger(__name__)

NUM_LANDMARKS = 478


@runtime_checkable
class FacePriorExtractor(Protocol):
    """Image -> one `FacePrior` (T=1) per face, largest first; frames -> the main face's `FacePrior` over T."""

    name: str

    def extract(self, image) -> list[FacePrior]: ...

    def extract_video(self, frames: Iterable, timestamps_ms: Sequence[int] | None = None) -> FacePrior: ...


PRIOR_EXTRACTORS: Registry[Callable[..., FacePriorExtractor]] = Registry("face prior extractor")


def _stack(rows: list[dict], preprocess) -> FacePrior:
    crops = None
    if preprocess is not None:
        import torch

        crops = torch.stack([r["crop"] for r in rows])
    return FacePrior(
        landmarks=np.stack([r["landmarks"] for r in rows]),
        blendshapes=np.stack([r["blendshapes"] for r in rows]),
        pose=np.stack([r["pose"] for r in rows]),
        age_probs=np.stack([r["age_probs"] for r in rows]),
        gender_probs=np.stack([r["gender_probs"] for r in rows]),
        crops=crops,
        valid=np.array([r["valid"] for r in rows], dtype=bool),
        meta={"backend": rows[0]["backend"], "landmark_layout": "mediapipe478"},
        crop_boxes=np.stack([r["crop_box"] for r in rows]),
    )


def _row(result: FaceResult | None, preprocess, size: int, backend: str = "mediapipe") -> dict:
    """One frame's prior fields from an analyzer result (zeros / uniform when ``result`` is None or has no mesh)."""
    mesh = result is not None and result.landmarks is not None
    a = None if result is None else result.attributes
    row = {
        "landmarks": landmarks_to_crop(result.landmarks, result.crop_box)
        if mesh
        else np.zeros((NUM_LANDMARKS, 2), np.float32),
        "blendshapes": blendshape_vector(result.blendshapes if result else {}),
        "pose": np.asarray(result.pose if mesh and result.pose else (0.0, 0.0, 0.0), dtype=np.float32),
        "age_probs": a.age_group_probs.astype(np.float32)
        if a is not None and a.age_group_probs is not None
        else np.full(len(AGE_GROUPS), 1 / len(AGE_GROUPS), np.float32),
        "gender_probs": a.gender_probs.astype(np.float32)
        if a is not None and a.gender_probs is not None
        else np.full(2, 0.5, np.float32),
        "valid": mesh,
        "backend": backend,
        # the region the crop (and the landmarks) cover: lets a `visual_input: face` model reframe the face
        "crop_box": np.asarray(result.crop_box.xyxy, np.float64)
        if result is not None and result.crop_box is not None
        else np.full(4, np.nan),
    }
    if preprocess is not None:
        import torch

        from emollama.model.transforms import preprocess_frame

        crop = result.crop if result is not None and result.crop is not None else None
        row["crop"] = preprocess_frame(crop, preprocess) if crop is not None else torch.zeros(3, size, size)
    return row


def prior_from_results(results: Sequence[FaceResult | None], preprocess=None) -> FacePrior:
    """T analyzer results of one face (None = no face on that frame) -> `FacePrior` with T frames.

    Args:
        preprocess: a `emollama.model.towers.Preprocess`; when given, ``crops`` = the analyzer crops prepared for
            the vision tower (T, 3, size, size), else ``crops`` is None.
    """
    if not results:
        raise ValueError("prior_from_results needs at least one frame")
    size = preprocess.size if preprocess is not None else 0
    return _stack([_row(r, preprocess, size) for r in results], preprocess)


@PRIOR_EXTRACTORS.register("mediapipe")
class MediaPipePriorExtractor:
    """Default backend: the `Analyzer` (pass one in to share loaded models with other callers)."""

    name = "mediapipe"

    def __init__(self, analyzer=None, preprocess=None) -> None:
        if analyzer is None:
            from emollama.faces.analyzer import Analyzer, AnalyzerConfig

            analyzer = Analyzer(AnalyzerConfig(expression=False))
        self.analyzer, self.preprocess = analyzer, preprocess

    def extract(self, image) -> list[FacePrior]:
        return [prior_from_results([r], self.preprocess) for r in self.analyzer.analyze_image(image)]

    def extract_video(self, frames: Iterable, timestamps_ms: Sequence[int] | None = None) -> FacePrior:
        """Largest face per frame (VIDEO mode; default timestamps 0, 40, 80, ... ms)."""
        from emollama.faces.pipeline import video_faces

        stamped = ((f, int(timestamps_ms[i]) if timestamps_ms is not None else 40 * i, i) for i, f in enumerate(frames))
        picked: list[FaceResult | None] = [faces[0] if faces else None
                                           for faces in video_faces(stamped, self.analyzer)]
        return prior_from_results(picked, self.preprocess)


@PRIOR_EXTRACTORS.register("synthetic")
class SyntheticPriorExtractor:
    """Deterministic priors without models: values are drawn from an RNG seeded by ``seed`` and the image bytes."""

    name = "synthetic"

    def __init__(
        self,
        faces_per_image: int = 1,
        num_landmarks: int = NUM_LANDMARKS,
        num_blendshapes: int = len(BLENDSHAPE_NAMES),
        seed: int = 0,
        preprocess=None,
    ) -> None:
        self.faces_per_image, self.num_landmarks, self.num_blendshapes = faces_per_image, num_landmarks, num_blendshapes
        self.seed, self.preprocess = seed, preprocess

    def _one(self, rgb: np.ndarray, k: int) -> FacePrior:
        digest = hashlib.sha256(rgb.tobytes()).digest()[:8]
        rng = np.random.default_rng([self.seed, k, int.from_bytes(digest, "little")])
        age = rng.dirichlet(np.ones(len(AGE_GROUPS))).astype(np.float32)
        gender = rng.dirichlet(np.ones(2)).astype(np.float32)
        crops = None
        if self.preprocess is not None:
            from emollama.model.transforms import preprocess_frame

            crops = preprocess_frame(rgb, self.preprocess)[None]
        return FacePrior(
            landmarks=rng.uniform(0.1, 0.9, (1, self.num_landmarks, 2)).astype(np.float32),
            blendshapes=rng.uniform(0, 1, (1, self.num_blendshapes)).astype(np.float32),
            pose=rng.uniform(-0.3, 0.3, (1, 3)).astype(np.float32),
            age_probs=age[None],
            gender_probs=gender[None],
            crops=crops,
            valid=np.ones(1, dtype=bool),
            meta={"backend": "synthetic"},
        )

    def extract(self, image) -> list[FacePrior]:
        rgb = to_rgb_array(image)
        return [self._one(rgb, k) for k in range(self.faces_per_image)]

    def extract_video(self, frames: Iterable, timestamps_ms: Sequence[int] | None = None) -> FacePrior:
        per = [self._one(to_rgb_array(f), 0) for f in frames]
        if not per:
            raise ValueError("extract_video needs at least one frame")
        cat = {k: np.concatenate([getattr(p, k) for p in per]) for k in ("landmarks", "blendshapes", "pose")}
        crops = None if per[0].crops is None else np.concatenate([np.asarray(p.crops) for p in per])
        return FacePrior(
            **cat,
            age_probs=np.concatenate([p.age_probs for p in per]),
            gender_probs=np.concatenate([p.gender_probs for p in per]),
            crops=crops,
            valid=np.ones(len(per), dtype=bool),
            meta={"backend": "synthetic"},
        )


@PRIOR_EXTRACTORS.register("facexformer")
def _facexformer(checkpoint: str, detector=None, **kwargs) -> FacePriorExtractor:
    """FaceXFormer on the face detector's boxes (see `emollama.faces.facexformer`)."""
    from emollama.faces.detect import FaceDetector
    from emollama.faces.facexformer import FaceXFormerExtractor

    fx = FaceXFormerExtractor.from_checkpoint(checkpoint, **kwargs)
    det = detector or FaceDetector()

    class _FaceXFormerPriors:
        name = "facexformer"

        def extract(self, image) -> list[FacePrior]:
            rgb = to_rgb_array(image)
            boxes = [f.box.xyxy for f in det.detect(rgb)]
            return [FacePrior(**d) for d in fx.extract(rgb, boxes)]

        def extract_video(self, frames: Iterable, timestamps_ms: Sequence[int] | None = None) -> FacePrior:
            raise NotImplementedError("facexformer video priors: extract per frame and stack")

    return _FaceXFormerPriors()


def build_prior_extractor(name: str = "mediapipe", **kwargs) -> FacePriorExtractor:
    """``PRIOR_EXTRACTORS.get(name)(**kwargs)``."""
    return PRIOR_EXTRACTORS.get(name)(**kwargs)
