"""Inputs of a local evaluation: media (decoded, or tower-ready frames from the cache), face priors (cached or
computed cold) and predicted AGR groups (`agr_from_prior`, shared with training).

Media come from ``DecodedMedia`` (cold) or ``CachedMedia`` (frames `emollama prepare --frames-for-model` stored,
bit-identical after normalisation, decoding on a miss).

Priors come from a ``PriorProvider``: ``NoPriors`` (no `<face>` tokens), ``ExtractedPriors`` (cold: the
`emollama prepare` extractor run on every sample) or ``CachedPriors`` (the face-prior cache `emollama prepare`
wrote), optionally falling back to the cold extractor for samples the cache lacks. Hits, misses and extraction time
are counted in ``stats`` (reported as timing, never as part of the results).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any, Protocol

import numpy as np

from emollama.data.benchmarks.base import Sample
from emollama.model.face_inputs import FacePrior, agr_from_prior

logger = logging.getLogger(__name__)


def load_media(sample: Sample, frames: str) -> Any:
    """An image as a PIL RGB image, or a clip as sampled (H, W, 3) uint8 frames (policy ``frames``, e.g. uniform:8)."""
    from emollama.data.frame_cache import decode_media

    got, _ = decode_media(sample.media, sample.is_video, frames)
    return got if sample.is_video else got[0]


class DecodedMedia:
    """Media decoded from the files on every run (cold). ``stats``: decoded count and milliseconds."""

    def __init__(self) -> None:
        self.stats: Counter = Counter()

    def describe(self) -> dict[str, Any]:
        return {"source": "decoded per sample"}

    def load(self, sample: Sample, frames: str) -> Any:
        t0 = time.perf_counter()
        media = load_media(sample, frames)
        self.stats["decoded"] += 1
        self.stats["decode_ms"] += round(1000 * (time.perf_counter() - t0), 3)
        return media


class CachedMedia(DecodedMedia):
    """Tower-ready frames from the cache (`emollama prepare --frames-for-model`): an image becomes one
    (S, S, 3) uint8 array, a clip a (T, S, S, 3) uint8 array, which the processor only normalises (its resize/crop
    is the identity on them). Absent entries (other policy, size or media) are decoded as usual and counted."""

    def __init__(self, cache, preprocess) -> None:
        super().__init__()
        self.cache, self.preprocess = cache, preprocess

    def describe(self) -> dict[str, Any]:
        return {"source": "frame cache, decoding on a miss", "cache": str(self.cache.root)}

    def load(self, sample: Sample, frames: str) -> Any:
        from emollama.data.frame_cache import frames_key_for, get_frames

        t0 = time.perf_counter()
        key = frames_key_for(self.cache, sample, frames, self.preprocess)
        if not self.cache.has(key):
            self.stats["frames_miss"] += 1
            return super().load(sample, frames)
        pixels, _ = get_frames(self.cache, key)
        self.stats["frames_hit"] += 1
        self.stats["read_ms"] += round(1000 * (time.perf_counter() - t0), 3)
        return pixels if sample.is_video else pixels[0]


def build_media(spec_arg: str, processor) -> DecodedMedia:
    """Cached frames when ``spec_arg`` (the ``--priors`` value) is a cache directory, else decoding."""
    if spec_arg in ("none", "auto"):
        return DecodedMedia()
    from emollama.data.prior_cache import PriorCache

    return CachedMedia(PriorCache(spec_arg), processor.preprocess)


class PriorProvider(Protocol):
    def describe(self) -> dict[str, Any]: ...

    def get(self, sample: Sample, media: Any) -> FacePrior | None: ...


class NoPriors:
    """Evaluate without face tokens."""

    def __init__(self) -> None:
        self.stats: Counter = Counter()

    def describe(self) -> dict[str, Any]:
        return {"source": "none"}

    def get(self, sample: Sample, media: Any) -> FacePrior | None:
        return None


def _tower_crops(crops: np.ndarray | None, has_crop: np.ndarray, preprocess) -> Any:
    """(T, S, S, 3) uint8 crops -> (T, 3, size, size) float for the vision tower, zeros where no crop; or None."""
    if crops is None or preprocess is None:
        return None
    import torch

    from emollama.vision.transforms import preprocess_frame

    return torch.stack([preprocess_frame(c, preprocess) if ok else torch.zeros(3, preprocess.size, preprocess.size)
                        for c, ok in zip(crops, np.asarray(has_crop, bool), strict=True)])


class ExtractedPriors:
    """Cold priors: the same extractor `emollama prepare` runs (`emollama.data.prior_extract.CropPriorExtractor`),
    applied to every sample at evaluation time, so cold and cached priors are identical by construction."""

    def __init__(self, spec, policy: str, preprocess=None) -> None:
        from emollama.data.prior_extract import CropPriorExtractor

        self.spec, self.policy, self.preprocess = spec, policy, preprocess
        self.extractor = CropPriorExtractor(spec)
        self.stats: Counter = Counter()

    def describe(self) -> dict[str, Any]:
        return {"source": "computed per sample (cold)", "extractor": self.spec.name, "options": self.spec.options,
                "crop": [self.spec.crop.margin, self.spec.crop.size], "video_sampling": self.policy}

    def get(self, sample: Sample, media: Any) -> FacePrior:
        t0 = time.perf_counter()
        res = self.extractor(sample.media, sample.is_video, self.policy)
        if res.error is not None:
            raise ValueError(f"face priors for {sample.id!r} ({sample.media_rel}): {res.error[0]}: {res.error[1]}")
        prior = res.prior
        prior.crops = _tower_crops(res.crops, res.has_crop, self.preprocess)
        self.stats["computed"] += 1
        self.stats["extract_ms"] += round(1000 * (time.perf_counter() - t0), 3)
        return prior


class CachedPriors:
    """Priors from a `emollama.data.prior_cache.PriorCache` (written by `emollama prepare`), looked up with the
    cache's own key (media path + content hash + extractor spec + sampling policy). A miss is an error unless a
    ``fallback`` (cold extractor) is given."""

    def __init__(self, cache, spec, policy: str, path: str, fallback: ExtractedPriors | None = None) -> None:
        self.cache, self.spec, self.policy, self.path, self.fallback = cache, spec, policy, path, fallback
        self.stats: Counter = Counter()

    def describe(self) -> dict[str, Any]:
        return {"source": "prior cache", "cache": self.path, "extractor": self.spec.name,
                "options": self.spec.options, "crop": [self.spec.crop.margin, self.spec.crop.size],
                "video_sampling": self.policy, "fallback": "cold extractor" if self.fallback else None}

    def get(self, sample: Sample, media: Any) -> FacePrior:
        t0 = time.perf_counter()
        key = self.cache.key_for(sample, self.spec, self.policy)
        if self.cache.has(key):
            prior = self.cache.get(key)
            self.stats["cache_hit"] += 1
            self.stats["read_ms"] += round(1000 * (time.perf_counter() - t0), 3)
            return prior
        if self.fallback is None:
            raise KeyError(f"prior cache {self.path!r} has no entry for {sample.media_rel!r} with extractor "
                           f"{self.spec.name} {self.spec.options or ''} and video sampling {self.policy!r}; run "
                           f"`emollama prepare` with the same --extractor/--extractor-opt/--video-sampling, or pass "
                           "--prior-fallback to compute missing priors")
        self.stats["cache_miss"] += 1
        return self.fallback.get(sample, media)


def prior_spec(processor, name: str | None = None, options: dict[str, Any] | None = None):
    """`ExtractorSpec` whose priors this model can read: mediapipe for 478-landmark models, else synthetic.

    The synthetic extractor gets the model's landmark/blendshape widths (tiny: 10 and 8) unless ``options`` set
    them; its priors are deterministic noise with no facial information, for exercising the tiny model end to end.
    """
    from emollama.data.prior_keys import ExtractorSpec

    fc = processor.config.face_config
    name = name or ("mediapipe" if fc.landmark_layout == "mediapipe478" else "synthetic")
    opts = dict(options or {})
    if name == "synthetic":
        opts = {"num_landmarks": fc.num_landmarks, "num_blendshapes": fc.num_blendshapes, **opts}
    return ExtractorSpec(name, opts)


def build_priors(spec_arg: str, processor, *, extractor: str | None = None, options: dict[str, Any] | None = None,
                 policy: str | None = None, fallback: bool = False) -> PriorProvider:
    """'none' | 'auto' (cold) | a cache directory -> a ``PriorProvider`` (``policy`` defaults to the model's).

    A model without a face module (``face_config.enabled`` False) always gets ``NoPriors``.
    """
    if spec_arg == "none" or not getattr(processor.config.face_config, "enabled", True):
        return NoPriors()
    spec = prior_spec(processor, extractor, options)
    policy = policy or processor.config.frame_sampling
    cold = ExtractedPriors(spec, policy, processor.preprocess) if spec_arg == "auto" or fallback else None
    if spec_arg == "auto":
        return cold
    from emollama.data.prior_cache import PriorCache

    return CachedPriors(PriorCache(spec_arg, preprocess=processor.preprocess), spec, policy, spec_arg, cold)


def predicted_agr(prior: FacePrior | None) -> dict[str, str]:
    """{"predicted_age", "predicted_gender"} for the report: the groups of `agr_from_prior` (the attributes the AGR
    prompt is built from, as in training), without its confidence threshold.

    Empty for no prior and for synthetic priors, whose "age" and "gender" are random numbers, not predictions.
    """
    if prior is None or (prior.meta or {}).get("backend") == "synthetic":
        return {}
    valid = np.ones(prior.num_frames, bool) if prior.valid is None else np.asarray(prior.valid, bool)
    if not valid.any():
        return {"predicted_age": "no face", "predicted_gender": "no face"}
    attrs = agr_from_prior(prior)
    if attrs is None:
        return {}
    return {k: v for k, v in (("predicted_age", attrs.age_group), ("predicted_gender", attrs.gender)) if v is not None}


def truth_agr(sample: Sample) -> dict[str, str]:
    """{"age", "gender", "race"} from the dataset's own annotations (RAF-DB), else {}."""
    a = sample.agr
    if a is None:
        return {}
    return {k: v for k, v in (("age", a.age_group), ("gender", a.gender), ("race", a.race)) if v is not None}
