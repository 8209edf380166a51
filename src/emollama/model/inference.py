"""Per-sample inference: closed-set class scoring and greedy generation from ONE prompt prefill and KV cache.

Scoring: an answer's score is the sum of its token log-probabilities after the prompt, end-of-answer token included,
so 'sad' cannot win merely by being a prefix of 'sadness'; the softmax over the K scores gives the class
probabilities, so there is never an unparseable answer. The first answer token is read off the prefill's last logits;
the rest of all K answers go through one batched forward over the prompt's cache repeated K times.

`answer` shares that prefill with greedy generation: `EmoLlamaForConditionalGeneration.generate` prefills the prompt
(vision tower, face branch and LM once) and decodes; its raw first-step logits are the prefill's last logits, and its
cache, cut back to the prompt, is the prefill's cache. (Generation runs first because `generate` cannot resume from
a cache that already covers the whole prompt.) `emollama.evaluation.scoring.score_classes` is the scoring alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from emollama.model.modeling import EmoLlamaForConditionalGeneration
from emollama.model.processor import EmoLlamaProcessor


@dataclass(frozen=True)
class ClassScores:
    """Per-class log-likelihoods (K,), their softmax (K,), and the argmax index."""

    loglik: torch.Tensor
    probs: torch.Tensor

    @property
    def index(self) -> int:
        return int(self.loglik.argmax())

    @classmethod
    def from_loglik(cls, loglik: torch.Tensor) -> ClassScores:
        """(K,) log-likelihoods -> scores on the CPU, probabilities = their softmax."""
        return cls(loglik.cpu(), torch.softmax(loglik, 0).cpu())


@dataclass(frozen=True)
class Answer:
    """One sample's class scores, greedy answer text and its generated token ids (prompt excluded)."""

    scores: ClassScores
    text: str
    token_ids: list[int]


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


def prompt_batch(model: EmoLlamaForConditionalGeneration, processor: EmoLlamaProcessor, conversation: list[dict],
                 media: list | None = None, faces: list | None = None, agr=None):
    """One sample's generation-prompt batch (input_ids (1, L), attention_mask (1, L), media tensors), no labels,
    on the model's device: the prompt that scoring and generation both prefill."""
    batch = processor(conversation, media=media, faces=faces, agr=agr, add_generation_prompt=True)
    batch.pop("labels")
    return batch.to(model.device)


@torch.no_grad()
def score_continuations(model: EmoLlamaForConditionalGeneration, last_logits: torch.Tensor, cache,
                        attention_mask: torch.Tensor, continuations: list[list[int]], pad_id: int) -> torch.Tensor:
    """Log-likelihood of each continuation after a prefilled prompt of one sample.

    Args:
        last_logits: (V,) the prefill's logits at the last prompt position.
        cache: the prompt's KV cache (exactly the prompt's L positions); repeated K times IN PLACE, so it is spent.
        attention_mask: (1, L) the prompt's mask.
        continuations: K token-id lists (`answer_token_ids`), each at least one token.
    Returns:
        (K,) float32 summed token log-probabilities, on the model's device.
    """
    first = torch.log_softmax(last_logits.float(), -1)  # distribution of each answer's first token
    k, width = len(continuations), max(len(c) for c in continuations)
    loglik = torch.stack([first[c[0]] for c in continuations])
    if width > 1:
        cache.batch_repeat_interleave(k)
        ids = torch.full((k, width - 1), pad_id, dtype=torch.long, device=model.device)
        for i, c in enumerate(continuations):
            ids[i, : len(c) - 1] = torch.tensor(c[:-1])
        prompt_len = attention_mask.shape[1]
        mask = torch.cat([attention_mask.expand(k, -1), torch.ones_like(ids)], dim=1)
        pos = torch.arange(prompt_len, prompt_len + width - 1, device=model.device).expand(k, -1)
        logits = model.language_model(input_ids=ids, attention_mask=mask, position_ids=pos, cache=cache).logits
        logp = torch.log_softmax(logits.float(), -1)  # (K, width-1, V): predicts tokens 1..width-1
        for i, c in enumerate(continuations):
            if len(c) > 1:
                tgt = torch.tensor(c[1:], device=model.device)
                loglik[i] = loglik[i] + logp[i, : len(c) - 1].gather(-1, tgt[:, None]).sum()
    return loglik


@torch.no_grad()
def answer(model: EmoLlamaForConditionalGeneration, processor: EmoLlamaProcessor, conversation: list[dict],
           answers: list[str], *, media: list | None = None, faces: list | None = None, agr=None,
           max_new_tokens: int = 64) -> Answer:
    """Score K candidate answers AND generate a greedy answer for one sample, with one prompt prefill.

    Args:
        conversation: the user turn(s), ending with a user message (placeholders as in training).
        answers: K class names; media / faces / agr: as `EmoLlamaProcessor` takes them for one conversation.
        max_new_tokens: generation length cap.
    Returns:
        `Answer`: scores (K,) equal to `emollama.evaluation.scoring.score_classes` up to float rounding, text and
        ids equal to ``model.generate(..., do_sample=False)``.
    """
    _, conts = answer_token_ids(processor, conversation, answers, agr)
    batch = prompt_batch(model, processor, conversation, media, faces, agr)
    prompt_len = batch["input_ids"].shape[1]
    out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False, return_dict_in_generate=True,
                         output_logits=True)
    cache = out.cache
    if not cache.is_croppable:
        raise ValueError(f"{type(cache).__name__} cannot be cut back to the prompt; this LM's cache does not "
                         "support shared scoring + generation")
    cache.crop(prompt_len - cache.get_seq_length())  # drop the generated tokens: the prompt's prefill cache again
    loglik = score_continuations(model, out.logits[0][0], cache, batch["attention_mask"], conts, processor.pad_id)
    new = out.sequences[0, prompt_len:]
    return Answer(ClassScores.from_loglik(loglik), processor.decode(new), new.tolist())


@torch.no_grad()
def generate_text(model: EmoLlamaForConditionalGeneration, processor: EmoLlamaProcessor, conversation: list[dict],
                  *, media: list | None = None, faces: list | None = None, agr=None,
                  max_new_tokens: int = 64) -> tuple[str, list[int]]:
    """Greedy answer for one sample, without class scoring (when the label is scored on another prompt).

    Returns:
        (text, generated token ids), equal to `answer`'s text and ids for the same inputs.
    """
    batch = prompt_batch(model, processor, conversation, media, faces, agr)
    prompt_len = batch["input_ids"].shape[1]
    new = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False)[0, prompt_len:]
    return processor.decode(new), new.tolist()
