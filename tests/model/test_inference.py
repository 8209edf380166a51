"""emollama.model.inference.answer: class scoring + greedy generation from ONE prefill equal the two-pass computation
(evaluation.scoring.score_classes, then model.generate) on the tiny random model."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from tests.conftest import make_frames, make_prior
from tests.numerics import assert_argmax_agrees, assert_close_numerics

from emollama.evaluation.scoring import score_classes
from emollama.faces.contract import AGRAttributes
from emollama.faces.decide import LABELS
from emollama.model.inference import answer


def count_passes(model) -> tuple[Counter, list]:
    """Counter of vision-tower forwards ('tower') and LM forwards that start from an empty cache ('prefill');
    returns it with the hook handles (remove them after)."""
    counts: Counter = Counter()

    def lm(_module, _args, kwargs):
        cache = kwargs.get("cache")
        if cache is None or cache.get_seq_length() == 0:
            counts["prefill"] += 1

    hooks = [model.vision_tower.register_forward_pre_hook(lambda *_: counts.update(["tower"])),
             model.language_model.register_forward_pre_hook(lm, with_kwargs=True)]
    return counts, hooks


def two_pass(model, processor, conv, media, faces, agr, max_new_tokens):
    """The computation `answer` replaces: scoring prefills the prompt, then generation prefills it again."""
    scores = score_classes(model, processor, conv, list(LABELS), media=media, faces=faces, agr=agr)
    batch = processor(conv, media=media, faces=faces, agr=agr, add_generation_prompt=True)
    batch.pop("labels")
    ids = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False)
    new = ids[0, batch["input_ids"].shape[1]:]
    return scores, processor.decode(new), new.tolist()


@pytest.mark.parametrize("video,max_new_tokens", [(False, 6), (True, 6), (False, 1)])
def test_one_prefill_equals_the_two_pass_computation(tiny_model, tiny_processor, rng, video, max_new_tokens):
    t = 3 if video else 1
    frames = make_frames(t, rng)
    media = [frames] if video else [frames[0]]
    faces = [make_prior(tiny_processor.config, t, rng)]
    tag = "<video>" if video else "<image>"
    conv = [{"role": "user", "content": f"{tag}\n<face>\nWhat is the facial expression? Explain the cues."}]
    agr = AGRAttributes(age_group="20-39", gender="female")

    counts, hooks = count_passes(tiny_model)
    try:
        with torch.inference_mode():
            got = answer(tiny_model, tiny_processor, conv, list(LABELS), media=media, faces=faces, agr=agr,
                         max_new_tokens=max_new_tokens)
            one = dict(counts)
            counts.clear()
            ref_scores, ref_text, ref_ids = two_pass(tiny_model, tiny_processor, conv, media, faces, agr,
                                                     max_new_tokens)
    finally:
        for h in hooks:
            h.remove()
    per_pass = 1 + tiny_model.config.face_config.use_crop_features  # the media frames, then the face crops
    assert one == {"tower": per_pass, "prefill": 1}
    assert dict(counts) == {"tower": 2 * per_pass, "prefill": 2}  # what the shared prefill saves

    assert_close_numerics(got.scores.loglik, ref_scores.loglik, msg="loglik, one prefill vs two:")
    assert_close_numerics(got.scores.probs, ref_scores.probs, msg="probs, one prefill vs two:")
    assert_argmax_agrees(got.scores.loglik[None], ref_scores.loglik[None])
    assert got.token_ids == ref_ids and got.text == ref_text
    assert 1 <= len(got.token_ids) <= max_new_tokens
