"""Free-text answer -> class index for a given class list (DATASETS.md §8). Pure functions, no model.

The vocabulary (synonyms, negators, idioms) is data: ``resources/synonyms.yaml``. Also holds a small built-in table
of each benchmark's class list in official order, a dependency-free mirror of the dataset registry
(`emollama.data.benchmarks.dataset_classes` reads the registry first).
Deliberately not here: score-mode log-likelihoods (no parsing needed) and metrics.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

POLICIES = ("strict", "first")
STATUSES = ("ok", "empty", "unparseable", "ambiguous", "out_of_vocabulary")

# Official index order per benchmark (DATASETS.md §1-6), written with canonical names (§0.3).
# `emollama.data.benchmarks.dataset_classes` reads the dataset registry; this table is its dependency-free
# mirror for scoring external predictions, kept equal to the registry by tests/evaluation/test_eval_parse.py.
DATASET_CLASSES: dict[str, tuple[str, ...]] = {
    "rafdb": ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral"),
    "affectnet7": ("neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger"),
    "affectnet8": ("neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger", "contempt"),
    "ferplus": ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"),
    "dfew": ("happiness", "sadness", "neutral", "anger", "surprise", "disgust", "fear"),
    # FERV39k's official labels are strings; DATASETS.md §5 lists them alphabetically, which we keep.
    "ferv39k": ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise"),
    "mafw": ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise", "contempt", "anxiety",
             "helplessness", "disappointment"),
}


@dataclass(frozen=True)
class ParseResult:
    """Outcome of parsing one answer.

    Attributes:
        index: class index into the parser's class list, or None when status != "ok".
        status: one of STATUSES; everything except "ok" is scored as wrong.
        matched: normalised words that decided the outcome ("happy"; "happy|sad" when ambiguous), or None.
        label: class name at ``index``, or None.
    """

    index: int | None
    status: str
    matched: str | None = None
    label: str | None = None


def normalize(text: str) -> str:
    """Case-fold, strip accents, drop apostrophes (isn't -> isnt) and turn hyphens into spaces."""
    text = unicodedata.normalize("NFKC", text).casefold()
    # NFKD splits "é" into "e" + combining accent; dropping the marks also fixes Turkish "İ".casefold() == "i̇".
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    text = re.sub(r"['\u2018\u2019`\u00b4\u02bc]", "", text)
    return re.sub(r"[-\u2010-\u2015_]", " ", text)


_TOKEN = re.compile(r"[^\W_]+|[^\w\s]")  # words (any script) or single punctuation marks


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(normalize(text))


@lru_cache(maxsize=1)
def load_vocabulary() -> dict[str, Any]:
    """The parsed ``resources/synonyms.yaml`` plus its ``sha256`` (recorded in reports)."""
    raw = resources.files("emollama.resources").joinpath("synonyms.yaml").read_bytes()
    vocab = yaml.safe_load(raw)
    lists = [*vocab["synonyms"].values(), *(vocab[k] for k in ("other", "negators", "ignore", "clause_breaks"))]
    bad = [w for words in lists for w in words if not isinstance(w, str)]
    if bad:  # YAML 1.1 turns a bare `no` into False
        raise ValueError(f"synonyms.yaml: non-string entries {bad}; quote them")
    vocab["sha256"] = hashlib.sha256(raw).hexdigest()
    return vocab


def canonical_name(name: str) -> str | None:
    """Canonical class (DATASETS.md §0.3) that ``name`` denotes ("Happy" -> "happiness"), or None."""
    key = " ".join(_tokens(name))
    for canon, words in load_vocabulary()["synonyms"].items():
        if key == canon or key in words:
            return canon
    return None


class AnswerParser:
    """Maps free text to an index of ``classes`` under a policy.

    Args:
        classes: class names in index order; canonical names or synonyms ("Happy") pick up the whole synonym set,
            any other name is matched literally.
        policy: "strict" (exactly one class mentioned, else ambiguous) or "first" (first mention in text order,
            for ranked lists).
    """

    def __init__(self, classes: Sequence[str], policy: str = "strict") -> None:
        if policy not in POLICIES:
            raise ValueError(f"unknown parse policy {policy!r}; choose one of {POLICIES}")
        if not classes:
            raise ValueError("the class list is empty")
        self.classes = tuple(classes)
        self.policy = policy
        vocab = load_vocabulary()
        self.window = int(vocab["negation_window"])
        self.breaks = frozenset(vocab["clause_breaks"])
        # Phrase (tuple of words) -> (kind, value). Later tables override earlier ones: class names win.
        table: dict[tuple[str, ...], tuple[str, Any]] = {}
        for kind in ("ignore", "negators"):
            table.update({tuple(p.split()): (kind, None) for p in vocab[kind]})
        table.update({tuple(w.split()): ("oov", w) for w in vocab["other"]})
        for canon, words in vocab["synonyms"].items():
            table.update({tuple(w.split()): ("oov", canon) for w in [canon, *words]})
        owner: dict[str, str] = {}
        for i, name in enumerate(self.classes):
            canon = canonical_name(name)
            key = canon or " ".join(_tokens(name))
            if key in owner:
                raise ValueError(f"classes {owner[key]!r} and {name!r} denote the same class {key!r}")
            owner[key] = name
            forms = [canon, *vocab["synonyms"][canon]] if canon else [key]
            table.update({tuple(w.split()): ("class", i) for w in forms})
        self._table = table
        self._max_len = max(len(k) for k in table)

    def _mentions(self, toks: list[str]) -> list[tuple[str, Any, str, bool]]:
        """(kind, value, surface, negated) for each class / out-of-vocabulary mention, in text order."""
        out: list[tuple[str, Any, str, bool]] = []
        neg_at: int | None = None  # token index of the last negator in the current clause
        i = 0
        while i < len(toks):
            for n in range(min(self._max_len, len(toks) - i), 0, -1):
                hit = self._table.get(tuple(toks[i:i + n]))
                if hit:
                    break
            else:
                if not toks[i][0].isalnum() or toks[i] in self.breaks:
                    neg_at = None  # punctuation or "but"/"and"/...: a new clause, negation does not carry over
                i += 1
                continue
            kind, value = hit
            if kind == "negators":
                neg_at = i + n - 1
            elif kind in ("class", "oov"):
                negated = neg_at is not None and i - neg_at <= self.window
                out.append((kind, value, " ".join(toks[i:i + n]), negated))
            i += n
        return out

    def __call__(self, text: str | None) -> ParseResult:
        toks = _tokens(text or "")
        if not any(t[0].isalnum() for t in toks):
            return ParseResult(None, "empty")
        mentions = self._mentions(toks)
        votes = [(v, s) for k, v, s, neg in mentions if k == "class" and not neg]
        if votes:
            distinct = list(dict.fromkeys(v for v, _ in votes))
            if self.policy == "strict" and len(distinct) > 1:
                surfaces = dict.fromkeys(s for _, s in votes)
                return ParseResult(None, "ambiguous", "|".join(surfaces))
            index, surface = votes[0]
            return ParseResult(index, "ok", surface, self.classes[index])
        oov = [s for k, _, s, neg in mentions if k == "oov" and not neg]
        if oov:  # an emotion outside this benchmark's label set (§8 rule 3)
            return ParseResult(None, "out_of_vocabulary", oov[0])
        negated = [s for _, _, s, neg in mentions if neg]
        return ParseResult(None, "unparseable", negated[0] if negated else None)


@lru_cache(maxsize=64)
def _cached_parser(classes: tuple[str, ...], policy: str) -> AnswerParser:
    return AnswerParser(classes, policy)


def parse_answer(text: str | None, classes: Sequence[str], policy: str = "strict") -> ParseResult:
    """Parse one answer; convenience wrapper around a cached ``AnswerParser(classes, policy)``."""
    return _cached_parser(tuple(classes), policy)(text)


def resolve_label(value: str, classes: Sequence[str], *, one_based: bool = False) -> int:
    """Ground-truth cell -> class index: an integer id (0-based unless ``one_based``) or a class name/synonym.

    Raises:
        ValueError: naming the value and the valid range or names.
    """
    text = value.strip()
    if re.fullmatch(r"[+-]?\d+", text):
        idx = int(text) - (1 if one_based else 0)
        if not 0 <= idx < len(classes):
            lo, hi = (1, len(classes)) if one_based else (0, len(classes) - 1)
            hint = "" if one_based or idx != len(classes) else "; ids look 1-based, pass --one-based"
            raise ValueError(f"label id {text} is outside {lo}..{hi}{hint}")
        return idx
    key = " ".join(_tokens(text))
    canon = canonical_name(text)
    for i, name in enumerate(classes):
        if key == " ".join(_tokens(name)) or (canon is not None and canon == canonical_name(name)):
            return i
    raise ValueError(f"label {value!r} is not one of the classes ({', '.join(classes)})")
