"""The `PriorSource`s (`emollama.priors.source`): none, in memory, the prior cache and the cold extractor.

`CachePriorSource` reads what `emollama prepare` wrote; `ExtractorPriorSource` runs the same extractor on the
sample's media (`emollama.priors.extract.CropPriorExtractor`), so cached and cold priors are identical by
construction. A cache source with a ``fallback`` serves its misses from it. One-``.npz``-per-record directories
are in `emollama.priors.npz`.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from emollama.faces.contract import FacePrior

if TYPE_CHECKING:
    from emollama.priors.cache import PriorCache
    from emollama.priors.keys import ExtractorSpec
    from emollama.priors.source import PriorRequest, PriorSource


def _ms_since(t0: float) -> float:
    return round(1000 * (time.perf_counter() - t0), 3)


class NullPriorSource:
    """No priors: samples go without `<face>` tokens."""

    def __init__(self) -> None:
        self.stats: Counter = Counter()

    def describe(self) -> dict[str, Any]:
        return {"source": "none"}

    def has(self, req: PriorRequest) -> bool:
        return False

    def get(self, req: PriorRequest) -> FacePrior | None:
        return None


class InMemoryPriorSource:
    """Priors held in a dict, by prior key (tests, generated data)."""

    def __init__(self, priors: dict[str, FacePrior]) -> None:
        self.priors = dict(priors)
        self.stats: Counter = Counter()

    def describe(self) -> dict[str, Any]:
        return {"source": "memory", "entries": len(self.priors)}

    def has(self, req: PriorRequest) -> bool:
        return req.key in self.priors

    def get(self, req: PriorRequest) -> FacePrior:
        return self.priors[req.key]


class ExtractorPriorSource:
    """Cold priors: the extractor `emollama prepare` runs, applied to the request's media when asked.

    Args:
        spec: the extractor; policy: video frame sampling; preprocess: the vision tower's (crops come model-ready).
    """

    def __init__(self, spec: ExtractorSpec, policy: str, preprocess=None) -> None:
        from emollama.priors.extract import CropPriorExtractor

        self.spec, self.policy, self.preprocess = spec, policy, preprocess
        self.extractor = CropPriorExtractor(spec)
        self.stats: Counter = Counter()

    def describe(self) -> dict[str, Any]:
        return {"source": "computed per sample (cold)", "extractor": self.spec.name, "options": self.spec.options,
                "crop": [self.spec.crop.margin, self.spec.crop.size], "video_sampling": self.policy}

    def has(self, req: PriorRequest) -> bool:
        return req.media is not None

    def get(self, req: PriorRequest) -> FacePrior:
        if req.media is None:
            raise KeyError(f"the cold prior extractor needs the sample's media; the request for {req.key!r} has none")
        t0 = time.perf_counter()
        res = self.extractor(req.media, req.is_video, self.policy)
        if res.error is not None:
            raise ValueError(f"face priors for {req.id!r} ({req.media_rel}): {res.error[0]}: {res.error[1]}")
        prior = res.prior
        from emollama.model.transforms import tower_crops  # torch only when crops are asked for

        prior.crops = tower_crops(res.crops, res.has_crop, self.preprocess)
        self.stats["computed"] += 1
        self.stats["extract_ms"] += _ms_since(t0)
        return prior


class CachePriorSource:
    """Priors from a `emollama.priors.cache.PriorCache` (written by `emollama prepare`).

    A request with a prior key is looked up by it (training, ``data.priors='cache:DIR'``); one without is looked up
    with the cache's own key of its media (media path + content hash + ``spec`` + ``policy``: evaluation). A miss
    is an error unless a ``fallback`` source (the cold extractor) is given; then it is counted and served from there.

    Args:
        path: the cache as the user named it (reported); default the cache's root.
    """

    def __init__(self, cache: PriorCache, spec: ExtractorSpec | None = None, policy: str | None = None,
                 path: str | None = None, fallback: PriorSource | None = None) -> None:
        self.cache, self.spec, self.policy, self.fallback = cache, spec, policy, fallback
        self.path = str(cache.root) if path is None else path
        self.stats: Counter = Counter()

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"source": "prior cache", "cache": self.path}
        if self.spec is not None:
            out.update(extractor=self.spec.name, options=self.spec.options,
                       crop=[self.spec.crop.margin, self.spec.crop.size], video_sampling=self.policy,
                       fallback="cold extractor" if self.fallback else None)
        return out

    def _key(self, req: PriorRequest) -> str | None:
        if req.key is not None:
            return req.key
        if self.spec is None or req.media is None:
            return None
        return self.cache.key_for(req, self.spec, self.policy)

    def has(self, req: PriorRequest) -> bool:
        key = self._key(req)
        return (key is not None and self.cache.has(key)) or (self.fallback is not None and self.fallback.has(req))

    def get(self, req: PriorRequest) -> FacePrior | None:
        t0 = time.perf_counter()
        key = self._key(req)
        if key is not None and self.cache.has(key):
            prior = self.cache.get(key)
            self.stats["cache_hit"] += 1
            self.stats["read_ms"] += _ms_since(t0)
            return prior
        if self.fallback is not None:
            self.stats["cache_miss"] += 1
            return self.fallback.get(req)
        if key is not None and req.key is not None:
            return self.cache.get(key)  # raises the cache's KeyError, which says how to build the entry
        if self.spec is None:
            raise KeyError(f"prior cache {self.path!r} is read by prior key; the request for {req.id!r} has none")
        raise KeyError(f"prior cache {self.path!r} has no entry for {req.media_rel!r} with extractor "
                       f"{self.spec.name} {self.spec.options or ''} and video sampling {self.policy!r}; run "
                       f"`emollama prepare` with the same --extractor/--extractor-opt/--video-sampling, or pass "
                       "--prior-fallback to compute missing priors")
