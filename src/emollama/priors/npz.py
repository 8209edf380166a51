"""Priors as one uncompressed ``<key>.npz`` per record (``data.priors='npz:DIR'``; written by the synthetic task).

`save_prior_npz` / `load_prior_npz` write and read one `FacePrior` (without crops); `NpzDirPriorSource` serves a
directory of them by prior key.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emollama.faces.contract import FacePrior

if TYPE_CHECKING:
    from emollama.priors.source import PriorRequest

_OPTIONAL = ("race_probs", "embedding", "valid", "crop_boxes")
_REQUIRED = ("landmarks", "blendshapes", "pose", "age_probs", "gender_probs")


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
    """One `<key_to_filename(key)>.npz` per record in a directory, looked up by the request's prior key."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"prior directory {str(self.root)!r} does not exist (data.priors='npz:DIR')")
        self.stats: Counter = Counter()

    def describe(self) -> dict[str, Any]:
        return {"source": "npz directory", "dir": str(self.root)}

    def path(self, key: str) -> Path:
        return self.root / f"{key_to_filename(key)}.npz"

    def has(self, req: PriorRequest) -> bool:
        return req.key is not None and self.path(req.key).exists()

    def get(self, req: PriorRequest) -> FacePrior:
        if req.key is None:
            raise KeyError(f"npz priors in {str(self.root)!r} are read by prior key; the request for {req.id!r} "
                           "has none")
        return load_prior_npz(self.path(req.key))
