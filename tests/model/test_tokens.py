"""Token accounting: processor placeholders == model feature rows, for every modality and pooling mode."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.conftest import make_frames, make_prior

from emollama.model import tokens
from emollama.model.build import build_tiny


@pytest.mark.parametrize("compress", ["mean", "grid:2", None])
@pytest.mark.parametrize("n_frames", [1, 3])
def test_placeholders_match_feature_rows(compress, n_frames, rng):
    over = [f"compress_type={'null' if compress is None else compress}"]
    model, proc = build_tiny(over)
    cfg = model.config
    frames = make_frames(n_frames, rng)
    tag = "<image>" if n_frames == 1 else "<video>"
    batch = proc([{"role": "user", "content": f"{tag}\n<face>\nWhat is the emotion?"}], media=[frames],
                 faces=[make_prior(cfg, n_frames, rng)], add_generation_prompt=True)
    expected = n_frames * (1 + {"mean": 1, "grid:2": 4, None: 16}[compress])
    assert tokens.num_visual_tokens(cfg, n_frames) == expected
    ids = batch["input_ids"][0]
    n_vis = int(((ids == cfg.image_token_id) | (ids == cfg.video_token_id)).sum())
    assert n_vis == expected
    assert int((ids == cfg.face_token_id).sum()) == tokens.num_face_tokens(cfg) == 4
    rows = model.get_visual_tokens(batch["pixel_values"], batch["media_frame_counts"], batch["qformer_input_ids"],
                                   batch["qformer_attention_mask"])
    assert rows.shape == (expected, cfg.text_config.hidden_size)
    model(**batch)  # counts agree -> no error


def test_one_missing_placeholder_raises_with_both_counts(tiny_model, tiny_processor, rng):
    cfg = tiny_model.config
    batch = tiny_processor([{"role": "user", "content": "<video> What is the emotion?"}], media=[make_frames(3, rng)])
    ids = batch["input_ids"].clone()
    pos = int((ids[0] == cfg.video_token_id).nonzero()[0])
    ids[0, pos] = 40  # an ordinary word: one placeholder fewer
    batch["input_ids"] = ids
    msg = r"<image>/<video>: 5 placeholder tokens but 6 feature rows \(1 media with frames \[3\]"
    with pytest.raises(ValueError, match=msg):
        tiny_model(**batch)


def test_face_placeholder_mismatch_raises(tiny_model, tiny_processor, rng):
    cfg = tiny_model.config
    batch = tiny_processor([{"role": "user", "content": "<face> Why?"}], faces=[make_prior(cfg, 2, rng)])
    batch["input_ids"] = torch.cat([batch["input_ids"], torch.tensor([[cfg.face_token_id]])], dim=1)
    batch["attention_mask"] = torch.ones_like(batch["input_ids"])
    batch.pop("labels")
    with pytest.raises(ValueError, match="<face>: 5 placeholder tokens but 4 feature rows"):
        tiny_model(**batch)


def test_placeholder_without_media_raises(tiny_processor):
    with pytest.raises(ValueError, match="more <image>/<video> placeholders than media items"):
        tiny_processor([{"role": "user", "content": "<image> What?"}])
    with pytest.raises(ValueError, match="1 <image>/<video> placeholders for 2 media items"):
        tiny_processor([{"role": "user", "content": "<image> What?"}], media=make_frames(2, np.random.default_rng(0)))


def test_image_equals_one_frame_video(tiny_model, tiny_processor, rng):
    frame = make_frames(1, rng)[0]
    a = tiny_processor([{"role": "user", "content": "<image>\nWhat is it?"}], media=[frame])
    b = tiny_processor([{"role": "user", "content": "<video>\nWhat is it?"}], media=[[frame]])
    ta = tiny_model.get_visual_tokens(a["pixel_values"], a["media_frame_counts"], a["qformer_input_ids"],
                                      a["qformer_attention_mask"])
    tb = tiny_model.get_visual_tokens(b["pixel_values"], b["media_frame_counts"], b["qformer_input_ids"],
                                      b["qformer_attention_mask"])
    torch.testing.assert_close(ta, tb, rtol=0, atol=0)


def test_grid_must_divide_patch_grid():
    model, _ = build_tiny()
    model.config.compress_type = "grid:3"
    with pytest.raises(ValueError, match="divisible by 3"):
        tokens.content_tokens_per_frame(model.config)
