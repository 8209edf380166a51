"""FERV39k (video, 7 classes, string labels, one official train/test split).

Reads ``4_setups/All_scenes/{train,test}_All.csv``: space-separated, no header, ``<Scene>/<Emotion>/<clip> <Label>``.
Media are the face-cropped frame folders ``2_ClipsforFaceCrop/<Scene>/<Emotion>/<clip>/``. The class order is the
official alphabetical listing [Interpretation; MAE-DFER remaps to the DFEW order, S2D uses this one].
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from emollama.data.benchmarks import report as R
from emollama.data.benchmarks._io import read_lines, require
from emollama.data.benchmarks.base import BENCHMARKS, Benchmark, Sample

_FIX = "pass the FERV39k folder holding 4_setups/ and 2_ClipsforFaceCrop/ as ROOT"


@BENCHMARKS.register("ferv39k")
class FERV39k(Benchmark):
    """FERV39k: 31,088 train / 7,847 test clips."""

    name = "ferv39k"
    title = "FERV39k"
    classes = ("Angry", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise")
    canonical = ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise")
    modality = "video"
    label_format = "strings"
    splits = ("train", "test")

    def _load(self, root: Path, split: str, fold: int | None, report: R.SkipReport) -> Iterator[Sample]:
        path = require(root / "4_setups" / "All_scenes" / f"{split}_All.csv", title=self.title,
                       what=f"the {split} list", fix=_FIX)
        frames = require(root / "2_ClipsforFaceCrop", title=self.title, what="the face-cropped frames", is_dir=True,
                         fix=_FIX)
        index = {c.lower(): i for i, c in enumerate(self.classes)}
        n_rows = 0
        for lineno, text in read_lines(path):
            n_rows += 1
            where = f"{path}:{lineno}"
            parts = text.split()
            if len(parts) != 2 or parts[0].count("/") != 2:
                report.skip(R.MALFORMED, where, f"expected '<Scene>/<Emotion>/<clip> <Label>', got {text!r}")
                continue
            rel, label = parts
            if label.isdigit():  # converted copies (S2D, MAE-DFER) use ids; the official file uses strings
                raise R.DatasetFormatError(f"{self.title}: {where}: numeric label {label!r}; official files use "
                                           f"strings {list(self.classes)}. Use the owners' original list.")
            idx = index.get(label.lower())
            if idx is None:
                report.skip(R.UNKNOWN_LABEL, where, f"label {label!r} not in {list(self.classes)}")
                continue
            media = frames / rel
            if not self.media_exists(media, is_dir=True):
                report.skip(R.MISSING_MEDIA, where, f"{rel} is listed but {str(media)!r} is missing or empty")
                continue
            yield Sample(rel, media, media.relative_to(root).as_posix(), True, idx, self.canonical[idx], split,
                         None, None, str(path), lineno, label)
        report.file_summary(str(path), f"{n_rows} rows, string labels")
