"""Score mode: one prefill + batched class continuations == scoring each class alone on the full sequence."""

from __future__ import annotations

import torch
from tests.conftest import make_frames, make_prior
from tests.numerics import assert_argmax_agrees, assert_close_numerics

from emollama.constants import IGNORE_INDEX, RAFDB_CLASSES
from emollama.evaluation.scoring import answer_token_ids, score_classes

CONV = [{"role": "user", "content": "<video>\n<face>\nWhat is the facial expression? Choose one."}]


def _full_sequence_loglik(model, proc, media, faces, answer):
    b = proc([*CONV, {"role": "assistant", "content": answer}], media=media, faces=faces)
    labels = b.pop("labels")
    logits = model(**b).logits[0, :-1]
    tgt = labels[0, 1:]
    keep = tgt != IGNORE_INDEX
    return torch.log_softmax(logits, -1)[keep].gather(-1, tgt[keep][:, None]).sum()


def test_batched_scores_equal_one_label_at_a_time(tiny_model, tiny_processor, rng):
    media, faces = [make_frames(3, rng)], [make_prior(tiny_processor.config, 3, rng)]
    answers = [*RAFDB_CLASSES, "the mouth corners are pulled down"]  # unequal lengths exercise the padding
    s = score_classes(tiny_model, tiny_processor, CONV, answers, media=media, faces=faces)
    assert s.probs.shape == (len(answers),)
    torch.testing.assert_close(s.probs.sum(), torch.tensor(1.0))
    with torch.no_grad():
        ref = torch.stack([_full_sequence_loglik(tiny_model, tiny_processor, media, faces, a) for a in answers])
    # one prefill + batched continuations vs a full forward per answer: equal up to rounding
    assert_close_numerics(s.loglik, ref, msg="batched vs one at a time:")
    assert_argmax_agrees(s.loglik[None], ref[None])
    assert s.index == int(s.loglik.argmax())


def test_padding_does_not_change_scores(tiny_model, tiny_processor, rng):
    media, faces = [make_frames(2, rng)], [make_prior(tiny_processor.config, 2, rng)]
    both = score_classes(tiny_model, tiny_processor, CONV, ["anger", "the brows are lowered"], media, faces)
    alone = score_classes(tiny_model, tiny_processor, CONV, ["anger"], media, faces)
    assert_close_numerics(both.loglik[:1], alone.loglik[:1], msg="padded vs alone:")


def test_answer_tokens_include_end_of_answer(tiny_processor):
    _, conts = answer_token_ids(tiny_processor, [{"role": "user", "content": "What?"}], ["sadness", "sad"])
    eos = tiny_processor.tokenizer.eos_token_id
    assert conts[0][-1] == eos and conts[1][-1] == eos and conts[0] != conts[1]
