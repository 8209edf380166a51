"""Prior extractor registry and FacePrior conversion (synthetic backend and fabricated results; no models)."""

from __future__ import annotations

import numpy as np
import pytest

from emollama.faces.au import BLENDSHAPE_NAMES
from emollama.faces.types import FaceAttributes, FaceBox, FaceResult
from emollama.model.towers import Preprocess
from emollama.priors.from_faces import (
    PRIOR_EXTRACTORS,
    FacePriorExtractor,
    build_prior_extractor,
    prior_from_results,
)


def test_registry_has_the_backends():
    assert {"mediapipe", "synthetic", "facexformer"} <= set(PRIOR_EXTRACTORS.names())
    with pytest.raises(KeyError, match="did you mean"):
        PRIOR_EXTRACTORS.get("mediapip")


def test_synthetic_is_deterministic_and_well_formed(rng):
    img = (rng.random((40, 48, 3)) * 255).astype(np.uint8)
    ex = build_prior_extractor("synthetic", faces_per_image=2, preprocess=Preprocess(size=16))
    assert isinstance(ex, FacePriorExtractor)
    a, b = ex.extract(img), ex.extract(img)
    assert len(a) == 2
    np.testing.assert_array_equal(a[0].blendshapes, b[0].blendshapes)
    assert not np.array_equal(a[0].landmarks, a[1].landmarks)
    p = a[0]
    assert p.landmarks.shape == (1, 478, 2) and p.blendshapes.shape == (1, 52) and p.pose.shape == (1, 3)
    assert p.age_probs.shape == (1, 5) and p.gender_probs.shape == (1, 2) and tuple(p.crops.shape) == (1, 3, 16, 16)
    v = ex.extract_video([img, img[::-1].copy(), img])
    assert v.num_frames == 3 and v.valid.all() and tuple(v.crops.shape) == (3, 3, 16, 16)


def fake_result(mesh: bool = True) -> FaceResult:
    box = FaceBox(10, 10, 50, 50, 0.9, "test")
    lm = np.stack([np.linspace(10, 50, 478), np.linspace(10, 50, 478), np.zeros(478)], 1).astype(np.float32)
    return FaceResult(
        box=box,
        landmarks=lm if mesh else None,
        blendshapes={"jawOpen": 0.7} if mesh else {},
        pose=(0.1, 0.2, 0.3) if mesh else None,
        attributes=FaceAttributes(
            age=30,
            age_group="20-39",
            age_group_probs=np.array([0, 0.1, 0.8, 0.1, 0]),
            gender="female",
            gender_probs=np.array([0.9, 0.1]),
        ),  # fmt: skip
        crop=np.zeros((24, 24, 3), np.uint8),
        crop_box=FaceBox(0, 0, 60, 60),
    )


def test_prior_from_results_layout():
    p = prior_from_results([fake_result(), None, fake_result(mesh=False)], Preprocess(size=8))
    assert p.num_frames == 3 and p.valid.tolist() == [True, False, False]
    np.testing.assert_allclose(p.landmarks[0, 0], [10 / 60, 10 / 60], rtol=1e-5)
    assert p.blendshapes[0, BLENDSHAPE_NAMES.index("jawOpen")] == pytest.approx(0.7)
    np.testing.assert_allclose(p.pose[0], [0.1, 0.2, 0.3], rtol=1e-6)
    np.testing.assert_allclose(p.gender_probs[0], [0.9, 0.1])
    np.testing.assert_allclose(p.age_probs[1], 0.2)  # no face: uniform
    assert tuple(p.crops.shape) == (3, 3, 8, 8)
    assert prior_from_results([fake_result()]).crops is None
    with pytest.raises(ValueError):
        prior_from_results([])


def test_priors_pack_into_the_model_inputs(tiny_config):
    from emollama.model.face_inputs import pack_face_priors

    fc = tiny_config.face_config
    ex = build_prior_extractor("synthetic", num_landmarks=fc.num_landmarks, num_blendshapes=fc.num_blendshapes)
    priors = ex.extract(np.zeros((20, 20, 3), np.uint8)) + ex.extract(np.ones((20, 20, 3), np.uint8))
    out = pack_face_priors(priors, fc)
    assert out["face_prior_values"].shape == (2, fc.prior_dim)
    assert out["face_landmarks"].shape == (2, fc.num_landmarks, 2)
