"""Packing facial priors into the flat tensors the model consumes.

A `FacePrior` (the face contract, `emollama.faces.contract`) describes ONE face over T frames. The model never sees
the dataclass: the processor packs a list of them (one per `<face>` placeholder) with `pack_face_priors` into plain
tensors so that HF utilities (generate, Trainer, peft) pass them through untouched.
"""

from __future__ import annotations

import numpy as np
import torch

from emollama.faces.contract import ArrayLike, FacePrior
from emollama.model.configuration import EmoLlamaFaceConfig


def prior_vector(prior: FacePrior, cfg: EmoLlamaFaceConfig) -> torch.Tensor:
    """(T, cfg.prior_dim) global prior vector; raises if a width disagrees with the config."""
    parts = [
        ("blendshapes", prior.blendshapes, cfg.num_blendshapes),
        ("pose", prior.pose, 3),
        ("age_probs", prior.age_probs, cfg.num_age_bins),
        ("gender_probs", prior.gender_probs, cfg.num_genders),
        ("race_probs", prior.race_probs, cfg.num_races),
        ("embedding", prior.embedding, cfg.embedding_dim),
    ]
    t = prior.num_frames
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
        "face_prior_values": torch.cat([prior_vector(p, cfg) for p in priors]),
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
