"""What `emollama eval` runs on each sample: ``EvalItem``s, the ``Backend`` protocol and the local-model backend.

A backend turns a batch of items into one raw row per (item, mode): ``score`` rows hold per-class log-likelihoods
and probabilities, ``generate`` rows the raw answer text. Parsing and metrics happen later, in the runner, so a
changed parse policy never needs the model again. Media loading lives in `evaluation.inputs`; face priors come
from a `emollama.priors.source.PriorSource`, the protocol training reads them through too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from emollama.constants import FACE_TOKEN, IMAGE_TOKEN, VIDEO_TOKEN
from emollama.data.benchmarks.base import Sample
from emollama.evaluation.inputs import DecodedMedia
from emollama.evaluation.scoring import answer_token_ids
from emollama.faces.contract import load_vocabulary
from emollama.model.face_inputs import visual_item
from emollama.priors.agr import agr_from_prior, predicted_agr
from emollama.priors.source import PriorRequest, PriorSource

logger = logging.getLogger(__name__)
MODES = ("score", "generate")


@dataclass(frozen=True)
class EvalItem:
    """One sample to evaluate, with its category question (from `emollama.instruct.category`).

    key: unique in the run ("<fold>/<id>" with folds); question: the user turn with the builder's `<image>`
    placeholder; options: the option words in official class order (index i = class i); template_id and seed:
    how the builder made the question (recorded in reports).
    """

    key: str
    sample: Sample
    fold: str | None
    question: str
    options: tuple[str, ...]
    template_id: str
    seed: int = 0


class Backend(Protocol):
    """Runs a model (local or remote) on items. ``modes``: the modes it supports."""

    modes: tuple[str, ...]

    def describe(self) -> dict[str, Any]:
        """Everything about the backend that changes predictions (goes into the run fingerprint and report)."""
        ...

    def predict(self, items: Sequence[EvalItem], modes: Sequence[str]) -> list[dict[str, dict[str, Any]]]:
        """Per item, {mode: row} for each requested mode; rows also carry ``groups`` (predicted AGR) if known."""
        ...


def class_candidates(options: Sequence[str], classes_canonical: Sequence[str], max_synonyms: int) -> list[list[str]]:
    """Candidate answer strings per class: the option word, then up to ``max_synonyms - 1`` synonyms.

    Synonyms come from the parser's table (`resources/synonyms.yaml`), single words only, in table order, so the
    candidate list is deterministic and recorded via the table's sha256.
    """
    syn = load_vocabulary()["synonyms"]
    out = []
    for word, canon in zip(options, classes_canonical, strict=True):
        forms = [word]
        for s in [canon, *syn.get(canon, [])]:
            if len(forms) >= max(1, max_synonyms):
                break
            if " " not in s and s not in forms:
                forms.append(s)
        out.append(forms)
    return out


@torch.no_grad()
def score_batch(model, processor, conversations: Sequence[list[dict]], answers: Sequence[str], media: Sequence,
                faces: Sequence[list], agr: Sequence | None = None) -> torch.Tensor:
    """`score_classes` for B samples at once: one left-padded prefill, then all B x K continuations in one pass.

    Same maths as `emollama.evaluation.scoring.score_classes` (each answer's summed token log-probabilities,
    end-of-answer token included); padding is masked and positions follow the attention mask, so results equal
    the one-sample path up to float rounding (tested). ``agr``: per sample AGR attributes (or None) for the AGR
    sentence, as the processor takes them.
    Returns:
        (B, K) float32 log-likelihoods.
    """
    agr = list(agr) if agr is not None else [None] * len(conversations)
    conts = [answer_token_ids(processor, conv, list(answers), a)[1] for conv, a in zip(conversations, agr,
                                                                                       strict=True)]
    b, k = len(conversations), len(answers)
    batch = processor(list(conversations), media=[[m] for m in media], faces=list(faces), agr=agr,
                      add_generation_prompt=True, padding_side="left")
    batch.pop("labels")
    batch = batch.to(model.device)
    mask = batch["attention_mask"]
    pos = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding: real tokens start at position 0, as alone
    out = model(**batch, position_ids=pos, use_cache=True, logits_to_keep=1)
    first = torch.log_softmax(out.logits[:, -1].float(), -1)  # (B, V): each answer's first token
    rows = [c for per in conts for c in per]  # B*K continuations, sample-major
    loglik = torch.stack([first[i // k, c[0]] for i, c in enumerate(rows)])
    width = max(len(c) for c in rows)
    if width > 1:
        cache = out.cache
        cache.batch_repeat_interleave(k)
        ids = torch.full((b * k, width - 1), processor.pad_id, dtype=torch.long, device=model.device)
        for i, c in enumerate(rows):
            ids[i, : len(c) - 1] = torch.tensor(c[:-1])
        prefix = mask.repeat_interleave(k, 0)
        cmask = torch.cat([prefix, torch.ones_like(ids)], dim=1)
        cpos = prefix.sum(-1, keepdim=True) + torch.arange(width - 1, device=model.device)
        logits = model.language_model(input_ids=ids, attention_mask=cmask, position_ids=cpos, cache=cache).logits
        logp = torch.log_softmax(logits.float(), -1)
        for i, c in enumerate(rows):
            if len(c) > 1:
                tgt = torch.tensor(c[1:], device=model.device)
                loglik[i] = loglik[i] + logp[i, : len(c) - 1].gather(-1, tgt[:, None]).sum()
    return loglik.view(b, k).cpu()


def model_messages(item: EvalItem, with_face: bool) -> list[dict]:
    """The builder's question as processor messages: clips get `<video>`, and `<face>` follows the visual tag."""
    text = item.question
    tag = VIDEO_TOKEN if item.sample.is_video else IMAGE_TOKEN
    if item.sample.is_video:
        text = text.replace(IMAGE_TOKEN, VIDEO_TOKEN, 1)  # LLaMA-VID writes <image> for clips too (as training does)
    if tag not in text:
        text = f"{tag}\n{text}"
    if with_face:
        text = text.replace(tag, f"{tag}\n{FACE_TOKEN}", 1)
    return [{"role": "user", "content": text}]


