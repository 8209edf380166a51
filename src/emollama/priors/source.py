"""The one way training and evaluation read face priors: a `PriorSource` answers `PriorRequest`s.

A request names a sample by its prior key (a training record's ``prior_key``), by its media (an evaluation
`Sample`), or both; each source uses what it needs. A cache looks entries up by key, or computes the key from the
media, the extractor and the sampling policy; the cold extractor reads the media; a cache with a ``fallback``
chains the two. Implementations live in `emollama.priors.providers` and `emollama.priors.npz`.

Training builds its source from ``data.priors`` (`build_prior_source`: 'none' | 'npz:DIR' | 'cache:DIR' | any name
registered in `PRIOR_SOURCES`); evaluation builds it from ``--priors`` and the model (`model_prior_source`).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from emollama.faces.align import CropConfig
from emollama.faces.contract import FacePrior
from emollama.priors.keys import ExtractorSpec
from emollama.priors.npz import NpzDirPriorSource
from emollama.priors.providers import CachePriorSource, ExtractorPriorSource, NullPriorSource
from emollama.registry import Registry


class MediaRef(Protocol):
    """What priors need to know about a sample (a benchmark `Sample` is one; so is a `PriorRequest`)."""

    @property
    def id(self) -> str: ...

    @property
    def media(self) -> str | os.PathLike | None: ...  # absolute path: image, video file or frame folder

    @property
    def media_rel(self) -> str: ...  # path relative to the dataset root (part of cache keys)

    @property
    def is_video(self) -> bool: ...


@dataclass(frozen=True)
class PriorRequest:
    """The priors of one sample, asked for by ``key`` (the record's prior key), by media, or both."""

    key: str | None = None
    id: str = ""
    media: str | os.PathLike | None = None
    media_rel: str = ""
    is_video: bool = False

    @classmethod
    def for_sample(cls, sample: MediaRef, key: str | None = None) -> PriorRequest:
        """A request for a benchmark `Sample` (or any `MediaRef`), optionally with its prior key."""
        return cls(key, sample.id, sample.media, sample.media_rel, sample.is_video)


@runtime_checkable
class PriorSource(Protocol):
    """Read-only priors: `FacePrior` (T frames; T=1 for images) per request.

    ``stats`` counts hits, misses and milliseconds (reported as timing, never as results); ``describe()`` is what
    the run's report and fingerprint record about the source.
    """

    stats: Counter

    def describe(self) -> dict[str, Any]: ...

    def has(self, req: PriorRequest) -> bool: ...

    def get(self, req: PriorRequest) -> FacePrior | None: ...


def _cache(arg: str, root: Path, preprocess=None) -> PriorSource:
    from emollama.priors.cache import PriorCache

    # with a Preprocess the cache returns crops ready for the vision tower (data.face_crops='prior')
    return CachePriorSource(PriorCache(root / arg, preprocess=preprocess))


# factory(arg, data_root, preprocess) -> PriorSource
PRIOR_SOURCES: Registry[Callable[..., PriorSource]] = Registry("prior source")
PRIOR_SOURCES.add("none", lambda arg, root, preprocess=None: NullPriorSource())
PRIOR_SOURCES.add("npz", lambda arg, root, preprocess=None: NpzDirPriorSource(root / arg))
PRIOR_SOURCES.add("cache", _cache)


def build_prior_source(spec: str, data_root: str | os.PathLike = ".", preprocess=None) -> PriorSource:
    """Training's ``data.priors``: 'none' | 'npz:DIR' | 'cache:DIR' (DIR relative to ``data_root`` unless
    absolute) | '<registered>:ARG'. Records are looked up by their prior key.

    ``preprocess`` (the vision tower's `Preprocess`) lets sources that store crops return them model-ready.
    """
    scheme, _, arg = spec.partition(":")
    return PRIOR_SOURCES.get(scheme)(arg, Path(data_root), preprocess=preprocess)


def model_prior_spec(processor, name: str | None = None, options: dict[str, Any] | None = None,
                     crop: CropConfig | None = None) -> ExtractorSpec:
    """`ExtractorSpec` whose priors this model can read: mediapipe for 478-landmark models, else synthetic.

    The synthetic extractor gets the model's landmark/blendshape widths (tiny: 10 and 8) unless ``options`` set
    them; its priors are deterministic noise with no facial information, for exercising the tiny model end to end.
    """
    fc = processor.config.face_config
    name = name or ("mediapipe" if fc.landmark_layout == "mediapipe478" else "synthetic")
    opts = dict(options or {})
    if name == "synthetic":
        opts = {"num_landmarks": fc.num_landmarks, "num_blendshapes": fc.num_blendshapes, **opts}
    return ExtractorSpec(name, opts, crop or CropConfig())


def model_prior_source(spec_arg: str, processor, *, extractor: str | None = None,
                       options: dict[str, Any] | None = None, policy: str | None = None,
                       fallback: bool = False, crop: CropConfig | None = None) -> PriorSource:
    """Evaluation's ``--priors``: 'none' | 'auto' (cold extractor) | a cache directory, looked up by media.

    ``policy`` defaults to the model's frame sampling; ``fallback`` computes priors the cache lacks (cold); ``crop``
    is the stored crop of the cache (`emollama prepare --crop-size/--crop-margin`: part of its keys). A model
    without a face module (``face_config.enabled`` False) always gets `NullPriorSource`.
    """
    if spec_arg == "none" or not getattr(processor.config.face_config, "enabled", True):
        return NullPriorSource()
    spec = model_prior_spec(processor, extractor, options, crop)
    policy = policy or processor.config.frame_sampling
    cold = ExtractorPriorSource(spec, policy, processor.preprocess) if spec_arg == "auto" or fallback else None
    if cold is not None and spec_arg == "auto":
        return cold
    from emollama.priors.cache import PriorCache

    return CachePriorSource(PriorCache(spec_arg, preprocess=processor.preprocess), spec, policy, spec_arg, cold)
