"""Batch `Example`s with `EmoLlamaProcessor` (right padding, labels on assistant answers only, SPEC §2.10).

The processor does all tokenisation, placeholder expansion and label masking; this module only decides where
face crops come from and guards the sequence length. Face crops follow the one crop rule of the analyzer
(`emollama.faces.align`): whatever the source, the crop covers the region the prior's landmarks are normalised to.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import torch

from emollama.faces.align import CropConfig, crop_region, square_box, to_rgb_array
from emollama.faces.contract import FacePrior
from emollama.faces.types import FaceBox
from emollama.media.sampling import uniform_indices
from emollama.model.face_inputs import visual_item
from emollama.model.processor import EmoLlamaProcessor
from emollama.model.towers import Preprocess
from emollama.model.transforms import preprocess_frame
from emollama.training.data import Example

logger = logging.getLogger(__name__)
_warned_no_regions = False
PER_FRAME = ("landmarks", "blendshapes", "pose", "age_probs", "gender_probs", "race_probs", "embedding", "crops",
             "valid", "crop_boxes")


def select_frames(prior: FacePrior, idx: list[int]) -> FacePrior:
    """The prior restricted to frames ``idx`` (every per-frame array indexed on its first dim)."""
    return dataclasses.replace(prior, **{k: getattr(prior, k)[idx] for k in PER_FRAME if getattr(prior, k) is not None})


def media_face_crops(frames: list, prior: FacePrior, pp: Preprocess, crop: CropConfig | None = None) -> torch.Tensor:
    """Tower-ready face crops cut out of the media with the analyzer's crop rule. (T, 3, size, size) float32.

    Each frame's region is ``prior.crop_boxes`` (the region its landmarks are normalised to, recorded by `emollama
    prepare`); the crop is that region resized to ``crop.size`` (the size the prior cache stores) and then
    preprocessed, exactly as evaluation and the API treat the analyzer's crops. A prior without regions is taken to
    be a face filling the frame: the region is `square_box` of the whole frame (1 + 2 * margin times its long side,
    zero padded). Frames without a crop (NaN region, or not ``valid``) get zeros, as in the prior cache.

    Args:
        frames: T frames (PIL or (H, W, 3) uint8), the same frames the prior was computed on.
    """
    global _warned_no_regions
    crop = crop or CropConfig()
    if prior.crop_boxes is None and not _warned_no_regions:
        _warned_no_regions = True
        logger.warning("face_crops=media: a prior records no crop regions (a prior cache from before they were "
                       "stored?); using the square crop of the whole frame, exact only for faces filling it. Re-run "
                       "`emollama prepare` or set data.face_crops=prior for the analyzer's own crops")
    t = len(frames)
    valid = np.ones(t, bool) if prior.valid is None else np.asarray(prior.valid, bool)
    boxes = None if prior.crop_boxes is None else np.asarray(prior.crop_boxes, np.float64)
    out = []
    for i, frame in enumerate(frames):
        rgb = to_rgb_array(frame)
        if boxes is not None:
            region = None if np.isnan(boxes[i]).any() else FaceBox(*(float(v) for v in boxes[i]))
        else:
            h, w = rgb.shape[:2]
            region = square_box(FaceBox(0.0, 0.0, float(w), float(h)), crop.margin) if valid[i] else None
        out.append(torch.zeros(3, pp.size, pp.size) if region is None
                   else preprocess_frame(crop_region(rgb, region, crop.size), pp))
    return torch.stack(out)


class Collator:
    """list[Example] -> model kwargs (input_ids (B, L), attention_mask, labels, pixel_values (F, 3, H, W), face_*).

    Args:
        processor: the model's processor (tokenizers + preprocessing).
        face_crops: 'media' = face crops cut from the sample's frames at the prior's crop regions (`media_face_crops`;
            a prior without regions counts as a face filling the frame), 'prior' = use `FacePrior.crops` (the prior
            cache's stored crops), 'none' = no crop features. 'media' and 'prior' give the same pixels.
        max_length: raise if an expanded sample is longer (placeholders are never truncated).
        crop: the analyzer crop rule (margin, size) the priors were prepared with (`ExtractorSpec.crop`).
    """

    def __init__(self, processor: EmoLlamaProcessor, face_crops: str = "media", max_length: int | None = None,
                 crop: CropConfig | None = None) -> None:
        self.processor = processor
        self.face_crops = face_crops
        self.max_length = max_length
        self.crop = crop or CropConfig()

    def faces_for(self, ex: Example) -> list:
        """The sample's `FacePrior`s with crops set per ``face_crops``."""
        if self.face_crops == "prior":
            return ex.faces
        out = []
        for prior in ex.faces:
            crops = None
            if self.face_crops == "media":
                frames = self.processor.frames_of(ex.media[0])
                if len(frames) != prior.num_frames:
                    # e.g. a prior cached at 16 frames and a clip sampled at 8: both span the clip uniformly
                    n = min(len(frames), prior.num_frames)
                    frames = [frames[i] for i in uniform_indices(len(frames), n)]
                    prior = select_frames(prior, uniform_indices(prior.num_frames, n))
                crops = media_face_crops(frames, prior, self.processor.preprocess, self.crop)  # (T, 3, H, W)
            out.append(dataclasses.replace(prior, crops=crops))
        return out

    def media_for(self, ex: Example) -> list:
        """The sample's media items behind `<image>`/`<video>`: a `visual_input: face` model gets the face's own
        crop for an image (`visual_item`), as in evaluation and the API."""
        if len(ex.media) == 1 and ex.faces:
            return [visual_item(self.processor.config, ex.media[0], ex.faces[0], self.crop.margin)]
        return ex.media

    def __call__(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        batch = self.processor(
            [ex.messages for ex in examples],
            media=[self.media_for(ex) for ex in examples],
            faces=[self.faces_for(ex) for ex in examples],
            agr=[ex.agr for ex in examples],
            padding_side="right",
            max_length=self.max_length,
        )
        return dict(batch)
