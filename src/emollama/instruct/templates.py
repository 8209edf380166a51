"""Versioned question templates (``resources/templates/*.yaml``) for category instructions, plus vocabularies.

Template ids are qualified by their file, e.g. "category_v1/ferid"; a bare id ("ferid") resolves in the newest
loaded file that has it. Wording is data, never code: a changed question means a new YAML version.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

from emollama.constants import CANONICAL_EMOTIONS
from emollama.registry import Registry

logger = logging.getLogger(__name__)

TEMPLATE_FILES = ("category_v1",)
OPTIONS_SLOT = "{options}"


@dataclass(frozen=True)
class CategoryTemplate:
    """One multiple-choice question in image and video wording, with the option-list format."""

    id: str  # qualified: "<file>/<name>"
    image: str
    video: str
    description: str = ""
    open: str = "{"
    sep: str = ", "
    close: str = "}"

    def render(self, words: list[str], is_video: bool) -> str:
        """The question with ``words`` (already in display order) filled into ``{options}``."""
        text = self.video if is_video else self.image
        # str.replace, not format(): the option list itself is written with literal braces
        return text.replace(OPTIONS_SLOT, self.open + self.sep.join(words) + self.close)


TEMPLATES: Registry[CategoryTemplate] = Registry("category template")
VOCABULARIES: Registry[dict[str, str]] = Registry("vocabulary")


def _load_file(name: str) -> None:
    text = resources.files("emollama.resources").joinpath("templates", f"{name}.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    opts = data.get("options", {})
    for tid, t in data["templates"].items():
        for wording in ("image", "video"):
            if t.get(wording, "").count(OPTIONS_SLOT) != 1:
                raise ValueError(f"{name}.yaml: template {tid!r} {wording} wording must contain {OPTIONS_SLOT} once")
        TEMPLATES.add(f"{name}/{tid}", CategoryTemplate(f"{name}/{tid}", t["image"], t["video"],
                                                        t.get("description", ""), **opts))
    for vid, mapping in data.get("vocabularies", {}).items():
        bad = [k for k in (mapping or {}) if k not in CANONICAL_EMOTIONS]
        if bad:
            raise ValueError(f"{name}.yaml: vocabulary {vid!r} maps unknown classes {bad}")
        if vid not in VOCABULARIES:  # vocabularies are shared across template versions
            VOCABULARIES.add(vid, dict(mapping or {}))


@lru_cache(maxsize=1)
def _ensure_loaded() -> None:
    for name in TEMPLATE_FILES:
        _load_file(name)


def get_template(template_id: str) -> CategoryTemplate:
    """Template by qualified ("category_v1/ferid") or bare ("ferid") id; KeyError lists the available ids."""
    _ensure_loaded()
    if "/" not in template_id:
        for name in reversed(TEMPLATE_FILES):
            if f"{name}/{template_id}" in TEMPLATES:
                return TEMPLATES.get(f"{name}/{template_id}")
    return TEMPLATES.get(template_id)


def template_ids() -> list[str]:
    """All qualified template ids."""
    _ensure_loaded()
    return TEMPLATES.names()


def vocabulary(name: str) -> dict[str, str]:
    """Canonical class -> word used in options and answers (identity for classes not listed)."""
    _ensure_loaded()
    mapping = VOCABULARIES.get(name)
    return {c: mapping.get(c, c) for c in CANONICAL_EMOTIONS}


def vocabulary_names() -> list[str]:
    _ensure_loaded()
    return VOCABULARIES.names()
