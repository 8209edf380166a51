"""AffectNet full release, 7 classes (codes 0-6) and 8 classes (codes 0-7); 0-based ``expression`` codes.

Reads ``Manually_Annotated_file_lists/{training,validation}.csv`` as released. The public validation set is the
test set (500 per class). Codes outside the benchmark (Contempt for -7, None, Uncertain, No-Face) are exclusions.
The Kaggle 8-class subset is a different benchmark: see ``affectnet_kaggle.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from emollama.data.benchmarks import report as R
from emollama.data.benchmarks._io import check_id_range, parse_int, read_csv, require
from emollama.data.benchmarks.base import BENCHMARKS, Benchmark, Sample

CODES = ("Neutral", "Happiness", "Sadness", "Surprise", "Fear", "Disgust", "Anger", "Contempt", "None", "Uncertain",
         "No-Face")
_FILES = {"train": "training.csv", "val": "validation.csv"}
_COLUMNS = ("subDirectory_filePath", "expression")
_FIX = ("pass the AffectNet folder that holds Manually_Annotated_file_lists/ and Manually_Annotated_Images/ as ROOT "
        "(the Kaggle 8-class subset is the separate 'affectnet_kaggle8' adapter)")


class _AffectNet(Benchmark):
    title = "AffectNet"
    modality = "image"
    label_format = "expression codes 0-10 (0-based; 8-10 None/Uncertain/No-Face)"
    splits = ("train", "val")
    test_split = "val"  # the official test set is unreleased; validation is the de-facto test set

    def _load(self, root: Path, split: str, fold: int | None, report: R.SkipReport) -> Iterator[Sample]:
        lists = require(root / "Manually_Annotated_file_lists", title=self.title, what="the file lists", is_dir=True,
                        fix=_FIX)
        path = require(lists / _FILES[split], title=self.title, what=f"the {split} list", fix=_FIX)
        images = require(root / "Manually_Annotated_Images", title=self.title, what="the images", is_dir=True,
                         fix=_FIX)
        rows: list[tuple[int, str, int]] = []
        for lineno, row in read_csv(path, _COLUMNS, title=self.title):
            where = f"{path}:{lineno}"
            code = parse_int(row.get("expression", ""))
            rel = row.get("subDirectory_filePath", "")
            if "__malformed__" in row or code is None or not rel:
                detail = row.get("__malformed__") or f"expression {row.get('expression')!r} / path {rel!r}"
                report.skip(R.MALFORMED, where, f"cannot read row: {detail}")
                continue
            rows.append((lineno, rel, code))
        check_id_range(path, [r[2] for r in rows], 0, len(CODES) - 1, title=self.title, report=report,
                       hint=" (Kaggle-subset CSVs are 1-based: use the 'affectnet_kaggle8' adapter)")
        n = len(self.classes)
        for lineno, rel, code in rows:
            where = f"{path}:{lineno}"
            if not 0 <= code < len(CODES):
                report.skip(R.UNKNOWN_LABEL, where, f"expression {code}; official codes are 0..{len(CODES) - 1}")
                continue
            if code >= n:  # protocol: the -7 / -8 benchmarks use codes 0..n-1 only
                report.exclude(f"code {code} ({CODES[code]}) not in {self.name}")
                continue
            media = images / rel
            if not self.media_exists(media):
                report.skip(R.MISSING_MEDIA, where, f"{rel} is listed but {str(media)!r} does not exist")
                continue
            yield Sample(rel, media, media.relative_to(root).as_posix(), False, code, self.canonical[code], split,
                         None, None, str(path), lineno, str(code))


@BENCHMARKS.register("affectnet7")
class AffectNet7(_AffectNet):
    """AffectNet-7: codes 0-6, 283,901 train / 3,500 val."""

    name = "affectnet7"
    classes = CODES[:7]
    canonical = ("neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger")


@BENCHMARKS.register("affectnet8")
class AffectNet8(_AffectNet):
    """AffectNet-8: codes 0-7, 287,651 train / 4,000 val."""

    name = "affectnet8"
    classes = CODES[:8]
    canonical = ("neutral", "happiness", "sadness", "surprise", "fear", "disgust", "anger", "contempt")
