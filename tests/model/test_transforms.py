"""Frame preprocessing equals transformers' CLIP image processor (LLaMA-VID's), computed without torchvision."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from emollama.model.towers import Preprocess
from emollama.model.transforms import preprocess_frame, resize_crop, shortest_edge_size


@pytest.mark.parametrize("w, h, size", [(640, 480, 224), (480, 640, 224), (1280, 720, 336), (333, 100, 224),
                                        (100, 100, 224), (48, 40, 32), (225, 224, 224), (1919, 1080, 224)])
def test_resize_size_matches_transformers(w, h, size):
    from transformers.image_transforms import get_resize_output_image_size

    out_h, out_w = get_resize_output_image_size(np.zeros((h, w, 3), np.uint8), size, default_to_square=False)
    assert shortest_edge_size(w, h, size) == (out_w, out_h)


def test_640x480_truncates_like_clip():
    assert shortest_edge_size(640, 480, 224) == (298, 224)  # 224 * 640 / 480 = 298.67: truncated, not 299


def test_pixels_match_clip_image_processor():
    """Same uint8 resize + centre crop and the same normalised tensor as the PIL CLIP processor (LLaMA-VID's)."""
    try:
        from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
    except ImportError:  # older transformers: the slow processor is CLIPImageProcessor itself
        pytest.skip("transformers has no PIL-backend CLIP image processor")
    pp = Preprocess(size=224)
    rng = np.random.default_rng(0)
    img = Image.fromarray((rng.random((480, 640, 3)) * 255).astype(np.uint8))
    clip = CLIPImageProcessorPil(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224},
                                 image_mean=list(pp.mean), image_std=list(pp.std))
    ref = np.asarray(clip(img, return_tensors="np")["pixel_values"][0])  # (3, 224, 224)
    ours = preprocess_frame(img, pp).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-5)
    assert resize_crop(img, pp).shape == (224, 224, 3)
