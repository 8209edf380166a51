"""Instruction records (LLaVA / LLaMA-VID style, SPEC §5.5) plus our metadata, and validated JSONL I/O.

A record has ``image`` or ``video`` (a path relative to a data root), ``conversations`` alternating human/gpt with
the ``<image>``/``<video>`` placeholder at the start of the first human turn, and the fields LLaMA-VID ignores:
dataset, split, fold, label {index, name}, kind, template_id, generator, seed, schema_version. Records are
validated on write and on read; every error names the file line, the record id and the field.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emollama.constants import CANONICAL_EMOTIONS, IMAGE_TOKEN, VIDEO_TOKEN

SCHEMA_VERSION = 1
KINDS = ("category", "conversation")
_REQUIRED = ("id", "conversations", "dataset", "split", "label", "kind", "template_id", "generator",
             "schema_version")


class RecordError(ValueError):
    """A record violates the schema; the message names where (file:line), the record id and the field."""


@dataclass(frozen=True)
class Turn:
    """One conversation turn; serialised as ``{"from": ..., "value": ...}``."""

    role: str  # "human" | "gpt"
    value: str


@dataclass
class InstructionRecord:
    """One instruction sample. ``label.index`` is the canonical index; ``dataset_index`` the dataset's own."""

    id: str
    conversations: list[Turn]
    dataset: str
    split: str
    label_name: str
    kind: str
    template_id: str
    generator: str
    image: str | None = None
    video: str | None = None
    fold: int | None = None
    dataset_index: int | None = None
    seed: int | None = None
    options: list[str] | None = None  # option words in the order shown (category records)
    vocabulary: str | None = None  # vocabulary the option/answer words came from (e.g. "canonical", "ferid_joy")
    prior_key: str | None = None  # face-prior cache key, when priors were prepared
    extra: dict[str, Any] = field(default_factory=dict)  # provider metadata (model, prompt version, tokens ...)
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; optional fields that are None are left out."""
        d: dict[str, Any] = {"id": self.id}
        d["image" if self.image is not None else "video"] = self.image if self.image is not None else self.video
        d["conversations"] = [{"from": t.role, "value": t.value} for t in self.conversations]
        d.update(dataset=self.dataset, split=self.split, fold=self.fold,
                 label={"index": CANONICAL_EMOTIONS.index(self.label_name) if self.label_name in CANONICAL_EMOTIONS
                        else -1, "name": self.label_name, "dataset_index": self.dataset_index},
                 kind=self.kind, template_id=self.template_id, generator=self.generator, seed=self.seed)
        for key in ("options", "vocabulary", "prior_key"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        if self.extra:
            d["extra"] = self.extra
        d["schema_version"] = self.schema_version
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "record") -> InstructionRecord:
        """Build and validate a record from its JSON dict (raises RecordError)."""
        validate_dict(d, where)
        label = d["label"]
        return cls(id=d["id"], conversations=[Turn(t["from"], t["value"]) for t in d["conversations"]],
                   dataset=d["dataset"], split=d["split"], label_name=label["name"], kind=d["kind"],
                   template_id=d["template_id"], generator=d["generator"], image=d.get("image"), video=d.get("video"),
                   fold=d.get("fold"), dataset_index=label.get("dataset_index"), seed=d.get("seed"),
                   options=d.get("options"), vocabulary=d.get("vocabulary"), prior_key=d.get("prior_key"),
                   extra=d.get("extra") or {}, schema_version=d["schema_version"])


def validate_dict(d: Any, where: str = "record") -> None:
    """Raise RecordError naming ``where``, the record id and the field for the first schema violation."""
    if not isinstance(d, dict):
        raise RecordError(f"{where}: expected a JSON object, got {type(d).__name__}")
    rid = d.get("id", "<no id>")

    def fail(fld: str, msg: str) -> RecordError:
        return RecordError(f"{where}: record {rid!r}: field {fld!r}: {msg}")

    for key in _REQUIRED:
        if key not in d:
            raise fail(key, "missing")
    if not isinstance(d["id"], str) or not d["id"]:
        raise fail("id", "must be a non-empty string")
    if d["schema_version"] != SCHEMA_VERSION:
        raise fail("schema_version", f"is {d['schema_version']!r}; this build reads version {SCHEMA_VERSION}")
    has_img, has_vid = isinstance(d.get("image"), str), isinstance(d.get("video"), str)
    if has_img == has_vid:
        raise fail("image/video", "exactly one of 'image' or 'video' must be a path string")
    if d["kind"] not in KINDS:
        raise fail("kind", f"{d['kind']!r} not in {list(KINDS)}")
    label = d["label"]
    if not isinstance(label, dict) or label.get("name") not in CANONICAL_EMOTIONS:
        raise fail("label", f"must be {{index, name}} with a canonical name {list(CANONICAL_EMOTIONS)}, got {label!r}")
    if label.get("index") != CANONICAL_EMOTIONS.index(label["name"]):
        raise fail("label.index", f"{label.get('index')!r} does not match name {label['name']!r} "
                                  f"(canonical index {CANONICAL_EMOTIONS.index(label['name'])})")
    if d.get("fold") is not None and not isinstance(d["fold"], int):
        raise fail("fold", f"must be an integer or null, got {d['fold']!r}")
    for key in ("dataset", "split", "template_id", "generator"):
        if not isinstance(d[key], str) or not d[key]:
            raise fail(key, "must be a non-empty string")
    _validate_turns(d["conversations"], has_vid, fail)


def _validate_turns(turns: Any, is_video: bool, fail: Any) -> None:
    if not isinstance(turns, list) or len(turns) < 2:
        raise fail("conversations", "must be a list of at least one human and one gpt turn")
    for i, t in enumerate(turns):
        if not isinstance(t, dict) or set(t) != {"from", "value"} or not isinstance(t["value"], str):
            raise fail(f"conversations[{i}]", f"must be {{'from': ..., 'value': str}}, got {t!r}")
        expected = "human" if i % 2 == 0 else "gpt"
        if t["from"] != expected:
            raise fail(f"conversations[{i}].from", f"is {t['from']!r}, expected {expected!r} (turns alternate, "
                                                   "human first)")
        if not t["value"].strip():
            raise fail(f"conversations[{i}].value", "is empty")
    if len(turns) % 2:
        raise fail("conversations", f"{len(turns)} turns; the last turn must be a gpt answer")
    first = turns[0]["value"]
    # LLaMA-VID writes <image> for clips too, so videos accept either placeholder
    allowed = (IMAGE_TOKEN, VIDEO_TOKEN) if is_video else (IMAGE_TOKEN,)
    if not any(first.startswith(tok + "\n") for tok in allowed):
        raise fail("conversations[0].value", f"first human turn must start with {' or '.join(allowed)} + newline")
    n = sum(first.count(tok) for tok in (IMAGE_TOKEN, VIDEO_TOKEN))
    if n != 1:
        raise fail("conversations[0].value", f"has {n} <image>/<video> placeholders, expected exactly 1")


def write_jsonl(records: Iterable[InstructionRecord | dict[str, Any]], path: str | Path) -> int:
    """Validate and write records atomically (temp file, then rename); returns the number written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    try:
        with tmp.open("w", encoding="utf-8") as f:
            for n, rec in enumerate(records, start=1):
                d = rec.to_dict() if isinstance(rec, InstructionRecord) else rec
                validate_dict(d, f"{path} (record {n})")
                f.write(json.dumps(d, ensure_ascii=False) + "\n")
    except BaseException:  # never leave a half-written temp file next to the output
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)
    return n


def read_jsonl(path: str | Path) -> Iterator[InstructionRecord]:
    """Yield validated records; errors name ``file:line``, the record id and the field."""
    path = Path(path)
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
            except json.JSONDecodeError as err:
                raise RecordError(f"{path}:{lineno}: not valid JSON ({err.msg} at column {err.colno})") from None
            yield InstructionRecord.from_dict(d, f"{path}:{lineno}")
