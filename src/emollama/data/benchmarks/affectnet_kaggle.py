"""The Kaggle 8-class AffectNet subset ("affectnetsample"): a different benchmark from the full AffectNet-8.

CSV columns ``image`` and ``emotion``; ``emotion`` is 1-based in the AffectNet order (1 Neutral ... 8 Contempt).
File names default to ``train-sample-affectnet.csv`` / ``valid-sample-affectnet.csv`` [Interpretation: the names
used by ExpLLM's lists]; override them with options when your copy differs. Image paths are relative to ROOT.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from emollama.data.benchmarks import report as R
from emollama.data.benchmarks._io import check_id_range, parse_int, read_csv, require
from emollama.data.benchmarks.affectnet import AffectNet8
from emollama.data.benchmarks.base import BENCHMARKS, Benchmark, Sample


@BENCHMARKS.register("affectnet_kaggle8")
class AffectNetKaggle8(Benchmark):
    """Kaggle AffectNet subset: 37,553 train / 4,000 valid, 8 classes, 1-based ids."""

    name = "affectnet_kaggle8"
    title = "AffectNet (Kaggle subset)"
    classes = AffectNet8.classes
    canonical = AffectNet8.canonical
    modality = "image"
    label_format = "emotion ids 1-8 (1-based)"
    splits = ("train", "valid")
    test_split = "valid"
    options = {
        "train_csv": ("train-sample-affectnet.csv", "train CSV, relative to ROOT"),
        "valid_csv": ("valid-sample-affectnet.csv", "validation CSV, relative to ROOT"),
    }

    def _load(self, root: Path, split: str, fold: int | None, report: R.SkipReport) -> Iterator[Sample]:
        path = require(root / self.opts[f"{split}_csv"], title=self.title, what=f"the {split} CSV",
                       fix="pass the folder holding the Kaggle CSVs as ROOT, or name the file with "
                           f"--opt {split}_csv=NAME.csv")
        rows: list[tuple[int, str, int]] = []
        for lineno, row in read_csv(path, ("image", "emotion"), title=self.title):
            code = parse_int(row.get("emotion", ""))
            if "__malformed__" in row or code is None or not row.get("image"):
                report.skip(R.MALFORMED, f"{path}:{lineno}", f"cannot read row: {row.get('__malformed__') or row}")
                continue
            rows.append((lineno, row["image"], code))
        check_id_range(path, [r[2] for r in rows], 1, 8, title=self.title, report=report,
                       hint=" (full-release CSVs with 0-based 'expression' codes use 'affectnet7'/'affectnet8')")
        for lineno, rel, code in rows:
            where = f"{path}:{lineno}"
            if not 1 <= code <= 8:
                report.skip(R.UNKNOWN_LABEL, where, f"emotion {code}; the Kaggle subset uses 1..8")
                continue
            media = root / rel
            if not self.media_exists(media):
                report.skip(R.MISSING_MEDIA, where, f"{rel} is listed but {str(media)!r} does not exist")
                continue
            yield Sample(rel, media, media.relative_to(root).as_posix(), False, code - 1, self.canonical[code - 1],
                         split, None, None, str(path), lineno, str(code))
