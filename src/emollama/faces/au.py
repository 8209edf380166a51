"""AU-like cues from MediaPipe's 52 ARKit-style blendshapes (pure numpy; no models).

Each cue is the mean of the listed left/right blendshapes (in [0, 1]), or a weighted mix where noted. These are
*AU-like*: MediaPipe's blendshapes were not trained on FACS codes, so the table below is our documented
approximation, following the usual ARKit <-> FACS correspondence.

| cue  | FACS name             | blendshapes                                        |
|------|-----------------------|----------------------------------------------------|
| AU1  | inner brow raiser     | browInnerUp                                        |
| AU2  | outer brow raiser     | browOuterUpLeft, browOuterUpRight                  |
| AU4  | brow lowerer          | browDownLeft, browDownRight                        |
| AU5  | upper lid raiser      | eyeWideLeft, eyeWideRight                          |
| AU6  | cheek raiser          | 0.5 cheekSquint(L,R) + 0.5 eyeSquint(L,R)          |
| AU7  | lid tightener         | eyeSquintLeft, eyeSquintRight                      |
| AU9  | nose wrinkler         | noseSneerLeft, noseSneerRight                      |
| AU10 | upper lip raiser      | mouthUpperUpLeft, mouthUpperUpRight                |
| AU12 | lip corner puller     | mouthSmileLeft, mouthSmileRight                    |
| AU14 | dimpler               | mouthDimpleLeft, mouthDimpleRight                  |
| AU15 | lip corner depressor  | mouthFrownLeft, mouthFrownRight                    |
| AU17 | chin raiser           | mouthShrugLower                                    |
| AU20 | lip stretcher         | mouthStretchLeft, mouthStretchRight                |
| AU23 | lip tightener         | mouthPressLeft, mouthPressRight                    |
| AU26 | jaw drop              | jawOpen                                            |
| AU28 | lip suck              | mouthRollLower, mouthRollUpper                     |
| AU43 | eyes closed           | eyeBlinkLeft, eyeBlinkRight                        |

Missing blendshapes count as 0. A cue is *active* at >= `ACTIVE` (0.3).
"""

from __future__ import annotations

import numpy as np

# MediaPipe FaceLandmarker blendshape order (index 0 is "_neutral"); FacePrior.blendshapes uses this order.
BLENDSHAPE_NAMES = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft",
    "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft",
    "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft",
    "jawOpen", "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight",
    "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft",
    "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)  # fmt: skip

# cue -> ((weight, (blendshape, ...)), ...); each group contributes weight * mean(group)
AU_MAP: dict[str, tuple[tuple[float, tuple[str, ...]], ...]] = {
    "AU1": ((1.0, ("browInnerUp",)),),
    "AU2": ((1.0, ("browOuterUpLeft", "browOuterUpRight")),),
    "AU4": ((1.0, ("browDownLeft", "browDownRight")),),
    "AU5": ((1.0, ("eyeWideLeft", "eyeWideRight")),),
    "AU6": ((0.5, ("cheekSquintLeft", "cheekSquintRight")), (0.5, ("eyeSquintLeft", "eyeSquintRight"))),
    "AU7": ((1.0, ("eyeSquintLeft", "eyeSquintRight")),),
    "AU9": ((1.0, ("noseSneerLeft", "noseSneerRight")),),
    "AU10": ((1.0, ("mouthUpperUpLeft", "mouthUpperUpRight")),),
    "AU12": ((1.0, ("mouthSmileLeft", "mouthSmileRight")),),
    "AU14": ((1.0, ("mouthDimpleLeft", "mouthDimpleRight")),),
    "AU15": ((1.0, ("mouthFrownLeft", "mouthFrownRight")),),
    "AU17": ((1.0, ("mouthShrugLower",)),),
    "AU20": ((1.0, ("mouthStretchLeft", "mouthStretchRight")),),
    "AU23": ((1.0, ("mouthPressLeft", "mouthPressRight")),),
    "AU26": ((1.0, ("jawOpen",)),),
    "AU28": ((1.0, ("mouthRollLower", "mouthRollUpper")),),
    "AU43": ((1.0, ("eyeBlinkLeft", "eyeBlinkRight")),),
}
AU_NAMES = tuple(AU_MAP)
AU_DESCRIPTIONS = {
    "AU1": "inner brow raiser", "AU2": "outer brow raiser", "AU4": "brow lowerer", "AU5": "upper lid raiser",
    "AU6": "cheek raiser", "AU7": "lid tightener", "AU9": "nose wrinkler", "AU10": "upper lip raiser",
    "AU12": "lip corner puller", "AU14": "dimpler", "AU15": "lip corner depressor", "AU17": "chin raiser",
    "AU20": "lip stretcher", "AU23": "lip tightener", "AU26": "jaw drop", "AU28": "lip suck", "AU43": "eyes closed",
}  # fmt: skip
ACTIVE = 0.3


def au_cues(blendshapes: dict[str, float]) -> dict[str, float]:
    """Blendshape scores by name -> AU-like cue intensities in [0, 1] (empty dict in -> empty dict out)."""
    if not blendshapes:
        return {}
    out = {}
    for au, groups in AU_MAP.items():
        v = sum(w * float(np.mean([blendshapes.get(n, 0.0) for n in names])) for w, names in groups)
        out[au] = float(np.clip(v, 0.0, 1.0))
    return out


def active_aus(cues: dict[str, float], threshold: float = ACTIVE) -> list[str]:
    """Cues at or above ``threshold``, strongest first."""
    return sorted((a for a, v in cues.items() if v >= threshold), key=lambda a: -cues[a])


def blendshape_vector(blendshapes: dict[str, float]) -> np.ndarray:
    """(52,) float32 in `BLENDSHAPE_NAMES` order (zeros when absent)."""
    return np.array([blendshapes.get(n, 0.0) for n in BLENDSHAPE_NAMES], dtype=np.float32)
