"""Packing facial priors into the flat tensors the model consumes.

A `FacePrior` (the face contract, `emollama.faces.contract`) describes ONE face over T frames. The model never sees
the dataclass: the processor packs a list of them (one per `<face>` placeholder) with `pack_face_priors` into plain
tensors so that HF utilities (generate, Trainer, peft) pass them through untouched.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from emollama.faces.align import DEFAULT_MARGIN, face_view
from emollama.faces.contract import GENDERS, ArrayLike, FacePrior, region_table
from emollama.faces.expression_net import ExpressionNetConfig
from emollama.model.configuration import EmoLlamaFaceConfig

__all__ = ["GENDERS", "FacePrior", "pack_face_priors", "region_table"]  # the contract names: re-exported for 0.1 code


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


def visual_item(config, item, prior: FacePrior | None, crop_margin: float | None = None):
    """What goes behind `<image>` for ``item``: the item itself, or, for a model with ``visual_input: face`` and a
    prior that records its crop region, the face's square crop with the expression network's 10 % margin
    (`emollama.faces.align.face_view`; the framing the emonet tower was trained on). Clips (frame lists or
    (T, H, W, 3) arrays) always pass unchanged. Training, evaluation and `EmoLlama.predict` all call this, so the
    tower sees the same pixels in each.

    Args:
        config: the model's `EmoLlamaConfig` (only ``visual_input`` is read).
        item: an image (PIL or (H, W, 3) uint8) or a clip.
        crop_margin: the margin the prior's crop regions were made with (`emollama prepare --crop-margin`;
            default: the analyzer's, 0.25).
    Returns:
        the item, or an (h, w, 3) uint8 crop (resized by the processor like any image).
    """
    is_image = isinstance(item, Image.Image) or (isinstance(item, np.ndarray) and item.ndim == 3)
    if config.visual_input != "face" or not is_image or prior is None or prior.crop_boxes is None:
        return item
    return face_view(item, np.asarray(prior.crop_boxes)[0], ExpressionNetConfig().margin,
                     DEFAULT_MARGIN if crop_margin is None else crop_margin)
