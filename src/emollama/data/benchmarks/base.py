"""Benchmark adapter contract: ``Sample``, ``DatasetInfo``, the ``Benchmark`` base class and ``BENCHMARKS``.

Adapters read the owners' official layouts exactly as released (DATASETS.md) and never rewrite them. Each keeps
its own class list and order (for prompts and confusion matrices) and maps every class to ONE canonical name.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from emollama.constants import CANONICAL_EMOTIONS
from emollama.data.benchmarks.report import DatasetLayoutError, SkipReport
from emollama.faces.contract import AGRAttributes
from emollama.registry import Registry

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sample:
    """One labelled image or clip as listed by the official annotation files.

    Attributes:
        id: dataset-local id, e.g. "train_00001" (RAF-DB) or "Crime/Angry/0063" (FERV39k).
        media: absolute path of the image file, video file, or frame directory (DFEW/MAFW/FERV39k face crops).
        media_rel: the same path relative to the dataset root (posix), as written into instruction JSONL.
        is_video: True for clips (a video file or a frame directory).
        label_index: 0-based index into the dataset's official class list (official order).
        label: canonical class name (``constants.CANONICAL_EMOTIONS``).
        split / fold: official split name; fold 1-5 for DFEW/MAFW, else None.
        agr: ground-truth age/gender/race (RAF-DB manual annotations), else None.
        source / line: annotation file and 1-based line number the sample came from.
        raw_label: the label exactly as written in the file (an id or a string).
    """

    id: str
    media: Path
    media_rel: str
    is_video: bool
    label_index: int
    label: str
    split: str
    fold: int | None = None
    agr: AGRAttributes | None = None
    source: str | None = None
    line: int | None = None
    raw_label: str | None = None


@dataclass(frozen=True)
class DatasetInfo:
    """What a prompt or a report needs to know about a dataset's label space."""

    name: str
    classes: tuple[str, ...]  # official names, official order, as the owners spell them
    canonical: tuple[str, ...]  # canonical name for each official index
    modality: str  # "image" | "video" | "mixed"
    splits: tuple[str, ...] = ()
    folds: tuple[int, ...] = ()
    test_split: str = "test"

    def __post_init__(self) -> None:
        if len(self.classes) != len(self.canonical):
            raise ValueError(f"{self.name}: {len(self.classes)} classes but {len(self.canonical)} canonical names")
        bad = [c for c in self.canonical if c not in CANONICAL_EMOTIONS]
        if bad:
            raise ValueError(f"{self.name}: canonical names {bad} not in CANONICAL_EMOTIONS {CANONICAL_EMOTIONS}")


@dataclass
class LoadResult:
    """Samples of one split (and fold) plus the report of everything skipped or excluded."""

    info: DatasetInfo
    split: str
    fold: int | None
    samples: list[Sample] = field(default_factory=list)
    report: SkipReport = field(default_factory=SkipReport)


class Benchmark:
    """Base class of dataset adapters; subclasses set the class attributes and implement ``_load``.

    Args:
        **options: adapter options (see ``options``), e.g. ``image="original"`` for RAF-DB.
    """

    name: ClassVar[str]
    title: ClassVar[str]  # human name used in messages, e.g. "RAF-DB"
    classes: ClassVar[tuple[str, ...]]
    canonical: ClassVar[tuple[str, ...]]
    modality: ClassVar[str]
    splits: ClassVar[tuple[str, ...]]
    folds: ClassVar[tuple[int, ...]] = ()
    test_split: ClassVar[str] = "test"
    options: ClassVar[dict[str, tuple[str, str]]] = {}  # option -> (default, help)
    label_format: ClassVar[str] = ""  # how the official files write labels, for `datasets list`

    def __init__(self, **options: str) -> None:
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise KeyError(f"{self.name}: unknown option(s) {unknown}; available: {sorted(self.options)}")
        self.opts = {k: options.get(k, default) for k, (default, _) in self.options.items()}

    def info(self, root: str | Path | None = None) -> DatasetInfo:
        """Label space of this dataset (``root`` matters only for the generic adapters)."""
        return DatasetInfo(self.name, self.classes, self.canonical, self.modality, self.splits, self.folds,
                           self.test_split)

    def media_root(self, root: str | Path) -> Path:
        """The folder that sample media paths (`Sample.rel`) are relative to, for the ``root`` a user passes."""
        return Path(root).expanduser()

    def load(self, root: str | Path, split: str, fold: int | None = None, *, strict: bool = False,
             check_media: bool = True) -> LoadResult:
        """Read one split (and fold) from the official layout under ``root``.

        Raises:
            DatasetLayoutError: ``root`` or an expected folder/file is missing (message says what and how to fix).
            DatasetFormatError: an annotation file is unreadable as a whole (e.g. wrong label id base), or any
                per-line problem when ``strict``.
        """
        root = Path(root).expanduser()
        if not root.is_dir():
            raise DatasetLayoutError(f"{self.title}: dataset root {str(root)!r} is not a directory. "
                                     f"Pass the folder of the official release (see docs/datasets.md).")
        info = self.info(root)
        if split not in info.splits:
            raise ValueError(f"{self.name}: unknown split {split!r}; available: {list(info.splits)}")
        if info.folds and fold is None:
            raise ValueError(f"{self.name}: choose a fold with --fold (one of {list(info.folds)})")
        if fold is not None and fold not in info.folds:
            raise ValueError(f"{self.name}: fold {fold} does not exist; available: {list(info.folds) or 'none'}")
        result = LoadResult(info, split, fold, report=SkipReport(strict=strict))
        self._check_media = check_media
        seen: set[str] = set()
        for s in self._load(root, split, fold, result.report):
            if s.id in seen:  # two lines for one sample would double-count it in every metric
                result.report.skip("duplicate id", f"{s.source}:{s.line}", f"{s.id!r} is listed twice")
                continue
            seen.add(s.id)
            result.samples.append(s)
        logger.info("%s %s%s: %d samples, %d skipped, %d excluded", self.name, split,
                    f" fold {fold}" if fold else "", len(result.samples), result.report.n_skipped,
                    result.report.n_excluded)
        return result

    def _load(self, root: Path, split: str, fold: int | None, report: SkipReport) -> Iterator[Sample]:
        raise NotImplementedError

    def media_exists(self, path: Path, is_dir: bool = False) -> bool:
        """True when media listed in an annotation file is on disk (always True with check_media=False)."""
        if not getattr(self, "_check_media", True):
            return True
        if is_dir:  # an empty frame folder is as unusable as a missing one
            return path.is_dir() and any(path.iterdir())
        return path.is_file()


BENCHMARKS: Registry[type[Benchmark]] = Registry("benchmark")


def get_benchmark(name: str, **options: str) -> Benchmark:
    """Instantiate the adapter registered as ``name`` (raises KeyError listing the available names)."""
    return BENCHMARKS.get(name)(**options)
