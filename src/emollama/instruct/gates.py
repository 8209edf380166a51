"""Quality gates for generated conversations: label consistency, length limits, normalised-text dedupe.

Label consistency reuses the evaluation answer parser's synonym table (``resources/synonyms.yaml``, DATASETS.md
§8), so "joyful" counts as happiness and "not angry" does not count as anger. An answer passes when it names the
ground-truth class and no other class, where "other" means the dataset's classes AND every other canonical class:
a RAF-DB answer that calls the face "contemptuous" is rejected even though RAF-DB has no contempt class.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from emollama.constants import CANONICAL_EMOTIONS
from emollama.faces.contract import AnswerParser, canonical_name

_SENTENCE_END = re.compile(r"[.!?](?:\s|$)")


@dataclass(frozen=True)
class GateConfig:
    """Limits (characters per answer, sentences in the first answer) and the retry budget for failed gates."""

    label_retries: int = 2  # extra generations after a label / length failure; then the sample is dropped
    min_chars: int = 20
    max_chars: int = 1200
    max_sentences: int = 6  # SPEC §5.3 asks for 1-4; a little slack for abbreviations ("e.g.")
    max_question_chars: int = 300
    dedupe: str = "auto"  # "text" | "off" | "auto" (text for API providers, off for the offline templates)


@lru_cache(maxsize=32)
def _parser(classes: tuple[str, ...]) -> tuple[AnswerParser, tuple[str, ...]]:
    """Strict parser over the dataset's classes plus every other canonical class; and canonical name per index."""
    canon = tuple(canonical_name(c) or c for c in classes)
    names = canon + tuple(c for c in CANONICAL_EMOTIONS if c not in canon)
    return AnswerParser(names, "strict"), names


def label_problem(turns: Sequence[tuple[str, str]], label: str, classes: Sequence[str]) -> str | None:
    """None when the answers name ``label`` (canonical) and no other class, else a rejection reason.

    Reasons: label_missing (no class named), label_mismatch (another class named instead), label_ambiguous
    (label plus another class), question_names_other_class (a generated follow-up question does).
    """
    parser, names = _parser(tuple(classes))
    res = parser(" \n".join(a for _, a in turns))
    if res.status == "ambiguous":
        return "label_ambiguous"
    if res.status != "ok":
        return "label_missing"
    if names[res.index] != label:
        return "label_mismatch"
    for q, _ in turns[1:]:  # the first question is ours; follow-ups may come from the model
        r = parser(q)
        if r.status == "ambiguous" or (r.status == "ok" and names[r.index] != label):
            return "question_names_other_class"
    return None


def length_problem(turns: Sequence[tuple[str, str]], cfg: GateConfig) -> str | None:
    """None when every answer and question is within the limits, else too_short / too_long / too_many_sentences."""
    for i, (q, a) in enumerate(turns):
        if len(a.strip()) < cfg.min_chars:
            return "too_short"
        if len(a) > cfg.max_chars or len(q) > cfg.max_question_chars:
            return "too_long"
        if i == 0 and len(_SENTENCE_END.findall(a.strip())) > cfg.max_sentences:
            return "too_many_sentences"
    return None


def text_key(turns: Sequence[tuple[str, str]]) -> str:
    """Hash of the answers after case-folding, accent stripping and dropping punctuation and extra spaces."""
    text = unicodedata.normalize("NFKD", " ".join(a for _, a in turns).casefold())
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = " ".join(re.sub(r"[^\w\s]", " ", text).split())
    return hashlib.sha256(text.encode()).hexdigest()[:32]
