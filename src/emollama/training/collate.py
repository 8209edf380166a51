"""Batch `Example`s with `EmoLlamaProcessor` (right padding, labels on assistant answers only, SPEC §2.10).

The processor does all tokenisation, placeholder expansion and label masking; this module only decides where
face crops come from and guards the sequence length.
"""

from __future__ import annotations

import dataclasses

import torch

from emollama.model.face_inputs import FacePrior
from emollama.model.processor import EmoLlamaProcessor
from emollama.training.data import Example
from emollama.vision.sampling import uniform_indices
from emollama.vision.transforms import preprocess_frames


def select_frames(prior: FacePrior, idx: list[int]) -> FacePrior:
    """The prior restricted to frames ``idx`` (every per-frame array indexed on its first dim)."""
    per_frame = ("landmarks", "blendshapes", "pose", "age_probs", "gender_probs", "race_probs", "embedding", "crops",
                 "valid")
    return dataclasses.replace(prior, **{k: getattr(prior, k)[idx] for k in per_frame if getattr(prior, k) is not None})


class Collator:
    """list[Example] -> model kwargs (input_ids (B, L), attention_mask, labels, pixel_values (F, 3, H, W), face_*).

    Args:
        processor: the model's processor (tokenizers + preprocessing).
        face_crops: 'media' = crops are the sample's frames (faces fill the frame, as in aligned FER data),
            'prior' = use `FacePrior.crops`, 'none' = no crop features.
        max_length: raise if an expanded sample is longer (placeholders are never truncated).
    """

    def __init__(self, processor: EmoLlamaProcessor, face_crops: str = "media", max_length: int | None = None) -> None:
        self.processor = processor
        self.face_crops = face_crops
        self.max_length = max_length

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
                crops = preprocess_frames(frames, self.processor.preprocess)  # (T, 3, H, W)
            out.append(dataclasses.replace(prior, crops=crops))
        return out

    def __call__(self, examples: list[Example]) -> dict[str, torch.Tensor]:
        batch = self.processor(
            [ex.messages for ex in examples],
            media=[ex.media for ex in examples],
            faces=[self.faces_for(ex) for ex in examples],
            agr=[ex.agr for ex in examples],
            padding_side="right",
            max_length=self.max_length,
        )
        return dict(batch)
