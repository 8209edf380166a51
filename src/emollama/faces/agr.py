"""AGR prompt: age / gender / race attributes rendered into the user turn.

The templates are ours (the paper's wording is not public). Every attribute is optional and dropped when
unknown or below its confidence threshold; with nothing left the prompt is omitted entirely.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from emollama.registry import Registry

# RAF-DB manual age groups (DATASETS.md §1); age predictors map years to these.
AGE_GROUPS = ("0-3", "4-19", "20-39", "40-69", "70+")
_AGE_WORDS = {"0-3": "infant", "4-19": "young", "20-39": "adult", "40-69": "middle-aged", "70+": "elderly"}
_NOUNS = {  # (age group class, gender) -> noun
    ("child", "female"): "girl",
    ("child", "male"): "boy",
    ("adult", "female"): "woman",
    ("adult", "male"): "man",
}


def age_group(years: float) -> str:
    """Map an age in years to a RAF-DB age group."""
    if years < 4:
        return "0-3"
    if years < 20:
        return "4-19"
    if years < 40:
        return "20-39"
    if years < 70:
        return "40-69"
    return "70+"


@dataclass(frozen=True)
class AGRAttributes:
    """Predicted (or annotated) attributes; confidences in [0, 1], None when unknown."""

    age_group: str | None = None
    gender: str | None = None  # "female" | "male"
    race: str | None = None
    age_confidence: float = 1.0
    gender_confidence: float = 1.0
    race_confidence: float = 1.0

    def __post_init__(self) -> None:
        if self.age_group is not None and self.age_group not in AGE_GROUPS:
            raise ValueError(f"age_group must be one of {AGE_GROUPS}, got {self.age_group!r}")
        if self.gender is not None and self.gender not in ("female", "male"):
            raise ValueError(f"gender must be 'female' or 'male', got {self.gender!r}")

    def kept(self, min_confidence: float) -> AGRAttributes:
        """Copy with attributes below ``min_confidence`` removed."""
        return AGRAttributes(
            age_group=self.age_group if self.age_confidence >= min_confidence else None,
            gender=self.gender if self.gender_confidence >= min_confidence else None,
            race=self.race if self.race_confidence >= min_confidence else None,
        )


AGR_TEMPLATES: Registry[Callable[[AGRAttributes], str | None]] = Registry("AGR template")


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


@AGR_TEMPLATES.register("agr_v1")
def _agr_v1(a: AGRAttributes) -> str | None:
    """Natural phrase, e.g. 'The person appears to be an adult Asian woman.'"""
    if a.age_group is None and a.gender is None and a.race is None:
        return None
    stage = "child" if a.age_group in ("0-3", "4-19") else "adult"
    noun = _NOUNS.get((stage, a.gender), "person") if a.gender else "person"
    if a.age_group == "0-3":
        noun = "baby"
    words = [w for w in (_AGE_WORDS.get(a.age_group) if a.age_group not in ("0-3",) else None, a.race) if w]
    phrase = " ".join([*words, noun])
    return f"The person appears to be {_article(phrase)} {phrase}."


@AGR_TEMPLATES.register("agr_spec")
def _agr_spec(a: AGRAttributes) -> str | None:
    """SPEC §1.6 form: 'The person is a female, aged 20-39, Asian.' (parts omitted when unknown)."""
    parts = [a.gender, f"aged {a.age_group}" if a.age_group else None, a.race]
    parts = [p for p in parts if p]
    if not parts:
        return None
    return f"The person is {_article(parts[0])} {', '.join(parts)}."


def render_agr(attrs: AGRAttributes | None, template: str = "agr_v1", min_confidence: float = 0.6) -> str | None:
    """AGR sentence for the user turn, or None when no attribute is confident enough."""
    if attrs is None:
        return None
    return AGR_TEMPLATES.get(template)(attrs.kept(min_confidence))
