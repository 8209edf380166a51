"""Offline conversation generator: no network, grounded in AU cues + AGR + the label, deterministic for a seed.

Image answers are 2-4 sentences: the expression, then the visual evidence, then optionally a summary. Evidence is
*measured* when AU cues are given (only action units of the label's prototype are cited, so the text cannot
contradict the label) and otherwise *hedged* ("usually shows as ..."), because nothing was looked at. Videos get a
follow-up turn about activity or cause that hedges whenever the cause is not visible (SPEC §5.3).

Wording lives here, versioned by ``OFFLINE_VERSION``: change any sentence and bump it, so old data stays traceable.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from emollama.faces.contract import AGRAttributes
from emollama.faces.explain import PHRASES
from emollama.instruct.providers.base import PROVIDERS, Generation, GenerationRequest

OFFLINE_VERSION = "offline_v1"
MIN_CUE = 0.2
ADJ = {"anger": "angry", "contempt": "contemptuous", "disgust": "disgusted", "fear": "fearful",
       "happiness": "happy", "neutral": "neutral", "sadness": "sad", "surprise": "surprised", "anxiety": "anxious",
       "helplessness": "helpless", "disappointment": "disappointed"}
NP = {k: k for k in ADJ} | {"neutral": "a neutral expression"}
_EXTRA_PHRASES = {  # actions the analyzer's table does not cover (MAFW's compound classes)
    "AU14": "one corner of the mouth is tightened and slightly raised",
    "AU24": "the lips are pressed together",
    "AU43": "the gaze is lowered",
    "RELAX": "the facial muscles look relaxed",
    "LEVEL": "the mouth is closed and level",
    "REST": "the brows rest in their natural position",
}
# label -> action units, most characteristic first (EMFACS-style; neutral uses resting-face descriptions)
EVIDENCE = {
    "happiness": ("AU12", "AU6"), "surprise": ("AU2", "AU5", "AU26", "AU1"),
    "fear": ("AU5", "AU20", "AU1", "AU4"), "anger": ("AU4", "AU7", "AU23"), "disgust": ("AU9", "AU10", "AU15"),
    "sadness": ("AU15", "AU1", "AU17", "AU4"), "contempt": ("AU14",), "anxiety": ("AU1", "AU4", "AU20", "AU24"),
    "helplessness": ("AU1", "AU15", "AU43"), "disappointment": ("AU15", "AU17", "AU24"),
    "neutral": ("RELAX", "LEVEL", "REST"),
}

STATEMENT_IMAGE = ("The {who} looks {adj}.", "The {who} has {a_adj} expression.",
                   "The {who}'s face shows {np}.", "This face displays {np}.")
STATEMENT_VIDEO = ("The {who} in the video looks {adj}.", "Throughout the clip, the {who}'s face shows {np}.",
                   "The {who} in the video shows {np}.", "The {who} appears {adj} in this clip.")
GROUNDED = ("{ev}, which is characteristic of {np}.", "The clearest signs are that {ev}.",
            "You can see that {ev}.")
HEDGED = ("{np_cap} usually shows in the face: {ev}.", "Typical signs of {np} are that {ev}.",
          "This expression is usually marked by {ev_nouns}.")
NEUTRAL_GROUNDED = ("No facial action is clearly active: {ev}.", "The face is at rest; {ev}.")
CLOSING = ("Overall, the expression is best described as {adj}.", "The {who}'s expression is therefore read as {adj}.")
CLOSING_GROUNDED = "Taken together, these cues point to {np}."  # only after measured cues
FOLLOWUP_DOING = ("What is the person doing in the video?", "What is happening in the video?")
FOLLOWUP_WHY = ("Why does the {who} look {adj}?", "What could be the reason for the {who}'s {np_short}?")
FOLLOWUP_WHY_PRONOUN = "Why is {pron} {adj}?"  # SPEC §5.3 example; only with a known gender
NO_CAUSE = ("The video does not show what caused this, so the reason cannot be determined from the clip.",
            "The cause is not visible in the clip, so any specific reason would be a guess.",
            "Nothing in the clip makes the cause clear, so it is best not to speculate about it.")
NO_ACTIVITY = ("The clip stays on the {who}'s face, so little of any activity is visible.",
               "The video mainly shows the {who}'s face and does not clearly show an activity.")


def person_noun(agr: AGRAttributes | None) -> tuple[str, str]:
    """('woman', 'she') style noun and pronoun from AGR, ('person', 'they') when unknown."""
    if agr is None or agr.gender is None:
        return ("baby" if agr is not None and agr.age_group == "0-3" else "person"), "they"
    child = agr.age_group in ("0-3", "4-19")
    noun = {("female", False): "woman", ("male", False): "man", ("female", True): "girl", ("male", True): "boy"}
    return ("baby" if agr.age_group == "0-3" else noun[(agr.gender, child)]), ("she" if agr.gender == "female"
                                                                             else "he")


def _phrase(code: str) -> str:
    return PHRASES.get(code) or _EXTRA_PHRASES[code]


def _join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _noun_form(phrase: str) -> str:
    """Gerund form for 'marked by ...': 'the brows are lowered' -> 'the brows being lowered'."""
    for verb, ing in ((" are ", " being "), (" is ", " being "), (" look ", " looking "), (" falls ", " falling "),
                      (" rest ", " resting ")):
        if verb in phrase:
            return phrase.replace(verb, ing, 1)
    return phrase


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


class OfflineGenerator:
    """Template generator (``Generator`` protocol) that needs no API and no network."""

    name = "offline"
    model = OFFLINE_VERSION
    prompt_version = OFFLINE_VERSION
    needs_network = False
    settings: dict = {}

    def __init__(self, **_: object) -> None:  # accepts and ignores API options so the CLI can pass them uniformly
        pass

    def secrets(self) -> Sequence[str]:
        return ()

    def generate(self, request: GenerationRequest) -> Generation:
        rng = random.Random(f"{OFFLINE_VERSION}/{request.seed}/{request.sample_id}")
        label = request.label
        who, pron = person_noun(request.cues.agr)
        words = {"who": who, "pron": pron, "adj": ADJ.get(label, label), "np": NP.get(label, label),
                 "np_short": label if label != "neutral" else "neutral look"}
        words["np_cap"] = _cap(words["np"])
        words["a_adj"] = ("an " if words["adj"][0] in "aeiou" else "a ") + words["adj"]
        video = request.kind == "video"
        sentences = [rng.choice(STATEMENT_VIDEO if video else STATEMENT_IMAGE).format(**words)]
        evidence, grounded = self._evidence(label, request.cues.au, rng, words)
        sentences.append(evidence)
        if rng.random() < 0.5:
            sentences.append(rng.choice(CLOSING + ((CLOSING_GROUNDED,) if grounded else ())).format(**words))
        turns = [(request.question, " ".join(sentences))]
        if video:
            turns.append(self._followup(request, rng, words))
        return Generation(tuple(turns), model=OFFLINE_VERSION)

    def _evidence(self, label: str, au: dict[str, float], rng: random.Random,
                  words: dict[str, str]) -> tuple[str, bool]:
        """(sentence, grounded): measured cues when available, else the label's typical signs, hedged."""
        codes = EVIDENCE.get(label, ())
        if au and label == "neutral" and max(au.values(), default=0.0) < 0.3:
            ev = _join([_phrase(c) for c in codes[:2]])
            return rng.choice(NEUTRAL_GROUNDED).format(ev=ev, **words), True
        seen = sorted((c for c in codes if au.get(c, 0.0) >= MIN_CUE), key=lambda c: -au[c])[:2] if au else []
        if seen:  # measured cues: cite them, strongest first
            return _cap(rng.choice(GROUNDED).format(ev=_join([_phrase(c) for c in seen]), **words)), True
        picked = list(codes[:2]) if len(codes) <= 2 else sorted(rng.sample(codes[:3], 2), key=codes.index)
        template = rng.choice(HEDGED)
        ev_nouns = _join([_noun_form(_phrase(c)) for c in picked])
        return template.format(ev=_join([_phrase(c) for c in picked]), ev_nouns=ev_nouns, **words), False

    def _followup(self, request: GenerationRequest, rng: random.Random, words: dict[str, str]) -> tuple[str, str]:
        caption = (request.cues.caption or "").strip()
        if rng.random() < 0.5:
            question = rng.choice(FOLLOWUP_DOING)
            if caption:
                first = caption.split(". ")[0].rstrip(".")
                answer = f"According to the clip, {first[:1].lower()}{first[1:]}."
            else:
                answer = rng.choice(NO_ACTIVITY).format(**words)
            return question, f"{answer} {rng.choice(NO_CAUSE)}"
        options = FOLLOWUP_WHY + ((FOLLOWUP_WHY_PRONOUN,) if words["pron"] != "they" else ())
        question = rng.choice(options).format(**words)
        lead = (f"The clip shows that {caption.split('. ')[0].rstrip('.')[:1].lower()}"
                f"{caption.split('. ')[0].rstrip('.')[1:]}, but " if caption else "")
        cause = rng.choice(NO_CAUSE)
        return question, (lead + cause[:1].lower() + cause[1:]) if lead else cause


PROVIDERS.add("offline", OfflineGenerator)
