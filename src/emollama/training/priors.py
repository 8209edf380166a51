"""Where training reads face priors from: a pluggable `PriorSource` keyed by the record's prior key.

Sources: `none` (no priors; no `<face>`), in-memory (tests, synthetic), `npz:DIR` (one `<key>.npz` per record,
written by `save_prior_npz`) and `cache:DIR` (the sharded face-prior cache, `emollama.data.prior_cache`, keyed by
the records' `prior_key`). More sources plug in by registering a factory in `PRIOR_SOURCES`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from emollama.model.face_inputs import FacePrior
from emollama.registry import Registry

_OPTIONAL = ("race_probs", "embedding", "valid", "crop_boxes")
_REQUIRED = ("landmarks", "blendshapes", "pose", "age_probs", "gender_probs")


@runtime_checkable
class PriorSource(Protocol):
    """Read-only map prior key -> `FacePrior` (T frames; T=1 for images)."""

    def has(self, key: str) -> bool: ...

    def get(self, key: str) -> FacePrior: ...


class NullPriorSource:
    """No priors: samples train without `<face>` tokens."""

    def has(self, key: str) -> bool:
        return False

    def get(self, key: str) -> FacePrior:
        raise KeyError(f"no face priors configured (data.priors='none'), asked for {key!r}")


class InMemoryPriorSource:
    """Priors held in a dict (tests, generated data)."""

    def __init__(self, priors: dict[str, FacePrior]) -> None:
        self.priors = dict(priors)

    def has(self, key: str) -> bool:
        return key in self.priors

    def get(self, key: str) -> FacePrior:
        return self.priors[key]


def key_to_filename(key: str) -> str:
    """A record key (may contain '/') as a flat, filesystem-safe file stem."""
    return re.sub(r"[^A-Za-z0-9._-]+", "__", key)


def save_prior_npz(prior: FacePrior, path: str | os.PathLike) -> None:
    """Write a `FacePrior` (without crops) as an uncompressed .npz of float32 arrays."""
    arrays = {k: np.asarray(getattr(prior, k), dtype=np.float32) for k in _REQUIRED}
    arrays.update({k: np.asarray(getattr(prior, k)) for k in _OPTIONAL if getattr(prior, k) is not None})
    np.savez(path, **arrays)


def load_prior_npz(path: str | os.PathLike) -> FacePrior:
    """Read a `FacePrior` written by `save_prior_npz`."""
    with np.load(path) as z:
        missing = [k for k in _REQUIRED if k not in z]
        if missing:
            raise ValueError(f"prior file {str(path)!r} lacks arrays {missing}; has {sorted(z.files)}")
        kw = {k: z[k] for k in (*_REQUIRED, *_OPTIONAL) if k in z}
    if "valid" in kw:
        kw["valid"] = kw["valid"].astype(bool)
    return FacePrior(**kw)


class NpzDirPriorSource:
    """One `<key_to_filename(key)>.npz` per record in a directory."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"prior directory {str(self.root)!r} does not exist (data.priors='npz:DIR')")

    def path(self, key: str) -> Path:
        return self.root / f"{key_to_filename(key)}.npz"

    def has(self, key: str) -> bool:
        return self.path(key).exists()

    def get(self, key: str) -> FacePrior:
        return load_prior_npz(self.path(key))


def _cache_source(arg: str, root: Path, preprocess=None) -> PriorSource:
    from emollama.data.prior_cache import PriorCache  # optional module of the data layer; imported on use

    # with a Preprocess the cache returns crops ready for the vision tower (data.face_crops='prior')
    return PriorCache(root / arg, preprocess=preprocess)


# factory(arg, data_root, preprocess) -> PriorSource
PRIOR_SOURCES: Registry[Callable[..., PriorSource]] = Registry("prior source")
PRIOR_SOURCES.add("none", lambda arg, root, preprocess=None: NullPriorSource())
PRIOR_SOURCES.add("npz", lambda arg, root, preprocess=None: NpzDirPriorSource(root / arg))
PRIOR_SOURCES.add("cache", _cache_source)


def build_prior_source(spec: str, data_root: str | os.PathLike = ".", preprocess=None) -> PriorSource:
    """'none' | 'npz:DIR' | 'cache:DIR' (DIR relative to ``data_root`` unless absolute) | '<registered>:ARG'.

    ``preprocess`` (the vision tower's `Preprocess`) lets sources that store crops return them model-ready.
    """
    scheme, _, arg = spec.partition(":")
    return PRIOR_SOURCES.get(scheme)(arg, Path(data_root), preprocess=preprocess)
