"""Generic adapters for data that is not one of the six benchmarks: ``csv`` (path,label) and ``folder``.

Class words may be any synonym of a canonical class ("happy", "Angry", ...). The class order is ``classes.txt``
in ROOT when present (one name per line; numeric CSV labels are 0-based indices into it), else canonical order.
Images and clips may be mixed: a sample is a video when it is a video file or a directory of frames.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from emollama.constants import CANONICAL_EMOTIONS
from emollama.data.benchmarks import report as R
from emollama.data.benchmarks._io import read_lines, require, to_canonical
from emollama.data.benchmarks.base import BENCHMARKS, Benchmark, DatasetInfo, Sample
from emollama.media.kinds import DATASET_IMAGE_EXTS, DATASET_VIDEO_EXTS

KNOWN_SPLITS = ("train", "val", "valid", "test")


def _classes_txt(root: Path) -> list[str] | None:
    path = root / "classes.txt"
    if not path.is_file():
        return None
    names = [t for _, t in read_lines(path)]
    bad = [n for n in names if to_canonical(n) is None]
    if bad:
        raise R.DatasetFormatError(f"{path}: class names {bad} are not canonical classes or synonyms of "
                                   f"{list(CANONICAL_EMOTIONS)}")
    return names


def _order(words: set[str]) -> list[str]:
    return sorted(words, key=lambda w: (CANONICAL_EMOTIONS.index(to_canonical(w) or "anger"), w))


class _Generic(Benchmark):
    modality = "mixed"
    label_format = "class words or synonyms (or indices into classes.txt)"
    classes = ()
    canonical = ()
    splits = ()

    def _found(self, root: Path) -> tuple[list[str], set[str]]:
        raise NotImplementedError

    def info(self, root: str | Path | None = None) -> DatasetInfo:
        if root is None:
            return DatasetInfo(self.name, (), (), self.modality)
        root = Path(root)
        splits, words = self._found(root)
        names = _classes_txt(root) or _order({w for w in words if to_canonical(w)})
        canonical = tuple(to_canonical(n) or "" for n in names)
        test = "test" if "test" in splits else splits[-1] if splits else "test"
        return DatasetInfo(self.name, tuple(names), canonical, self.modality, tuple(splits), (), test)

    def _sample(self, root: Path, media: Path, label: str, info: DatasetInfo, split: str, where: tuple[str, int],
                report: R.SkipReport) -> Sample | None:
        canon = to_canonical(label)
        if label.isdigit() and (root / "classes.txt").is_file():
            idx = int(label)
            canon = info.canonical[idx] if idx < len(info.canonical) else None
        else:
            idx = info.canonical.index(canon) if canon in info.canonical else -1
        if canon is None or idx < 0:
            report.skip(R.UNKNOWN_LABEL, f"{where[0]}:{where[1]}", f"label {label!r} is not a known class or synonym")
            return None
        is_video = media.is_dir() or media.suffix.lower() in DATASET_VIDEO_EXTS
        if not self.media_exists(media, is_dir=media.is_dir()):
            report.skip(R.MISSING_MEDIA, f"{where[0]}:{where[1]}", f"{str(media)!r} is listed but does not exist")
            return None
        try:
            rel = media.relative_to(root).as_posix()
        except ValueError:  # an absolute path in the CSV that lives outside ROOT
            rel = media.as_posix()
        return Sample(rel, media, rel, is_video, idx, canon, split, None, None, where[0], where[1], label)


@BENCHMARKS.register("csv")
class CSVBenchmark(_Generic):
    """ROOT/<split>.csv with rows ``path,label`` (optional header); paths relative to ROOT."""

    name = "csv"
    title = "csv"

    def _rows(self, path: Path) -> Iterator[tuple[int, list[str]]]:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            for row in reader:
                if not row or not any(c.strip() for c in row):
                    continue
                if reader.line_num == 1 and [c.strip().lower() for c in row[:2]] == ["path", "label"]:
                    continue
                yield reader.line_num, [c.strip() for c in row]

    def _found(self, root: Path) -> tuple[list[str], set[str]]:
        splits = [s for s in KNOWN_SPLITS if (root / f"{s}.csv").is_file()]
        if not splits:
            require(root / "train.csv", title=self.title, what="a split CSV (train.csv / val.csv / test.csv)",
                    fix="write one CSV per split with rows 'path,label' (paths relative to ROOT)")
        words = {r[1] for s in splits for _, r in self._rows(root / f"{s}.csv") if len(r) == 2}
        return splits, words

    def _load(self, root: Path, split: str, fold: int | None, report: R.SkipReport) -> Iterator[Sample]:
        info = self.info(root)
        path = root / f"{split}.csv"
        for lineno, row in self._rows(path):
            if len(row) != 2 or not row[0]:
                report.skip(R.MALFORMED, f"{path}:{lineno}", f"expected 'path,label', got {row}")
                continue
            s = self._sample(root, root / row[0], row[1], info, split, (str(path), lineno), report)
            if s is not None:
                yield s


@BENCHMARKS.register("folder")
class FolderBenchmark(_Generic):
    """ROOT/<split>/<class>/<media>, or ROOT/<class>/<media> as a single split 'all'."""

    name = "folder"
    title = "folder"

    def _split_dirs(self, root: Path) -> dict[str, Path]:
        dirs = {s: root / s for s in KNOWN_SPLITS if (root / s).is_dir()}
        if dirs:
            return dirs
        if any(to_canonical(d.name) for d in root.iterdir() if d.is_dir()):
            return {"all": root}
        require(root / "train", title=self.title, what="split folders (train/ val/ test/) or class", is_dir=True,
                fix="lay out ROOT/<split>/<class>/<image or clip> or ROOT/<class>/<image or clip>")
        return {}

    def _found(self, root: Path) -> tuple[list[str], set[str]]:
        dirs = self._split_dirs(root)
        return list(dirs), {c.name for d in dirs.values() for c in d.iterdir() if c.is_dir()}

    def _load(self, root: Path, split: str, fold: int | None, report: R.SkipReport) -> Iterator[Sample]:
        info = self.info(root)
        for class_dir in sorted(p for p in self._split_dirs(root)[split].iterdir() if p.is_dir()):
            for i, media in enumerate(sorted(class_dir.iterdir()), start=1):
                if media.is_file() and media.suffix.lower() not in DATASET_IMAGE_EXTS | DATASET_VIDEO_EXTS:
                    continue  # stray notes, thumbnails db, ...
                s = self._sample(root, media, class_dir.name, info, split, (str(class_dir), i), report)
                if s is not None:
                    yield s
