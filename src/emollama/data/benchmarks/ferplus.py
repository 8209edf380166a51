"""FERPlus (8 classes) from the 10 crowd votes per image, in Microsoft's "majority" mode.

Rule (the FERPlus reference code's ``majority`` mode, reproduced exactly): votes of 1 are treated as outliers and
zeroed; the label is the column with MORE than half of the remaining votes, counted over all 10 columns. If that
column is ``unknown`` or ``NF``, or no column has more than half (which includes every tie), the image is excluded
and counted. Reads ``FER2013{Train,Valid,Test}/label.csv`` (no header: name, face box, 10 votes) when present,
else ``fer2013new.csv`` (``Usage``, ``Image name``, 10 votes) with images in the same split folders.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from emollama.data.benchmarks import report as R
from emollama.data.benchmarks._io import require
from emollama.data.benchmarks.base import BENCHMARKS, Benchmark, Sample

VOTE_COLUMNS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF")
_FOLDERS = {"train": "FER2013Train", "valid": "FER2013Valid", "test": "FER2013Test"}
_USAGE = {"train": "Training", "valid": "PublicTest", "test": "PrivateTest"}
_FIX = ("pass the FERPlus data folder as ROOT: it must hold FER2013Train/, FER2013Valid/, FER2013Test/ (written by "
        "FERPlus' generate_training_data.py) with label.csv in each, or fer2013new.csv next to them")


def majority_vote(votes: list[int]) -> tuple[int | None, str]:
    """(class index 0-7, "") for a clear majority, else (None, reason). ``votes`` has the 10 FERPlus columns."""
    kept = [v if v > 1 else 0 for v in votes]  # single votes are outliers in the reference code
    total = sum(kept)
    if total == 0:
        return None, "no class has more than one vote"
    top = max(kept)
    if top * 2 <= total:
        return None, "no clear majority (top class has at most half the votes; includes ties)"
    idx = kept.index(top)
    if idx >= 8:
        return None, f"majority is {VOTE_COLUMNS[idx]}"
    return idx, ""


@BENCHMARKS.register("ferplus")
class FERPlus(Benchmark):
    """FERPlus majority mode on FER2013 images (48x48 grey PNGs)."""

    name = "ferplus"
    title = "FERPlus"
    classes = VOTE_COLUMNS[:8]
    canonical = VOTE_COLUMNS[:8]
    modality = "image"
    label_format = "10 vote columns, majority mode"
    splits = ("train", "valid", "test")

    def _rows(self, root: Path, split: str) -> tuple[Path, Iterator[tuple[int, list[str]]]]:
        """(annotation file, (line, [image name, 10 votes...])) from label.csv or fer2013new.csv."""
        label_csv = root / _FOLDERS[split] / "label.csv"
        if label_csv.is_file():
            return label_csv, ((n, [r[0], *r[2:]]) for n, r in _csv_rows(label_csv))
        new_csv = require(root / "fer2013new.csv", title=self.title, what=f"{label_csv} or the vote file", fix=_FIX)

        def gen() -> Iterator[tuple[int, list[str]]]:
            for n, r in _csv_rows(new_csv):
                if n == 1 and r and r[0].strip() == "Usage":
                    continue  # header
                if r and r[0].strip() == _USAGE[split]:
                    yield n, r[1:]
                elif r and r[0].strip() not in _USAGE.values():
                    yield n, []  # unknown Usage value: reported as malformed

        return new_csv, gen()

    def _load(self, root: Path, split: str, fold: int | None, report: R.SkipReport) -> Iterator[Sample]:
        folder = require(root / _FOLDERS[split], title=self.title, what=f"the {split} images", is_dir=True, fix=_FIX)
        path, rows = self._rows(root, split)
        n_rows = 0
        for lineno, row in rows:
            where = f"{path}:{lineno}"
            n_rows += 1
            try:
                votes = [int(float(v)) for v in row[1:]]
            except ValueError:
                votes = []
            if len(row) != 11 or len(votes) != 10:
                report.skip(R.MALFORMED, where, f"expected image name + 10 vote counts {list(VOTE_COLUMNS)}, got {row}")
                continue
            name = row[0].strip()
            if not name:  # FERPlus leaves the name empty for images it removed
                report.exclude("no image name (removed by FERPlus)")
                continue
            idx, why = majority_vote(votes)
            if idx is None:
                report.exclude(why)
                continue
            media = folder / name
            if not self.media_exists(media):
                report.skip(R.MISSING_MEDIA, where, f"{name} is listed but {str(media)!r} does not exist")
                continue
            yield Sample(name.rsplit(".", 1)[0], media, media.relative_to(root).as_posix(), False, idx,
                         self.canonical[idx], split, None, None, str(path), lineno, ",".join(map(str, votes)))
        report.file_summary(str(path), f"{n_rows} {split} rows, majority rule: >50% of votes after dropping 1-votes")


def _csv_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        for row in reader:
            if row and any(c.strip() for c in row):
                yield reader.line_num, row
