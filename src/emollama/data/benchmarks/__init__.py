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
    "get_benchmark",
    "to_canonical",
]
