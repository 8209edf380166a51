"""One deterministic, grounded sentence per face, built from the strongest cues that SUPPORT the final label.

Only action units in the label's prototype (`emollama.faces.decide.PROTOTYPES`) are ever cited, so the sentence
cannot contradict the label (a happy face is never described with pulled-down mouth corners). Up to two cues with
intensity >= `MIN_CUE` are named, strongest first, with their codes in numeric order, e.g.

    "The corners of the mouth are pulled up and the cheeks are raised (AU6+AU12), typical of happiness."

Without a supporting cue the sentence says the cues are weak and the label rests on the face's appearance;
without any mesh it says so.
"""

from __future__ import annotations

from emollama.faces.decide import LABELS, PROTOTYPES

MIN_CUE = 0.2
MAX_CUES = 2

PHRASES = {
    "AU1": "the inner brows are raised",
    "AU2": "the outer brows are raised",
    "AU4": "the brows are lowered and drawn together",
    "AU5": "the upper eyelids are raised",
    "AU6": "the cheeks are raised",
    "AU7": "the eyelids are tightened",
    "AU9": "the nose is wrinkled",
    "AU10": "the upper lip is raised",
    "AU12": "the corners of the mouth are pulled up",
    "AU15": "the corners of the mouth are pulled down",
    "AU17": "the chin is pushed up",
    "AU20": "the lips are stretched sideways",
    "AU23": "the lips are tightened",
    "AU26": "the mouth falls open",
}
LABEL_PHRASES = {
    "anger": "anger",
    "disgust": "disgust",
    "fear": "fear",
    "happiness": "happiness",
    "sadness": "sadness",
    "surprise": "surprise",
    "neutral": "a neutral expression",
}


def supporting_cues(label: str, cues: dict[str, float], min_cue: float = MIN_CUE) -> list[str]:
    """AUs of ``label``'s prototype present at >= ``min_cue``, strongest first (at most `MAX_CUES`)."""
    proto = PROTOTYPES.get(label, {})
    found = [au for au in proto if cues.get(au, 0.0) >= min_cue and au in PHRASES]
    return sorted(found, key=lambda au: (-cues[au], int(au[2:])))[:MAX_CUES]


def _au_key(au: str) -> int:
    return int(au[2:])


def explain(label: str, cues: dict[str, float] | None, probs: dict[str, float] | None = None) -> str:
    """Sentence for ``label`` grounded in ``cues`` (AU -> intensity); ``probs`` is only quoted, never re-argmaxed."""
    if label not in LABELS:
        raise ValueError(f"unknown label {label!r}; vocabulary: {LABELS}")
    what = LABEL_PHRASES[label]
    p = (probs or {}).get(label)
    conf = f" (p={p:.2f})" if p is not None else ""
    if not cues:
        return f"No facial landmarks were available for action-unit cues; the face's appearance suggests {what}{conf}."
    if label == "neutral":
        strongest = max(cues.values(), default=0.0)
        if strongest < 0.3:
            return f"No facial action is clearly active and the face looks relaxed, typical of {what}."
        return f"Some facial actions are visible but not decisive; the face as a whole reads as {what}{conf}."
    aus = supporting_cues(label, cues)
    if not aus:
        return (f"The action-unit cues for {what} are weak; the label rests on the overall appearance of the "
                f"face{conf}.")
    text = " and ".join(PHRASES[au] for au in aus)
    codes = "+".join(sorted(aus, key=_au_key))
    return f"{text[0].upper()}{text[1:]} ({codes}), typical of {what}."
