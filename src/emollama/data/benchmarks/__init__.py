"""FER benchmark adapters over the owners' official layouts (DATASETS.md); importing registers them all.

Use ``get_benchmark(name).load(root, split, fold)`` -> ``LoadResult`` (samples + skip report).
"""

from __future__ import annotations

from emollama.data.benchmarks import (  # noqa: F401  (imported for registration)
    affectnet,
    affectnet_kaggle,
    dfew,
    fer2013,
    ferplus,
    ferv39k,
    generic,
    mafw,
    rafdb,
)
from emollama.data.benchmarks._io import SYNONYMS, to_canonical
from emollama.data.benchmarks.base import BENCHMARKS, Benchmark, DatasetInfo, LoadResult, Sample, get_benchmark
from emollama.data.benchmarks.report import DatasetFormatError, DatasetLayoutError, SkipReport
from emollama.faces.contract import DATASET_CLASSES

__all__ = [
    "BENCHMARKS",
    "SYNONYMS",
    "Benchmark",
    "DatasetFormatError",
    "DatasetInfo",
    "DatasetLayoutError",
    "LoadResult",
    "Sample",
    "SkipReport",
    "dataset_classes",
    "get_benchmark",
    "to_canonical",
]


def dataset_classes(name: str) -> tuple[str, ...]:
    """Class names (canonical spelling) of benchmark ``name`` in official index order."""
    if name.lower() in BENCHMARKS:
        info = get_benchmark(name.lower()).info
        canonical = (info() if callable(info) else info).canonical
        if canonical:
            return tuple(canonical)
    try:
        return DATASET_CLASSES[name.lower()]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; built-in class lists: {sorted(DATASET_CLASSES)}. "
                       "Pass the class list explicitly (e.g. --classes anger,happiness,neutral)") from None
