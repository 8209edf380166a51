"""One face-crop definition: training (`data.face_crops: media`) pools the same landmark regions as evaluation and
the API, because every path cuts the analyzer's square crop at the region the landmarks are normalised to."""

from __future__ import annotations

import dataclasses
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


def test_visual_input_face_puts_the_same_face_crop_behind_image_everywhere(tiny_processor, tmp_path, rng):
    """`visual_input: face` (emollama-small): training, evaluation and the API put the face's 10 %-margin crop behind
    `<image>` (the emonet tower's own framing, `expression_input`'s region), cut by one function; 'frame' keeps the
    whole frame. Before, training and evaluation fed the whole frame while the API fed the crop."""
    pc = pytest.importorskip("emollama.priors.cache")
    from emollama.evaluation.backends import LocalBackend
    from emollama.evaluation.inputs import DecodedMedia
    from emollama.faces.align import square_box
    from emollama.media.decode import load_image
    from emollama.model.face_inputs import visual_item
    from emollama.priors.from_faces import prior_from_results

    path = tmp_path / "face.png"
    Image.fromarray(_frame(rng)).save(path)
    lm_px = _landmarks_px(rng)
    res = _prepare(path, lm_px)
    with pc.PriorCache(tmp_path / "cache", writable=True) as cache:
        cache.put(pc.EntryInfo("k", "", "", 0), res.prior, res.crops, res.has_crop)
    prior = pc.PriorCache(tmp_path / "cache").get("k")
    frame = np.asarray(load_image(path))
    want = crop_region(frame, square_box(BOX, 0.1))  # what the expression network crops for this face
    msgs = [{"role": "user", "content": "<image>\n<face>\nhi"}]

    tiny_processor.config.visual_input = "face"
    nb = tiny_processor.config.face_config.num_blendshapes  # the tiny model's width; the pixels are what matters
    ex = Example("k", msgs, [load_image(path)], [dataclasses.replace(prior, blendshapes=prior.blendshapes[:, :nb])],
                 "image", {})
    train = Collator(tiny_processor, "media")([ex])["pixel_values"]
    np.testing.assert_array_equal(Collator(tiny_processor, "media").media_for(ex)[0], want)  # the post-run score
    src = SimpleNamespace(get=lambda req: prior)
    backend = LocalBackend(None, tiny_processor, src, model_id="t", canonical=("happiness",), media=DecodedMedia())
    sample = SimpleNamespace(media=str(path), is_video=False, id="k", media_rel="face.png")
    item = SimpleNamespace(sample=sample)
    evaluated = backend._inputs([item])[0][0]
    api_prior = prior_from_results([FaceResult(box=BOX, landmarks=lm_px, crop=res.crops[0],
                                               crop_box=square_box(BOX, 0.25))])
    api = visual_item(tiny_processor.config, frame, api_prior)
    np.testing.assert_array_equal(evaluated, want)
    np.testing.assert_array_equal(api, want)
    assert torch.equal(train, preprocess_frame(want, tiny_processor.preprocess)[None])
    # priors prepared with another crop margin (`emollama prepare --crop-margin 0.4`) give the same face crop
    wide = dataclasses.replace(api_prior, crop_boxes=np.array([square_box(BOX, 0.4).xyxy]))
    np.testing.assert_array_equal(visual_item(tiny_processor.config, frame, wide, 0.4), want)
    # a clip, or a prior without a region, keeps its frames; a 'frame' model keeps the whole photo
    assert visual_item(tiny_processor.config, [frame, frame], prior)[0] is frame
    prior.crop_boxes = np.full((1, 4), np.nan)
    np.testing.assert_array_equal(visual_item(tiny_processor.config, frame, prior), frame)
    tiny_processor.config.visual_input = "frame"
    assert visual_item(tiny_processor.config, frame, api_prior) is frame
    whole = Collator(tiny_processor, "media")([ex])["pixel_values"]
    assert torch.equal(whole, preprocess_frame(load_image(path), tiny_processor.preprocess)[None])


def test_reframe_changes_only_the_margin():
    from emollama.faces.align import reframe, square_box

    got = reframe(square_box(BOX, 0.25), 0.25, 0.1)
    np.testing.assert_allclose(got.xyxy, square_box(BOX, 0.1).xyxy, rtol=0, atol=1e-9)


def test_post_run_score_puts_the_face_crop_behind_image(tiny_processor, monkeypatch, rng):
    """`emollama train`'s post-run closed-set score (eval.json) feeds the model what training fed it."""
    from tests.conftest import make_prior

    from emollama.faces.align import square_box
    from emollama.training import evaluate

    frame = _frame(rng)
    prior = make_prior(tiny_processor.config, 1, rng, crops=False)
    prior.crop_boxes = np.array([square_box(BOX, 0.25).xyxy])
    ex = Example("k", [{"role": "user", "content": "<image>\n<face>\nwhich?"}, {"role": "assistant", "content": "a"}],
                 [frame], [prior], "image", {"options": ["a", "b"]})
    seen = []

    def fake_score(model, processor, messages, options, media, faces, agr):
        seen.append(media[0])
        return SimpleNamespace(index=0)

    monkeypatch.setattr(evaluate, "score_classes", fake_score)
    collator = Collator(tiny_processor, "none")
    tiny_processor.config.visual_input = "face"
    out = evaluate.closed_set_accuracy(torch.nn.Linear(1, 1), tiny_processor, [ex], collator)
    assert out["n"] == 1
    np.testing.assert_array_equal(seen[0], crop_region(frame, square_box(BOX, 0.1)))
