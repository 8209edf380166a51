"""AGR prompt templates: every registered template, every attribute optional, confidence thresholds."""

from __future__ import annotations

import itertools

import pytest

from emollama.faces.contract import AGE_GROUPS, AGR_TEMPLATES, AGRAttributes, age_group, render_agr

ATTRS = [
    AGRAttributes(age_group=a, gender=g, race=r)
    for a, g, r in itertools.product([None, *AGE_GROUPS], [None, "female", "male"], [None, "Asian"])
]


@pytest.mark.parametrize("template", AGR_TEMPLATES.names())
def test_every_template_handles_every_combination(template):
    for a in ATTRS:
        text = render_agr(a, template)
        if a.age_group is None and a.gender is None and a.race is None:
            assert text is None
            continue
        assert text and text.endswith(".") and "None" not in text and "  " not in text
        for part in (a.gender if template == "agr_spec" else None, a.race):
            if part:
                assert part in text


def test_agr_v1_phrases():
    assert render_agr(AGRAttributes("20-39", "female", "Asian")) == "The person appears to be an adult Asian woman."
    assert render_agr(AGRAttributes("4-19", "male")) == "The person appears to be a young boy."
    assert render_agr(AGRAttributes("0-3", "female")) == "The person appears to be a baby."
    assert render_agr(AGRAttributes("70+")) == "The person appears to be an elderly person."
    assert render_agr(AGRAttributes(gender="male")) == "The person appears to be a man."


def test_agr_spec_form():
    assert render_agr(AGRAttributes("20-39", "female", "Asian"), "agr_spec") == (
        "The person is a female, aged 20-39, Asian.")


def test_low_confidence_attributes_are_dropped():
    a = AGRAttributes("40-69", "male", age_confidence=0.9, gender_confidence=0.55)
    assert render_agr(a, min_confidence=0.6) == "The person appears to be a middle-aged person."
    assert render_agr(AGRAttributes(gender="male", gender_confidence=0.1)) is None


def test_unknown_template_and_bad_values():
    with pytest.raises(KeyError, match="unknown AGR template 'agr_v2'.*did you mean"):
        render_agr(AGRAttributes(gender="male"), "agr_v2")
    with pytest.raises(ValueError, match="gender must be"):
        AGRAttributes(gender="woman")


@pytest.mark.parametrize("years, group", [(0, "0-3"), (3.9, "0-3"), (4, "4-19"), (19, "4-19"), (20, "20-39"),
                                          (39.5, "20-39"), (40, "40-69"), (69, "40-69"), (70, "70+"), (95, "70+")])
def test_age_groups(years, group):
    assert age_group(years) == group
