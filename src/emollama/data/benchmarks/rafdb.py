"""RAF-DB basic (7 classes, 1-based ids) with the manual gender/race/age annotations as ground-truth AGR.

Reads ``EmoLabel/list_patition_label.txt`` (``<name> <id>`` per line; the split is the name prefix) and never
touches the compound subset.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from emollama.data.benchmarks import report as R
from emollama.data.benchmarks._io import check_id_range, parse_int, read_lines, require
from emollama.data.benchmarks.base import BENCHMARKS, Benchmark, Sample
from emollama.faces.contract import AGE_GROUPS, AGRAttributes

LABEL_FILE = "EmoLabel/list_patition_label.txt"  # sic: the official spelling
_NAME = re.compile(r"^(train|test)_(\d+)\.jpg$")
_GENDER = {0: "male", 1: "female"}  # 2 = unsure -> unknown
_RACE = {0: "Caucasian", 1: "African-American", 2: "Asian"}
_FIX = "pass the RAF-DB 'basic/' folder (it holds EmoLabel/ and Image/) as ROOT"


def read_manual_attributes(path: Path) -> AGRAttributes:
    """Parse ``<name>_manu_attri.txt``: lines 1-5 landmarks, 6 gender, 7 race, 8 age group (DATASETS.md §1)."""
    lines = [t for _, t in read_lines(path)]
    if len(lines) < 8:
        raise ValueError(f"{len(lines)} non-blank lines, expected 8 (5 landmarks, gender, race, age)")
    try:
        gender, race, age = (int(lines[i].split()[0]) for i in (5, 6, 7))
    except (ValueError, IndexError) as err:
        raise ValueError(f"lines 6-8 must be integers (gender, race, age): {err}") from None
    if gender not in (0, 1, 2) or race not in _RACE or not 0 <= age < len(AGE_GROUPS):
        raise ValueError(f"out-of-range codes gender={gender} race={race} age={age}")
    return AGRAttributes(age_group=AGE_GROUPS[age], gender=_GENDER.get(gender), race=_RACE[race])


@BENCHMARKS.register("rafdb")
class RAFDB(Benchmark):
    """RAF-DB basic: 12,271 train / 3,068 test aligned (default) or original images."""

    name = "rafdb"
    title = "RAF-DB"
    classes = ("Surprise", "Fear", "Disgust", "Happiness", "Sadness", "Anger", "Neutral")
    canonical = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")
    modality = "image"
    label_format = "ids 1-7 (1-based)"
    splits = ("train", "test")
    options = {
        "image": ("aligned", "aligned (100x100, Image/aligned/<name>_aligned.jpg) or original (Image/original/)"),
        "attributes": ("manual", "manual: read Annotation/manual/*_manu_attri.txt as AGR; none: skip"),
    }

    def _media(self, root: Path, name: str) -> Path:
        if self.opts["image"] == "original":
            return root / "Image" / "original" / name
        if self.opts["image"] != "aligned":
            raise ValueError(f"rafdb: option image must be 'aligned' or 'original', got {self.opts['image']!r}")
        return root / "Image" / "aligned" / name.replace(".jpg", "_aligned.jpg")

    def _load(self, root: Path, split: str, fold: int | None, report: R.SkipReport) -> Iterator[Sample]:
        path = require(root / LABEL_FILE, title=self.title, what="the label list", fix=_FIX)
        media_dir = self._media(root, "x.jpg").parent
        require(media_dir, title=self.title, what=f"the {self.opts['image']} images", is_dir=True,
                fix=f"{_FIX}; or choose the other image set with --opt image=original|aligned")
        rows: list[tuple[int, str, str, int]] = []
        for lineno, text in read_lines(path):
            where = f"{path}:{lineno}"
            parts = text.split()
            m = _NAME.match(parts[0]) if len(parts) == 2 else None
            label_id = parse_int(parts[1]) if len(parts) == 2 else None
            if m is None or label_id is None:
                report.skip(R.MALFORMED, where, f"expected '<train|test>_<digits>.jpg <id>', got {text!r}")
                continue
            rows.append((lineno, parts[0], m.group(1), label_id))
        check_id_range(path, [r[3] for r in rows], 1, 7, title=self.title, report=report)
        manual = root / "Annotation" / "manual"
        want_agr = self.opts["attributes"] == "manual"
        if want_agr and not manual.is_dir():
            report.warn("no manual attributes", str(manual), "folder missing; samples get no ground-truth AGR")
            want_agr = False
        for lineno, name, name_split, label_id in rows:
            if name_split != split:
                continue
            where = f"{path}:{lineno}"
            if not 1 <= label_id <= 7:
                report.skip(R.UNKNOWN_LABEL, where, f"label id {label_id} for {name}; RAF-DB basic ids are 1..7")
                continue
            media = self._media(root, name)
            if not self.media_exists(media):
                report.skip(R.MISSING_MEDIA, where, f"{name} is listed but {str(media)!r} does not exist")
                continue
            stem = name[:-4]
            agr = self._agr(manual / f"{stem}_manu_attri.txt", report) if want_agr else None
            yield Sample(stem, media, media.relative_to(root).as_posix(), False, label_id - 1,
                         self.canonical[label_id - 1], split, None, agr, str(path), lineno, str(label_id))

    @staticmethod
    def _agr(path: Path, report: R.SkipReport) -> AGRAttributes | None:
        if not path.is_file():
            report.warn("missing attribute file", str(path), "no ground-truth AGR for this image")
            return None
        try:
            return read_manual_attributes(path)
        except ValueError as err:
            report.warn("malformed attribute file", str(path), str(err))
            return None
