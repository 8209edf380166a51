"""Final expression label = expression prior (mini-Xception) fused with blendshape AU cues.

Rules (deterministic, documented, unit-tested):

1. **AU evidence.** Each label gets an evidence score in [0, 1] from its prototype action units (EMFACS-style,
   `PROTOTYPES`: weighted sums of AU cues). Negative labels are gated by ``(1 - AU12)`` because MediaPipe raises
   brow-lowering, lid-tightening and upper-lip cues during broad smiles. Neutral evidence is
   ``max(0, 1 - 2 * max(other evidence))``.
2. **AU distribution.** ``p_au = softmax(beta * evidence)`` with ``beta`` = 6.
3. **Fusion.** Product of experts: ``log p = w_prior * log p_prior + w_au * log p_au``, renormalised
   (defaults 1 and 1). The prior is strong on happiness/surprise/neutral, the AU cues recover negative expressions
   the prior confuses (e.g. anger read as sadness).
4. **No mesh** (a face found only as a box): ``p = p_prior``. **No prior**: ``p = p_au``.
5. **Label** = argmax of ``p`` over `LABELS` (ties: first in `LABELS`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emollama.faces.expression import FER_LABELS

LABELS = FER_LABELS  # label vocabulary: anger, disgust, fear, happiness, sadness, surprise, neutral

# label -> {AU: weight}; weights sum to 1 so evidence stays in [0, 1]
PROTOTYPES: dict[str, dict[str, float]] = {
    "happiness": {"AU12": 0.8, "AU6": 0.2},
    "surprise": {"AU1": 0.3, "AU2": 0.15, "AU5": 0.2, "AU26": 0.35},
    "fear": {"AU1": 0.2, "AU4": 0.15, "AU5": 0.2, "AU20": 0.3, "AU26": 0.15},
    "anger": {"AU4": 0.55, "AU7": 0.2, "AU23": 0.25},
    "disgust": {"AU9": 0.5, "AU10": 0.3, "AU15": 0.2},
    "sadness": {"AU15": 0.45, "AU1": 0.2, "AU4": 0.15, "AU17": 0.2},
}
SMILE_GATED = ("fear", "anger", "disgust", "sadness")


@dataclass(frozen=True)
class DecisionConfig:
    beta: float = 6.0
    w_prior: float = 1.0
    w_au: float = 1.0


@dataclass
class Decision:
    label: str
    probs: dict[str, float]
    evidence: dict[str, float]  # per-label AU evidence (empty without AU cues)
    source: str  # "fused" | "prior" | "au"


def au_evidence(cues: dict[str, float]) -> dict[str, float]:
    """Per-label evidence in [0, 1] from AU cues (rule 1)."""
    smile = cues.get("AU12", 0.0)
    ev = {}
    for label, proto in PROTOTYPES.items():
        v = sum(w * cues.get(au, 0.0) for au, w in proto.items())
        ev[label] = float(v * (1.0 - smile) if label in SMILE_GATED else v)
    ev["neutral"] = max(0.0, 1.0 - 2.0 * max(ev.values()))
    return {label: ev[label] for label in LABELS}


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def decide(
    prior: dict[str, float] | None, cues: dict[str, float] | None, cfg: DecisionConfig | None = None
) -> Decision:
    """Fuse the expression prior (label -> prob) with AU cues (AU -> intensity) into the final label (rules 1-5)."""
    cfg = cfg or DecisionConfig()
    if not prior and not cues:
        raise ValueError("decide() needs an expression prior or AU cues")
    p_prior = None if not prior else np.array([prior.get(label, 0.0) for label in LABELS], dtype=np.float64)
    if not cues:
        p, ev, source = p_prior / p_prior.sum(), {}, "prior"
    else:
        ev = au_evidence(cues)
        p_au = _softmax(cfg.beta * np.array([ev[label] for label in LABELS]))
        if p_prior is None:
            p, source = p_au, "au"
        else:
            logp = cfg.w_prior * np.log(np.clip(p_prior, 1e-6, None)) + cfg.w_au * np.log(p_au)
            p, source = _softmax(logp), "fused"
    probs = {label: float(v) for label, v in zip(LABELS, p, strict=True)}
    return Decision(LABELS[int(np.argmax(p))], probs, ev, source)
