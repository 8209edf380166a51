"""Closed-set scoring: log-likelihood of every class answer after one shared prompt prefill (KV cache).

The prompt (media, face tokens, question) is prefilled ONCE; the cache is repeated across the K class answers,
which are scored in one batched forward. An answer's score is the sum of its token log-probabilities including
the end-of-answer token, so 'sad' cannot win merely by being a prefix of 'sadness'. Softmax over the K scores gives
calibrated class probabilities; there is never an unparseable answer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from emollama.model.modeling import EmoLlamaForConditionalGeneration
from emollama.model.processor import EmoLlamaProcessor

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClassScores:
    """Per-class log-likelihoods (K,), their softmax (K,), and the argmax index."""

    loglik: torch.Tensor
    probs: torch.Tensor

    @property
    def index(self) -> int:
        return int(self.loglik.argmax())


def answer_token_ids(processor: EmoLlamaProcessor, conversation: list[dict], answers: list[str],
                     agr=None) -> tuple[list[int], list[list[int]]]:
    """Token ids of the generation prompt and of each answer continuation (answer + end-of-turn), pre-expansion.

    Derived from the same rendering + offset logic as training labels, so scoring sees exactly the tokens the
    model was trained to produce. Raises ValueError if a tokenizer merges text across the prompt/answer boundary.
    """
    prompt, _ = processor.conversation_ids(conversation, True, agr)
    conts = []
    for ans in answers:
        full, _ = processor.conversation_ids([*conversation, {"role": "assistant", "content": ans}], False, agr)
        if full[: len(prompt)] != prompt:
            raise ValueError(f"tokenizer merges the prompt with answer {ans!r}; score full sequences instead")
        conts.append(full[len(prompt) :])
    return prompt, conts


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
    batch = processor(conversation, media=media, faces=faces, agr=agr, add_generation_prompt=True)
    batch.pop("labels")
    batch = batch.to(model.device)
    out = model(**batch, use_cache=True)
    first = torch.log_softmax(out.logits[0, -1].float(), -1)  # distribution of each answer's first token
    k, width = len(conts), max(len(c) for c in conts)
    loglik = torch.stack([first[c[0]] for c in conts])
    if width > 1:
        cache = out.cache
        cache.batch_repeat_interleave(k)
        pad = processor.pad_id
        ids = torch.full((k, width - 1), pad, dtype=torch.long, device=model.device)
        for i, c in enumerate(conts):
            ids[i, : len(c) - 1] = torch.tensor(c[:-1])
        prompt_len = batch["input_ids"].shape[1]
        mask = torch.cat([batch["attention_mask"].expand(k, -1), torch.ones_like(ids)], dim=1)
        pos = torch.arange(prompt_len, prompt_len + width - 1, device=model.device).expand(k, -1)
        logits = model.language_model(input_ids=ids, attention_mask=mask, position_ids=pos, cache=cache).logits
        logp = torch.log_softmax(logits.float(), -1)  # (K, width-1, V): predicts tokens 1..width-1
        for i, c in enumerate(conts):
            if len(c) > 1:
                tgt = torch.tensor(c[1:], device=model.device)
                loglik[i] = loglik[i] + logp[i, : len(c) - 1].gather(-1, tgt[:, None]).sum()
    return ClassScores(loglik.cpu(), torch.softmax(loglik, 0).cpu())
