"""Processor: conversation rendering, label masking, per-turn Q-Former prompts, AGR insertion, padding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.conftest import make_frames, make_prior
from tests.numerics import assert_close_numerics

from emollama.constants import IGNORE_INDEX
from emollama.faces.contract import AGRAttributes
from emollama.model.conversation import VICUNA_V1_SYSTEM, render_vicuna_v1

TWO_TURNS = [
    {"role": "user", "content": "<video>\nWhat is the emotion of the person in the video?"},
    {"role": "assistant", "content": "sadness"},
    {"role": "user", "content": "Why is she sad?"},
    {"role": "assistant", "content": "the corners of the mouth are pulled down"},
]


def test_vicuna_v1_exact_string():
    r = render_vicuna_v1(TWO_TURNS[:3], add_generation_prompt=True)
    assert r.text == (
        f"{VICUNA_V1_SYSTEM} USER: <video>\nWhat is the emotion of the person in the video? ASSISTANT: sadness</s>"
        "USER: Why is she sad? ASSISTANT:"
    )
    assert [r.text[s:e] for s, e in r.spans] == [" sadness</s>"]


def test_two_turn_masking_supervises_only_answers_and_eos(tiny_processor, rng):
    batch = tiny_processor(TWO_TURNS, media=[make_frames(2, rng)])
    ids, labels = batch["input_ids"][0], batch["labels"][0]
    tok = tiny_processor.tokenizer
    supervised = [tok.convert_ids_to_tokens(int(i)) for i in labels[labels != IGNORE_INDEX]]
    assert supervised == ["sadness", "</s>", "the", "corners", "of", "the", "mouth", "are", "pulled", "down", "</s>"]
    # supervised positions carry their own token id; everything else (BOS, system, USER/ASSISTANT, video) is ignored
    keep = labels != IGNORE_INDEX
    assert torch.equal(labels[keep], ids[keep])
    assert labels[0] == IGNORE_INDEX and ids[0] == tok.bos_token_id
    assert (labels[ids == tiny_processor.config.video_token_id] == IGNORE_INDEX).all()


def test_per_turn_qformer_prompts(tiny_processor, rng):
    conv = [
        {"role": "user", "content": "<image>\nWhat is the facial expression?"},
        {"role": "assistant", "content": "happiness"},
        {"role": "user", "content": "Describe the mouth <image>"},
    ]
    frame = make_frames(1, rng)[0]
    batch = tiny_processor(conv, media=[frame, frame], add_generation_prompt=True)
    q = tiny_processor.qformer_tokenizer.batch_decode(batch["qformer_input_ids"], skip_special_tokens=True)
    assert q == ["what is the facial expression?", "describe the mouth"]


def test_per_turn_prompts_change_each_turns_tokens(tiny_model, tiny_processor, rng):
    frame = make_frames(1, rng)[0]
    conv = [
        {"role": "user", "content": "<image>\nWhat is the facial expression?"},
        {"role": "assistant", "content": "happiness"},
        {"role": "user", "content": "Describe the mouth <image>"},
    ]
    b = tiny_processor(conv, media=[frame, frame], add_generation_prompt=True)
    with torch.no_grad():  # 0.02-std init gives near-uniform patch attention; sharpen it so prompts matter visibly
        tiny_model.llamavid.vlm_att_key_projector.weight.mul_(200)
        tiny_model.llamavid.vlm_att_projector.weight.mul_(50)
    rows = tiny_model.get_visual_tokens(b["pixel_values"], b["media_frame_counts"], b["qformer_input_ids"],
                                        b["qformer_attention_mask"])
    assert rows.shape[0] == 4
    assert not torch.allclose(rows[0], rows[2], atol=1e-5)  # context tokens differ: each turn's own prompt
    assert_close_numerics(rows[1], rows[3])  # content token: same image (another row of the batched GEMM)


def test_later_turns_get_their_own_visual_tokens(tiny_model, tiny_processor, rng):
    """LLaMA-VID (SPEC §2.8): in a two-turn conversation about one video the second user turn gets its own copy of
    the video tokens, context tokens guided by its own text; the frames go through the tower once."""
    from emollama.model import tokens

    cfg = tiny_processor.config
    b = tiny_processor(TWO_TURNS, media=[make_frames(2, rng)])
    n = tokens.num_visual_tokens(cfg, 2)
    vid = (b["input_ids"][0] == cfg.video_token_id).nonzero()[:, 0]
    assert len(vid) == 2 * n and b["pixel_values"].shape[0] == 2 and b["visual_media_index"].tolist() == [0, 0]
    answer = int((b["input_ids"][0] == tiny_processor.tokenizer.convert_tokens_to_ids("sadness")).nonzero()[0])
    assert int(vid[n - 1]) < answer < int(vid[n])  # the copy sits in the second user turn
    q = tiny_processor.qformer_tokenizer.batch_decode(b["qformer_input_ids"], skip_special_tokens=True)
    qtok = tiny_processor.qformer_tokenizer
    assert q == [qtok.decode(qtok(t)["input_ids"], skip_special_tokens=True)
                 for t in ("What is the emotion of the person in the video?", "Why is she sad?")]
    with torch.no_grad():  # sharpen the near-uniform patch attention of the 0.02-std init so prompts matter visibly
        tiny_model.llamavid.vlm_att_key_projector.weight.mul_(200)
        tiny_model.llamavid.vlm_att_projector.weight.mul_(50)
        rows = tiny_model.get_visual_tokens(b["pixel_values"], b["media_frame_counts"], b["qformer_input_ids"],
                                            b["qformer_attention_mask"], b["visual_media_index"])
        assert rows.shape[0] == 2 * n
        assert not torch.allclose(rows[0], rows[n], atol=1e-5)  # frame 1's context token: each turn's own prompt
        assert_close_numerics(rows[1], rows[n + 1], msg="content tokens:")  # frame 1's content: the same pixels
        assert torch.isfinite(tiny_model(**b).loss)
    ids, _ = tiny_processor.conversation_ids(TWO_TURNS, False)  # scoring's token view agrees with the batch
    assert ids.count(cfg.video_token_id) == 2
    cfg.visual_tokens_per_turn = False  # LLaMA-VID without the per-turn rule: only the first turn's placeholder
    b = tiny_processor(TWO_TURNS, media=[make_frames(2, rng)])
    assert int((b["input_ids"] == cfg.video_token_id).sum()) == n and b["visual_media_index"].tolist() == [0]


def test_agr_goes_after_placeholders_and_not_into_qformer(tiny_processor, rng):
    agr = AGRAttributes(age_group="20-39", gender="female", gender_confidence=0.9)
    conv = [{"role": "user", "content": "<image>\n<face>\nWhat is the facial expression?"}]
    cfg = tiny_processor.config
    b = tiny_processor(conv, media=make_frames(1, rng), faces=[make_prior(cfg, 1, rng)], agr=agr,
                       add_generation_prompt=True)
    text = tiny_processor.tokenizer.decode(b["input_ids"][0], skip_special_tokens=True)
    assert "USER : The person appears to be an adult woman. What is the facial expression? ASSISTANT :" in text
    q = tiny_processor.qformer_tokenizer.batch_decode(b["qformer_input_ids"], skip_special_tokens=True)
    assert q == ["what is the facial expression?"]


def test_low_confidence_agr_is_omitted(tiny_processor):
    agr = AGRAttributes(age_group="20-39", gender="female", age_confidence=0.2, gender_confidence=0.3)
    with_agr = tiny_processor([{"role": "user", "content": "What?"}], agr=agr)
    without = tiny_processor([{"role": "user", "content": "What?"}])
    assert torch.equal(with_agr["input_ids"], without["input_ids"])


def test_left_and_right_padding(tiny_processor):
    convs = [[{"role": "user", "content": "What?"}], [{"role": "user", "content": "What is the facial expression?"}]]
    right = tiny_processor(convs, add_generation_prompt=True)
    left = tiny_processor(convs, add_generation_prompt=True, padding_side="left")
    pad = tiny_processor.pad_id
    assert right["attention_mask"][0, -1] == 0 and right["input_ids"][0, -1] == pad
    assert left["attention_mask"][0, 0] == 0 and left["attention_mask"][0, -1] == 1
    for r, l_ in zip(right["input_ids"], left["input_ids"], strict=True):
        assert torch.equal(r[r != pad], l_[l_ != pad])


@pytest.mark.parametrize(
    "conv, err",
    [
        ([{"role": "assistant", "content": "hi"}], "alternate"),
        ([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "alternate"),
        ([{"role": "user", "content": 3}], "must be a string"),
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "<image>"}], "assistant message"),
    ],
)
def test_bad_conversations_raise(tiny_processor, conv, err):
    with pytest.raises(ValueError, match=err):
        tiny_processor(conv, media=[np.zeros((8, 8, 3), np.uint8)] if "<image>" in str(conv) else None)


def test_image_placeholder_rejects_clip(tiny_processor, rng):
    with pytest.raises(ValueError, match="<image> got 3 frames; use <video>"):
        tiny_processor([{"role": "user", "content": "<image> q"}], media=[make_frames(3, rng)])


def test_max_length_is_enforced_not_truncated(tiny_processor, rng):
    with pytest.raises(ValueError, match="max_length=10"):
        tiny_processor([{"role": "user", "content": "<video> q"}], media=[make_frames(3, rng)], max_length=10)