class LocalBackend:
    """An `EmoLlamaForConditionalGeneration` + processor on this machine.

    Score mode: `score_batch` (one left-padded prefill per batch, all candidates continued in one pass). With synonyms
    (``max_synonyms > 1``) a class's log-likelihood is the logsumexp over its candidates, i.e. the log of the total
    probability the model puts on any of its spellings (they are disjoint strings). Generate mode: greedy decoding
    of up to ``max_new_tokens`` tokens, samples batched with left padding. With ``agr`` (default) the user turn starts
    with the AGR sentence built from the face prior exactly as in training (`agr_from_prior` + the processor's
    template); ``agr=False`` omits it (the no-AGR ablation, `emollama eval --no-agr`). ``face_tokens=False`` drops
    `<face>` while the prior still feeds the AGR sentence (the no-face-token ablation, `emollama eval --ablation`).
    """

    modes = MODES

    def __init__(self, model, processor, priors: PriorSource, *, model_id: str, canonical: Sequence[str],
                 max_new_tokens: int = 16, max_synonyms: int = 1, frames: str | None = None,
                 media: DecodedMedia | None = None, agr: bool = True, face_tokens: bool = True,
                 crop_margin: float | None = None) -> None:
        self.model, self.processor, self.priors = model, processor, priors
        self.crop_margin = crop_margin  # of the priors' crop regions (`visual_item`); None = the analyzer's
        self.agr, self.face_tokens = agr, face_tokens
        self.media = media or DecodedMedia()  # cached tower-ready frames or decoding: identical pixels either way
        self.model_id, self.canonical = model_id, tuple(canonical)
        self.max_new_tokens, self.max_synonyms = max_new_tokens, max_synonyms
        self.frames = frames or processor.config.frame_sampling

    def describe(self) -> dict[str, Any]:
        return {"backend": "local", "model": self.model_id, "max_new_tokens": self.max_new_tokens,
                "decoding": "greedy", "score_candidates": "option word only" if self.max_synonyms <= 1
                else f"option word + synonyms, up to {self.max_synonyms} per class, logsumexp per class",
                "frames": self.frames, "conv_template": self.processor.config.conv_template,
                "agr": f"prior ({self.processor.config.agr_template})" if self.agr else "none",
                "priors": self.priors.describe(), **({} if self.face_tokens else {"face_tokens": False})}

    def _inputs(self, items: Sequence[EvalItem]) -> tuple[list, list, list, list[dict]]:
        """(media, face priors, AGR attributes for the prompt, predicted groups for the report) per item."""
        media, faces, agrs, groups = [], [], [], []
        for it in items:
            m = self.media.load(it.sample, self.frames)
            prior = self.priors.get(PriorRequest.for_sample(it.sample))
            # a `visual_input: face` model gets the face's crop, as at training and in the API
            media.append(visual_item(self.processor.config, m, prior, self.crop_margin))
            faces.append([prior] if prior is not None and self.face_tokens else [])
            agrs.append(agr_from_prior(prior) if self.agr else None)
            groups.append(predicted_agr(prior))
        return media, faces, agrs, groups

    @torch.no_grad()
    def predict(self, items: Sequence[EvalItem], modes: Sequence[str]) -> list[dict[str, dict[str, Any]]]:
        media, faces, agrs, groups = self._inputs(items)
        convs = [model_messages(it, bool(f)) for it, f in zip(items, faces, strict=True)]
        out: list[dict[str, dict[str, Any]]] = [{} for _ in items]
        if "score" in modes:
            cands = [class_candidates(it.options, self.canonical, self.max_synonyms) for it in items]
            flat = [[c for forms in cs for c in forms] for cs in cands]
            if any(f != flat[0] for f in flat):  # options differ per sample (shuffled/mixed vocabularies)
                scores = [score_batch(self.model, self.processor, [convs[i]], flat[i], [media[i]], [faces[i]],
                                      [agrs[i]])[0] for i in range(len(items))]
            else:
                scores = list(score_batch(self.model, self.processor, convs, flat[0], media, faces, agrs))
            for i, it in enumerate(items):
                bounds = torch.tensor([len(f) for f in cands[i]]).cumsum(0).tolist()
                parts = torch.tensor_split(scores[i].double(), bounds[:-1])
                loglik = torch.stack([torch.logsumexp(p, 0) for p in parts])
                probs = torch.softmax(loglik, 0)
                k = int(loglik.argmax())
                out[i]["score"] = {"pred": k, "answer": it.options[k], "loglik": loglik.tolist(),
                                   "probs": probs.tolist(), "groups": groups[i]}
        if "generate" in modes:
            proc = self.processor
            batch = proc(convs, media=[[m] for m in media], faces=faces, agr=agrs, add_generation_prompt=True,
                         padding_side="left")
            batch.pop("labels")
            batch = batch.to(self.model.device)
            ids = self.model.generate(**batch, max_new_tokens=self.max_new_tokens, do_sample=False)
            width = batch["input_ids"].shape[1]
            for i, row in enumerate(ids):
                out[i]["generate"] = {"answer": proc.decode(row[width:]), "groups": groups[i]}
        return out
