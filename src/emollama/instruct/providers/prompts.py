"""Versioned conversation prompts (``resources/prompts/<version>.yaml``): loading, rendering, reply parsing.

Wording is data: a changed prompt is a new file and therefore a new ledger key, so cached replies are never reused
for a prompt they were not written for.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import yaml

from emollama.faces.contract import render_agr
from emollama.instruct.providers.base import GenerationRequest, MalformedResponse

DEFAULT_PROMPT_VERSION = "conversation_v1"
_SLOT = re.compile(r"\{([a-z_]+)\}")
_FENCE = re.compile(r"^\s*```(?:json)?\s*|\s*```\s*$", re.IGNORECASE)
MAX_CUES = 4
MIN_CUE = 0.2


@dataclass(frozen=True)
class PromptSet:
    """One prompt file: questions per kind (id -> text), system text, per-kind templates, reply fields."""

    version: str
    questions: dict[str, dict[str, str]]
    system: str
    templates: dict[str, str]
    context: dict[str, str]  # optional lines: agr, cues, caption
    reply_fields: dict[str, tuple[str, ...]]
    slots: tuple[str, ...]

    def choose_question(self, kind: str, rng: random.Random) -> tuple[str, str]:
        """Seeded (template id, question text); ids sorted so YAML key order cannot change the draw."""
        ids = sorted(self.questions[kind])
        qid = ids[rng.randrange(len(ids))]
        return f"{self.version}/{qid}", self.questions[kind][qid]

    def fill(self, text: str, **values: str) -> str:
        """Replace ``{slot}`` for known slots only (literal JSON braces in the contract stay as they are)."""
        return _SLOT.sub(lambda m: values.get(m.group(1), "") if m.group(1) in self.slots else m.group(0), text)

    def render(self, req: GenerationRequest) -> tuple[str, str]:
        """(system, user) text for ``req``; absent cues/AGR/caption lines are dropped, not left blank."""
        agr = render_agr(req.cues.agr) if req.cues.agr else None
        cues = describe_cues(req.cues.au)
        ctx = {"agr": agr, "cues": cues, "caption": req.cues.caption if req.kind == "video" else None}
        lines = {k: self.fill(self.context[k], **{k: v}) if v else "" for k, v in ctx.items()}
        values = {"label": req.label_word, "classes": ", ".join(req.classes), "question": req.question}
        text = self.fill(self.templates[req.kind], **values, **lines)
        user = "\n".join(line for line in text.splitlines() if line.strip())
        return self.system.strip(), user


@lru_cache(maxsize=8)
def load_prompts(version: str = DEFAULT_PROMPT_VERSION) -> PromptSet:
    """Parse and check ``resources/prompts/<version>.yaml``."""
    try:
        raw = resources.files("emollama.resources").joinpath("prompts", f"{version}.yaml").read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeyError(f"unknown prompt version {version!r}; files live in emollama/resources/prompts/") from None
    d: dict[str, Any] = yaml.safe_load(raw)
    if d.get("name") != version:
        raise ValueError(f"{version}.yaml: 'name' is {d.get('name')!r}, must equal the file name")
    for kind in ("image", "video"):
        if "{label}" not in d[kind] or not d["questions"].get(kind):
            raise ValueError(f"{version}.yaml: the {kind} prompt must contain {{label}} and list {kind} questions")
    return PromptSet(version, d["questions"], d["system"], {k: d[k] for k in ("image", "video")},
                     {k: d[k] for k in ("agr", "cues", "caption")},
                     {k: tuple(v) for k, v in d["reply_fields"].items()}, tuple(d["slots"]))


def describe_cues(au: dict[str, float] | None) -> str | None:
    """'the corners of the mouth are pulled up (AU12 0.81); ...' for the strongest cues, or None."""
    if not au:
        return None
    from emollama.faces.explain import PHRASES  # light module; reused so wording matches the analyzer

    strong = sorted(((v, k) for k, v in au.items() if v >= MIN_CUE and k in PHRASES), reverse=True)[:MAX_CUES]
    return "; ".join(f"{PHRASES[k]} ({k} {v:.2f})" for v, k in strong) or None


def parse_reply(text: str | None, req: GenerationRequest, fields: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Model text -> (question, answer) turns; raises MalformedResponse naming what is wrong.

    Accepts a JSON object, optionally inside a markdown code fence (some OpenAI-compatible servers add one even in
    JSON mode). A reply cut off by the token limit fails here as truncated JSON.
    """
    if not text or not text.strip():
        raise MalformedResponse("empty reply")
    body = _FENCE.sub("", text.strip())
    try:
        data = json.loads(body)
    except json.JSONDecodeError as err:
        raise MalformedResponse(f"reply is not valid JSON ({err.msg} at char {err.pos}; truncated?)") from None
    if not isinstance(data, dict):
        raise MalformedResponse(f"reply must be a JSON object, got {type(data).__name__}")
    missing = [f for f in fields if not isinstance(data.get(f), str) or not data[f].strip()]
    if missing:
        raise MalformedResponse(f"reply is missing field(s) {missing}")
    turns = [(req.question, data["answer"].strip())]
    if req.kind == "video" and "followup_question" in fields:
        turns.append((data["followup_question"].strip(), data["followup_answer"].strip()))
    return tuple(turns)
