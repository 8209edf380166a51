"""Drawn faces, clips and priors with known labels: tests, the pipeline demo and the CPU debug recipe.

Nothing here needs OpenCV, MediaPipe or network access. Landmarks follow the 'tiny10' layout:
0 left brow, 1 right brow, 2 left eye, 3 right eye, 4 nose, 5/6 mouth corners, 7 chin, 8/9 cheeks.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from emollama.faces.contract import FacePrior

SYNTHETIC_CLASSES = ("happiness", "sadness", "surprise", "anger", "neutral")
# (mouth curve, mouth open, brow raise, brow slant) per class; sign conventions in image space
_SHAPES = {
    "happiness": (0.6, 0.1, 0.0, 0.0),
    "sadness": (-0.5, 0.0, 0.1, -0.5),
    "surprise": (0.0, 0.9, 0.8, 0.0),
    "anger": (-0.2, 0.0, -0.4, 0.7),
    "neutral": (0.0, 0.0, 0.0, 0.0),
}


def draw_face(label: str, size: int = 64, jitter: float = 0.0, rng: np.random.Generator | None = None):
    """Draw a cartoon face showing ``label``.

    Returns:
        (PIL RGB image of size x size, landmarks (10, 2) float32 in [0, 1] image coordinates)
    """
    if label not in _SHAPES:
        raise KeyError(f"unknown synthetic class {label!r}; available: {list(SYNTHETIC_CLASSES)}")
    rng = rng or np.random.default_rng(0)
    curve, open_, raise_, slant = _SHAPES[label]
    dx, dy = (rng.uniform(-jitter, jitter, 2) if jitter else (0.0, 0.0))
    s = size
    img = Image.new("RGB", (s, s), (40, 60, 90))
    d = ImageDraw.Draw(img)
    cx, cy = 0.5 + dx, 0.52 + dy
    d.ellipse([(cx - 0.32) * s, (cy - 0.4) * s, (cx + 0.32) * s, (cy + 0.4) * s], fill=(224, 180, 150))
    eye_y, brow_y = cy - 0.12, cy - 0.22 - 0.06 * raise_
    pts = {}
    for i, side in enumerate((1, -1)):  # subject's left appears on image right
        ex = cx + side * 0.13
        r = 0.04 + 0.02 * max(raise_, 0)
        d.ellipse([(ex - r) * s, (eye_y - r) * s, (ex + r) * s, (eye_y + r) * s], fill=(30, 30, 30))
        inner, outer = ex - side * 0.07, ex + side * 0.07
        d.line([inner * s, (brow_y + 0.04 * slant) * s, outer * s, (brow_y - 0.02 * slant) * s], fill=(60, 40, 20),
               width=max(1, s // 24))
        pts[f"brow{i}"], pts[f"eye{i}"] = (ex, brow_y), (ex, eye_y)
    nose_y, mouth_y = cy + 0.02, cy + 0.2
    d.line([cx * s, (cy - 0.05) * s, cx * s, nose_y * s], fill=(150, 100, 80), width=max(1, s // 32))
    mw = 0.12 + 0.04 * abs(curve)
    corner_y = mouth_y - 0.06 * curve
    if open_ > 0.3:
        h = 0.05 + 0.08 * open_
        d.ellipse([(cx - mw * 0.6) * s, (mouth_y - h) * s, (cx + mw * 0.6) * s, (mouth_y + h) * s], fill=(90, 20, 30))
    else:
        d.line([(cx - mw) * s, corner_y * s, cx * s, mouth_y * s, (cx + mw) * s, corner_y * s], fill=(120, 30, 40),
               width=max(1, s // 20))
    lm = [pts["brow0"], pts["brow1"], pts["eye0"], pts["eye1"], (cx, nose_y), (cx + mw, corner_y),
          (cx - mw, corner_y), (cx, cy + 0.38), (cx + 0.2, cy + 0.06), (cx - 0.2, cy + 0.06)]
    return img, np.clip(np.asarray(lm, dtype=np.float32), 0, 1)


def synthetic_cues(label: str, num_blendshapes: int = 8) -> np.ndarray:
    """Blendshape-like cue vector with a learnable per-class signal. (num_blendshapes,) float32 in [0, 1]."""
    curve, open_, raise_, slant = _SHAPES[label]
    base = [max(curve, 0), max(-curve, 0), open_, max(raise_, 0), max(-raise_, 0), max(slant, 0), max(-slant, 0), 0.1]
    out = np.zeros(num_blendshapes, np.float32)
    out[: min(8, num_blendshapes)] = base[:num_blendshapes]
    return out


def synthetic_video(label: str, frames: int = 4, size: int = 64, seed: int = 0) -> list[np.ndarray]:
    """``frames`` jittered drawings of one expression as (H, W, 3) uint8 arrays."""
    rng = np.random.default_rng(seed)
    return [np.asarray(draw_face(label, size, jitter=0.03, rng=rng)[0]) for _ in range(frames)]


def synthetic_prior(label: str, frames: int, face_cfg, crops=None, seed: int = 0) -> FacePrior:
    """A `FacePrior` for a drawn face; needs face_cfg.landmark_layout == 'tiny10'."""
    if face_cfg.landmark_layout != "tiny10" or face_cfg.num_landmarks != 10:
        raise ValueError("synthetic priors use the 'tiny10' landmark layout (num_landmarks=10)")
    rng = np.random.default_rng(seed)
    lms = np.stack([draw_face(label, 64, jitter=0.03, rng=rng)[1] for _ in range(frames)])
    cues = np.tile(synthetic_cues(label, face_cfg.num_blendshapes), (frames, 1))
    age = np.zeros((frames, face_cfg.num_age_bins), np.float32)
    age[:, min(2, face_cfg.num_age_bins - 1)] = 1.0
    gender = np.full((frames, face_cfg.num_genders), 1.0 / face_cfg.num_genders, np.float32)
    race = np.full((frames, face_cfg.num_races), 1.0 / face_cfg.num_races, np.float32) if face_cfg.num_races else None
    emb = np.zeros((frames, face_cfg.embedding_dim), np.float32) if face_cfg.embedding_dim else None
    return FacePrior(landmarks=lms, blendshapes=cues, pose=np.zeros((frames, 3), np.float32), age_probs=age,
                     gender_probs=gender, race_probs=race, embedding=emb, crops=crops)
