"""Typed containers for facial priors, and packing them into the flat tensors the model consumes.

A `FacePrior` describes ONE face over T frames (T=1 for an image). The model never sees the dataclass: the
processor packs a list of them (one per `<face>` placeholder) with `pack_face_priors` into plain tensors so
that HF utilities (generate, Trainer, peft) pass them through untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources

import numpy as np
import torch
import yaml

from emollama.instruct.agr import AGE_GROUPS, AGRAttributes
from emollama.model.configuration import EmoLlamaFaceConfig

ArrayLike = np.ndarray | torch.Tensor
GENDERS = ("female", "male")  # order of FacePrior.gender_probs (emollama.faces.priors writes them so)


@dataclass
class FacePrior:
    """Facial prior of one face over T frames. Every array's first dim is T.

    Attributes:
        landmarks: (T, K, 2) x, y normalised to [0, 1] of the face crop.
        blendshapes: (T, B) AU-like scores in [0, 1] (MediaPipe's 52 blendshapes, or zeros).
        pose: (T, 3) yaw, pitch, roll in radians.
        age_probs: (T, A) distribution over age groups; gender_probs: (T, G); race_probs: (T, R) or None.
        embedding: (T, E) global face embedding (e.g. FaceXFormer pooled map) or None.
        crops: (T, 3, H, W) face crops preprocessed for the vision tower, or None.
        valid: (T,) bool, False where no face was found on that frame.
        crop_boxes: (T, 4) float x0, y0, x1, y1 in pixels of the frame: the square crop region (the analyzer's
            rule, `emollama.faces.align.crop_face`) the landmarks are normalised to and ``crops`` show; NaN on
            frames without a crop; None when unknown. It lets training cut the very same crop out of the media.
    """

    landmarks: ArrayLike
    blendshapes: ArrayLike
    pose: ArrayLike
    age_probs: ArrayLike
    gender_probs: ArrayLike
    race_probs: ArrayLike | None = None
    embedding: ArrayLike | None = None
    crops: ArrayLike | None = None
    valid: ArrayLike | None = None
    meta: dict = field(default_factory=dict)
    crop_boxes: ArrayLike | None = None

    @property
    def num_frames(self) -> int:
        return int(self.landmarks.shape[0])

    def vector(self, cfg: EmoLlamaFaceConfig) -> torch.Tensor:
        """(T, cfg.prior_dim) global prior vector; raises if a width disagrees with the config."""
        parts = [
            ("blendshapes", self.blendshapes, cfg.num_blendshapes),
            ("pose", self.pose, 3),
            ("age_probs", self.age_probs, cfg.num_age_bins),
            ("gender_probs", self.gender_probs, cfg.num_genders),
            ("race_probs", self.race_probs, cfg.num_races),
            ("embedding", self.embedding, cfg.embedding_dim),
        ]
        t = self.num_frames
        out = []
        for name, value, width in parts:
            if width == 0:
                continue
            if value is None:
                raise ValueError(f"FacePrior.{name} is None but face_config expects width {width}")
            v = torch.as_tensor(np.asarray(value) if not torch.is_tensor(value) else value, dtype=torch.float32)
            if tuple(v.shape) != (t, width):
                raise ValueError(f"FacePrior.{name}: expected shape ({t}, {width}), got {tuple(v.shape)}")
            out.append(v)
        return torch.cat(out, dim=-1)


def agr_from_prior(prior: FacePrior | None) -> AGRAttributes | None:
    """Age group and gender from the prior's probabilities, averaged over valid frames (a soft vote for videos).

    The one source of the AGR prompt's attributes for training (`data.agr='prior'`) and evaluation, and of the
    predicted groups evaluation reports. Confidences are the averaged probabilities; `render_agr` drops attributes
    below its threshold. Race is left out: the prior's race head has no agreed class names yet. None when there is
    no prior, no valid frame, or neither distribution has the expected width.
    """
    if prior is None:
        return None
    valid = np.ones(prior.num_frames, bool) if prior.valid is None else np.asarray(prior.valid, bool)
    if not valid.any():
        return None
    age = np.asarray(prior.age_probs, np.float32)[valid].mean(0)
    gender = np.asarray(prior.gender_probs, np.float32)[valid].mean(0)
    kw = {}
    if len(age) == len(AGE_GROUPS) and age.sum() > 0:
        kw.update(age_group=AGE_GROUPS[int(age.argmax())], age_confidence=float(age.max()))
    if len(gender) == len(GENDERS) and gender.sum() > 0:
        kw.update(gender=GENDERS[int(gender.argmax())], gender_confidence=float(gender.max()))
    return AGRAttributes(**kw) if kw else None


def _t(x: ArrayLike) -> torch.Tensor:
    return x if torch.is_tensor(x) else torch.from_numpy(np.ascontiguousarray(x))


def pack_face_priors(priors: list[FacePrior], cfg: EmoLlamaFaceConfig) -> dict[str, torch.Tensor]:
    """Flatten N priors (T_n frames each) into model kwargs.

    Returns:
        face_prior_values (F, prior_dim), face_landmarks (F, K, 2), face_frame_counts (N,), face_frame_mask (F,)
        and, when every prior has crops, face_pixel_values (F, 3, H, W). F = sum of T_n.
    """
    if not priors:
        return {}
    for p in priors:
        k = p.landmarks.shape[1]
        if k != cfg.num_landmarks:
            raise ValueError(
                f"FacePrior has {k} landmarks but face_config.num_landmarks={cfg.num_landmarks} "
                f"(layout {cfg.landmark_layout!r})"
            )
    out = {
        "face_prior_values": torch.cat([p.vector(cfg) for p in priors]),
        "face_landmarks": torch.cat([_t(p.landmarks).float() for p in priors]),
        "face_frame_counts": torch.tensor([p.num_frames for p in priors], dtype=torch.long),
        "face_frame_mask": torch.cat(
            [
                torch.ones(p.num_frames, dtype=torch.bool) if p.valid is None else _t(p.valid).bool()
                for p in priors
            ]
        ),
    }
    if cfg.use_crop_features and all(p.crops is not None for p in priors):
        out["face_pixel_values"] = torch.cat([_t(p.crops).float() for p in priors])
    return out


@cache
def region_table(layout: str) -> tuple[tuple[str, ...], tuple[tuple[int, ...], ...]]:
    """(region names, landmark indices per region) for a landmark layout (resources/landmark_regions.yaml)."""
    text = resources.files("emollama.resources").joinpath("landmark_regions.yaml").read_text()
    data = yaml.safe_load(text)
    layouts = data["layouts"]
    if layout not in layouts:
        raise KeyError(f"unknown landmark layout {layout!r}; available: {sorted(layouts)}")
    names = tuple(data["regions"])
    return names, tuple(tuple(layouts[layout][n]) for n in names)
