"""`expression_input`'s context masking: what the expression network sees outside the face box."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from emollama import assets
from emollama.faces.expression_net import ExpressionNetConfig, expression_input
from emollama.faces.types import FaceBox

MASKED, KEPT = ExpressionNetConfig(mask_context=True), ExpressionNetConfig()


def _pattern(h: int, w: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(40, 256, size=(h, w, 3), dtype=np.uint8)  # no zero pixel: a zero means "masked"


def test_the_recipe_and_files_without_the_field_keep_the_context():
    assert KEPT.mask_context is False  # the shipped recipe (docs/expression_model.md: the masked run missed its rule)
    legacy = json.loads(MASKED.to_json())
    del legacy["mask_context"]  # what every file written before the field stores
    assert ExpressionNetConfig.from_json(json.dumps(legacy)).mask_context is False
    assert ExpressionNetConfig.from_json(MASKED.to_json()) == MASKED
    assert ExpressionNetConfig.from_json(KEPT.to_json()) == KEPT


def test_pixels_outside_the_box_are_zero_and_inside_untouched():
    # side 1.5 x 40 = 60 px -> 64: a near-identity resize
    cfg = ExpressionNetConfig(size=64, margin=0.25, mask_context=True)
    rgb = _pattern(200, 200)
    box = FaceBox(80.0, 70.0, 120.0, 110.0, 1.0, "test")  # 40 x 40, region 60 x 60 from (70, 60)
    masked = expression_input(rgb, box, cfg)
    kept = expression_input(rgb, box, ExpressionNetConfig(size=64, margin=0.25))
    scale = 64 / 60
    inner = (slice(int(10 * scale) + 2, int(50 * scale) - 2),) * 2  # the box in crop pixels, 2 px inside its edge
    assert (masked[: int(10 * scale) - 1] == 0).all() and (masked[:, : int(10 * scale) - 1] == 0).all()
    assert (masked[int(50 * scale) + 2 :] == 0).all() and (masked[:, int(50 * scale) + 2 :] == 0).all()
    np.testing.assert_array_equal(masked[inner], kept[inner])
    assert (kept > 0).all()  # the context survives without the mask


def test_a_box_over_the_whole_image_keeps_every_pixel():
    rgb = _pattern(48, 48)
    box = FaceBox(0.0, 0.0, 48.0, 48.0, 1.0, "whole-image")
    masked, kept = expression_input(rgb, box, MASKED), expression_input(rgb, box, KEPT)
    np.testing.assert_array_equal(masked, kept)  # only the zero padding outside the image is black, in both


def test_a_face_gets_the_same_input_whatever_surrounds_it():
    """The point of the mask: a real face in front of two different backgrounds, one network input."""
    try:
        from emollama.faces.detect import DetectorConfig, FaceDetector

        assets.resolve("face_landmarker", download=False)
        path = assets.resolve("feat_happy", download=False)
        detector = FaceDetector(DetectorConfig())
    except (ImportError, assets.AssetError) as err:
        pytest.skip(f"face stack unavailable ({err}); run `python scripts/install_faces.py`")
    rgb = np.asarray(Image.open(path).convert("RGB"))
    faces = detector.detect(rgb)
    assert faces, "the happy sample photo has a face"
    box = faces[0].box
    x0, y0, x1, y1 = (int(np.floor(box.x0)), int(np.floor(box.y0)), int(np.ceil(box.x1)), int(np.ceil(box.y1)))
    other = np.array(rgb)
    other[:, :] = (30, 200, 90)  # a green studio wall ...
    other[max(0, y0) : y1, max(0, x0) : x1] = rgb[max(0, y0) : y1, max(0, x0) : x1]  # ... behind the same face box
    np.testing.assert_array_equal(expression_input(rgb, box, MASKED), expression_input(other, box, MASKED))
    assert np.abs(expression_input(rgb, box, KEPT).astype(int) - expression_input(other, box, KEPT)).max() > 50
