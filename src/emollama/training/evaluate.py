"""Held-out closed-set accuracy after training: score every option of a category record, take the argmax.

Uses `emollama.evaluation.scoring.score_classes` (one prefill, all options scored), so there is never an
unparseable answer and the number matches what `emollama score` would report for the same model.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from emollama.evaluation.scoring import score_classes
from emollama.model.processor import EmoLlamaProcessor
from emollama.training.collate import Collator
from emollama.training.data import InstructionDataset
from emollama.training.lora import unwrap

logger = logging.getLogger(__name__)


@torch.no_grad()
def closed_set_accuracy(model: nn.Module, processor: EmoLlamaProcessor, dataset: InstructionDataset,
                        collator: Collator, max_samples: int = 200) -> dict:
    """Accuracy over records that carry `options` and a single-turn answer among them.

    Returns:
        {"accuracy": float, "n": int, "chance": float, "per_class": {name: accuracy}}
    """
    base = unwrap(model)
    was_training = base.training
    base.eval()
    correct, n, chance, per = 0, 0, 0.0, {}
    for i in range(min(len(dataset), max_samples)):
        ex = dataset[i]
        options = ex.record.get("options")
        answer = ex.messages[-1]["content"].strip()
        if not options or len(ex.messages) != 2 or answer not in options:
            continue
        scores = score_classes(base, processor, ex.messages[:1], list(options), media=collator.media_for(ex),
                               faces=collator.faces_for(ex), agr=ex.agr)
        hit = options[scores.index] == answer
        correct += int(hit)
        n += 1
        chance += 1.0 / len(options)
        c = per.setdefault(answer, [0, 0])
        c[0] += int(hit)
        c[1] += 1
    base.train(was_training)
    if n == 0:
        raise ValueError("no evaluable records: closed-set accuracy needs single-turn records with 'options' "
                         "containing the answer")
    result = {"accuracy": correct / n, "n": n, "chance": chance / n,
              "per_class": {k: v[0] / v[1] for k, v in sorted(per.items())}}
    logger.info("held-out accuracy %.3f on %d samples (chance %.3f)", result["accuracy"], n, result["chance"])
    return result
