"""AU mapping, decision rules and explanations: pure functions, no models."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

from emollama.faces.au import AU_MAP, AU_NAMES, BLENDSHAPE_NAMES, active_aus, au_cues, blendshape_vector
from emollama.faces.decide import LABELS, PROTOTYPES, DecisionConfig, au_evidence, decide
from emollama.faces.explain import LABEL_PHRASES, PHRASES, explain, supporting_cues


def bs(**kw: float) -> dict[str, float]:
    out = dict.fromkeys(BLENDSHAPE_NAMES, 0.0)
    out.update(kw)
    return out


def test_blendshape_names_are_mediapipe_52_and_map_is_valid():
    assert len(BLENDSHAPE_NAMES) == 52 and BLENDSHAPE_NAMES[0] == "_neutral"
    assert len(set(BLENDSHAPE_NAMES)) == 52
    used = {n for groups in AU_MAP.values() for _, names in groups for n in names}
    assert used <= set(BLENDSHAPE_NAMES)
    for groups in AU_MAP.values():
        assert sum(w for w, _ in groups) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("shapes", "au", "value"),
    [
        ({"mouthSmileLeft": 0.8, "mouthSmileRight": 0.6}, "AU12", 0.7),
        ({"cheekSquintLeft": 0.4, "cheekSquintRight": 0.4, "eyeSquintLeft": 0.8, "eyeSquintRight": 0.8}, "AU6", 0.6),
        ({"browInnerUp": 0.5}, "AU1", 0.5),
        ({"browOuterUpLeft": 0.2, "browOuterUpRight": 0.4}, "AU2", 0.3),
        ({"browDownLeft": 0.9, "browDownRight": 0.7}, "AU4", 0.8),
        ({"jawOpen": 0.52}, "AU26", 0.52),
        ({"mouthFrownLeft": 0.5, "mouthFrownRight": 0.3}, "AU15", 0.4),
        ({"noseSneerLeft": 0.6, "noseSneerRight": 0.6}, "AU9", 0.6),
    ],
)
def test_au_mapping_table(shapes, au, value):
    cues = au_cues(bs(**shapes))
    assert set(cues) == set(AU_NAMES)
    assert cues[au] == pytest.approx(value)
    assert all(0.0 <= v <= 1.0 for v in cues.values())


def test_au_edge_cases():
    assert au_cues({}) == {}
    assert au_cues({"jawOpen": 0.4})["AU26"] == pytest.approx(0.4)  # missing blendshapes count as 0
    cues = au_cues(bs(jawOpen=0.9, browInnerUp=0.5, mouthSmileLeft=0.1))
    assert active_aus(cues) == ["AU26", "AU1"]
    v = blendshape_vector({"jawOpen": 0.5})
    assert v.shape == (52,) and v.dtype == np.float32 and v[BLENDSHAPE_NAMES.index("jawOpen")] == 0.5


def onehot(label: str, p: float = 0.9) -> dict[str, float]:
    rest = (1 - p) / (len(LABELS) - 1)
    return {lab: p if lab == label else rest for lab in LABELS}


UNIFORM = dict.fromkeys(LABELS, 1 / len(LABELS))
SMILE = au_cues(bs(mouthSmileLeft=0.9, mouthSmileRight=0.9, eyeSquintLeft=0.5, eyeSquintRight=0.5))
SURPRISE = au_cues(bs(jawOpen=0.8, browInnerUp=0.7, browOuterUpLeft=0.6, browOuterUpRight=0.6))
ANGER = au_cues(bs(browDownLeft=0.8, browDownRight=0.8, mouthPressLeft=0.6, mouthPressRight=0.6))


def test_rule_au_cues_decide_when_prior_is_flat():
    assert decide(UNIFORM, SMILE).label == "happiness"
    assert decide(UNIFORM, SURPRISE).label == "surprise"
    assert decide(UNIFORM, ANGER).label == "anger"
    assert decide(UNIFORM, au_cues(bs())).label == "neutral"


def test_rule_fusion_recovers_anger_the_prior_reads_as_sadness():
    prior = {**dict.fromkeys(LABELS, 0.02), "sadness": 0.71, "anger": 0.16}  # ASSETS.md §4.3 anger photo
    d = decide(prior, ANGER)
    assert d.label == "anger" and d.source == "fused"
    assert sum(d.probs.values()) == pytest.approx(1.0) and list(d.probs) == list(LABELS)


def test_rule_smile_gates_negative_evidence():
    ev = au_evidence(au_cues(bs(mouthSmileLeft=1.0, mouthSmileRight=1.0, browDownLeft=0.9, browDownRight=0.9)))
    assert ev["anger"] == 0.0 and ev["happiness"] > 0.7


def test_rule_confident_prior_survives_weak_cues_and_fallbacks():
    assert decide(onehot("happiness", 0.99), au_cues(bs())).label == "happiness"
    d = decide(onehot("fear"), None)
    assert (d.label, d.source, d.evidence) == ("fear", "prior", {})
    assert decide(None, SURPRISE).source == "au"
    with pytest.raises(ValueError):
        decide(None, None)
    assert decide(UNIFORM, SMILE, DecisionConfig(w_au=0.0)).label == LABELS[0]  # AU weight 0 -> flat -> first


def test_prototypes_only_use_known_aus():
    for label, proto in PROTOTYPES.items():
        assert label in LABELS and set(proto) <= set(AU_NAMES)
        assert sum(proto.values()) == pytest.approx(1.0)


def test_explanation_example_from_the_issue():
    cues = au_cues(bs(mouthSmileLeft=0.9, mouthSmileRight=0.9, cheekSquintLeft=0.6, cheekSquintRight=0.6,
                      eyeSquintLeft=0.6, eyeSquintRight=0.6))  # fmt: skip
    assert explain("happiness", cues) == (
        "The corners of the mouth are pulled up and the cheeks are raised (AU6+AU12), typical of happiness."
    )


def test_explanations_never_contradict_the_label():
    rng = np.random.default_rng(0)
    for _ in range(300):
        cues = au_cues(bs(**{n: float(rng.uniform(0, 1) ** 2) for n in BLENDSHAPE_NAMES[1:]}))
        prior = dict(zip(LABELS, rng.dirichlet(np.ones(len(LABELS))), strict=True))
        d = decide(prior, cues)
        for label in {d.label, *LABELS}:  # also every forced label
            text = explain(label, cues, d.probs)
            assert text == explain(label, cues, d.probs)  # deterministic
            assert LABEL_PHRASES[label] in text
            others = [LABEL_PHRASES[o] for o in LABELS if o != label and LABEL_PHRASES[o] not in LABEL_PHRASES[label]]
            assert not any(o in text for o in others), (label, text)
            for au in supporting_cues(label, cues):
                assert au in PROTOTYPES[label] and PHRASES[au] in text.lower()
            cited = set(re.findall(r"AU\d+", text))
            assert cited <= set(PROTOTYPES.get(label, {})), (label, text)


@pytest.mark.parametrize(("label", "cues"), list(itertools.product(["happiness", "neutral", "anger"], [None, {}])))
def test_explanation_without_mesh(label, cues):
    text = explain(label, cues, onehot(label))
    assert "landmarks" in text and LABEL_PHRASES[label] in text
    with pytest.raises(ValueError):
        explain("joy", cues)
