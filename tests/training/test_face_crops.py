"""One face-crop definition: training (`data.face_crops: media`) pools the same landmark regions as evaluation and
the API, because every path cuts the analyzer's square crop at the region the landmarks are normalised to."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from emollama.faces.align import CropConfig, crop_face, crop_region, landmarks_to_crop
from emollama.faces.types import FaceBox, FaceResult
from emollama.model.face_mining import pool_regions, region_boxes
from emollama.model.transforms import preprocess_frame
from emollama.training.collate import Collator, media_face_crops
from emollama.training.data import Example

BOX = FaceBox(41.3, 22.7, 93.1, 80.4)  # a face in a 120 x 90 frame, not filling it


def _frame(rng) -> np.ndarray:
    return (rng.random((90, 120, 3)) * 255).astype(np.uint8)


def _landmarks_px(rng) -> np.ndarray:
    """10 'tiny10' points inside BOX, in image pixels."""
    u = rng.uniform(0.15, 0.85, (10, 2))
    return np.stack([BOX.x0 + u[:, 0] * BOX.width, BOX.y0 + u[:, 1] * BOX.height], 1).astype(np.float32)


class _FakeAnalyzer:
    """The analyzer's face stage on a fixed box: crop + crop_box exactly as `Analyzer` makes them."""

    cfg = SimpleNamespace(crop=CropConfig())

    def __init__(self, landmarks_px: np.ndarray) -> None:
        self.landmarks_px = landmarks_px

    def analyze_image(self, rgb):
        crop, region = crop_face(np.asarray(rgb), BOX, self.cfg.crop)
        return [FaceResult(box=BOX, landmarks=self.landmarks_px, crop=crop, crop_box=region)]


def _prepare(path, landmarks_px):
    """`emollama prepare`'s per-sample extraction (mediapipe path) with the fake analyzer."""
    from emollama.priors.extract import CropPriorExtractor
    from emollama.priors.keys import ExtractorSpec

    ext = CropPriorExtractor.__new__(CropPriorExtractor)
    ext.spec, ext.delay = ExtractorSpec("mediapipe"), 0.0
    ext.backend = SimpleNamespace(analyzer=_FakeAnalyzer(landmarks_px))
    res = ext(path, False, "uniform:8")
    assert res.error is None, res.error
    return res


def _pooled(model, crops: torch.Tensor, landmarks: np.ndarray) -> torch.Tensor:
    """(T, R, Dv): vision patch features of the crops pooled inside each landmark region (Face Info Mining)."""
    fc = model.config.face_config
    patches = model.encode_frames(crops)[:, 1:]
    boxes = region_boxes(torch.as_tensor(landmarks).float(), fc.landmark_layout, fc.region_margin)
    return pool_regions(patches, boxes)


def test_training_pools_the_same_regions_as_eval_and_api(tiny_model, tiny_processor, tmp_path, rng):
    pc = pytest.importorskip("emollama.priors.cache")
    from emollama.media.decode import load_image
    from emollama.model.transforms import tower_crops
    from emollama.priors.from_faces import prior_from_results

    pp = tiny_processor.preprocess
    path = tmp_path / "face.png"
    Image.fromarray(_frame(rng)).save(path)
    lm_px = _landmarks_px(rng)
    res = _prepare(path, lm_px)
    np.testing.assert_allclose(res.prior.crop_boxes[0], crop_face(np.zeros((90, 120, 3), np.uint8), BOX)[1].xyxy)
    # the prior cache round trip: crop regions are stored with the prior (cache:DIR training source)
    with pc.PriorCache(tmp_path / "cache", writable=True) as cache:
        cache.put(pc.EntryInfo("k", "", "", 0), res.prior, res.crops, res.has_crop)
    cache = pc.PriorCache(tmp_path / "cache")
    train_prior = cache.get("k")  # what `data.priors: cache:DIR` yields with face_crops=media (no stored crops)
    assert train_prior.crops is None and train_prior.crop_boxes is not None
    # inference: eval cold (prepare's crops), eval cached (cache crops) and the API (analyzer results)
    eval_cold = tower_crops(res.crops, res.has_crop, pp)
    eval_cached = cache.get("k", preprocess=pp).crops
    region = crop_face(np.asarray(load_image(path)), BOX)[1]
    api = prior_from_results([FaceResult(box=BOX, landmarks=lm_px, crop=res.crops[0], crop_box=region)], pp)
    # training, media mode: the collator cuts the crop from the decoded media
    ex = Example("k", [{"role": "user", "content": "<image>\n<face>\nhi"}], [load_image(path)], [train_prior], "image",
                 {})
    train = Collator(tiny_processor, "media").faces_for(ex)[0]
    for other in (eval_cold, eval_cached, api.crops):
        assert torch.equal(train.crops, other)
    np.testing.assert_allclose(train.landmarks, api.landmarks)
    np.testing.assert_allclose(train.landmarks[0], landmarks_to_crop(lm_px, region), atol=1e-6)
    with torch.no_grad():
        pooled_train = _pooled(tiny_model, train.crops, train.landmarks)
        pooled_eval = _pooled(tiny_model, eval_cached, np.asarray(cache.get("k").landmarks))
        whole_frame = preprocess_frame(load_image(path), pp)[None]  # the old media mode: the frame as the crop
        pooled_old = _pooled(tiny_model, whole_frame, train.landmarks)
    torch.testing.assert_close(pooled_train, pooled_eval, rtol=0, atol=0)
    assert not torch.allclose(pooled_old, pooled_eval, atol=1e-3)


def test_prior_without_regions_counts_as_a_face_filling_the_frame(tiny_processor, tiny_config, rng):
    """Old caches (no crop_boxes): the analyzer's crop of a face whose box is the whole frame; no face -> zeros."""
    from tests.conftest import make_prior

    pp = tiny_processor.preprocess
    frames = [_frame(rng), _frame(rng)]
    prior = make_prior(tiny_config, 2, rng, crops=False)
    prior.valid = np.array([True, False])
    got = media_face_crops(frames, prior, pp)
    want = preprocess_frame(crop_face(frames[0], FaceBox(0, 0, 120, 90))[0], pp)
    assert torch.equal(got[0], want) and torch.equal(got[1], torch.zeros_like(got[1]))
    prior.crop_boxes = np.array([[0.0, 0.0, 120.0, 120.0], [np.nan] * 4])  # recorded regions win; NaN = no crop
    got = media_face_crops(frames, prior, pp)
    assert torch.equal(got[0], preprocess_frame(crop_region(frames[0], FaceBox(0, 0, 120, 120), 224), pp))
    assert torch.equal(got[1], torch.zeros_like(got[1]))
