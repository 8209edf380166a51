"""Closed-set scoring: log-likelihood of every class answer after one shared prompt prefill (KV cache).

The prompt (media, face tokens, question) is prefilled ONCE; the cache is repeated across the K class answers,
which are scored in one batched forward. An answer's score is the sum of its token log-probabilities including
the end-of-answer token, so 'sad' cannot win merely by being a prefix of 'sadness'. Softmax over the K scores gives
calibrated class probabilities; there is never an unparseable answer. The maths is
`emollama.model.inference.score_continuations`, which `emollama.model.inference.answer` shares with generation.
"""

from __future__ import annotations

import torch

from emollama.model.inference import ClassScores, answer_token_ids, prompt_batch, score_continuations
from emollama.model.modeling import EmoLlamaForConditionalGeneration
from emollama.model.processor import EmoLlamaProcessor

__all__ = ["ClassScores", "answer_token_ids", "score_classes"]



@torch.no_grad()
def score_classes(
    model: EmoLlamaForConditionalGeneration,
    processor: EmoLlamaProcessor,
    conversation: list[dict],
    answers: list[str],
    media: list | None = None,
    faces: list | None = None,
    agr=None,
) -> ClassScores:
    """Score K candidate answers for one sample.

    Args:
        conversation: the user turn(s), ending with a user message (placeholders as in training).
        answers: K class names (the dataset's vocabulary, optionally synonyms).
    Returns:
        ClassScores with loglik (K,) and probs (K,) in float32.
    """
    _, conts = answer_token_ids(processor, conversation, answers, agr)
    batch = prompt_batch(model, processor, conversation, media, faces, agr)
    out = model(**batch, use_cache=True)
    loglik = score_continuations(model, out.logits[0, -1], out.cache, batch["attention_mask"], conts,
                                 processor.pad_id)
    return ClassScores.from_loglik(loglik)
