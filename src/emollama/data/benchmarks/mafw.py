"""MAFW (video, 11 classes, lower-case string labels, 5 folds), single-label no-caption protocol.

Reads ``split/single/no_caption/set_<k>/{train,test}.txt`` (``03747.mp4 anger`` per line). Media default to the
official face crops ``data/faces/<id>/`` (raw frames gave 15.6 UAR in sunlicai/MAE-DFER#22). Class order is
MAE-DFER's, which is also FERID's MAFW option list.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from emollama.data.benchmarks import report as R
from emollama.data.benchmarks._io import read_lines, require
from emollama.data.benchmarks.base import BENCHMARKS, Benchmark, Sample

_FIX = "pass the MAFW folder holding split/ and data/ as ROOT"
_MEDIA = {"faces": "data/faces", "frames": "data/frames", "clips": "data/clips"}


@BENCHMARKS.register("mafw")
class MAFW(Benchmark):
    """MAFW: 9,172 single-labelled clips, folds 1-5 (~7.3k train / ~1.8k test each)."""

    name = "mafw"
    title = "MAFW"
    classes = ("anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise", "contempt", "anxiety",
               "helplessness", "disappointment")
    canonical = classes
    modality = "video"
    label_format = "lower-case strings"
    splits = ("train", "test")
    folds = (1, 2, 3, 4, 5)
    options = {"media": ("faces", "faces (official crops, data/faces/<id>/), frames (data/frames/<id>/) or clips "
                                  "(data/clips/<file>)")}

    def _load(self, root: Path, split: str, fold: int | None, report: R.SkipReport) -> Iterator[Sample]:
        path = require(root / "split" / "single" / "no_caption" / f"set_{fold}" / f"{split}.txt", title=self.title,
                       what=f"the fold-{fold} {split} list", fix=_FIX)
        kind = self.opts["media"]
        if kind not in _MEDIA:
            raise ValueError(f"mafw: option media must be one of {list(_MEDIA)}, got {kind!r}")
        media_dir = require(root / _MEDIA[kind], title=self.title, what=f"the {kind} media", is_dir=True,
                            fix=f"{_FIX}; or choose another media set with --opt media={'|'.join(_MEDIA)}")
        index = {c: i for i, c in enumerate(self.classes)}
        n_rows = 0
        for lineno, text in read_lines(path):
            n_rows += 1
            where = f"{path}:{lineno}"
            parts = text.split()
            if len(parts) != 2:
                report.skip(R.MALFORMED, where, f"expected '<file> <label>', got {text!r}")
                continue
            name, label = parts
            if label.isdigit():
                raise R.DatasetFormatError(f"{self.title}: {where}: numeric label {label!r}; official files use "
                                           f"strings {list(self.classes)}. Use the owners' original split files.")
            idx = index.get(label.lower())
            if idx is None:
                hint = " (compound/multi-label lists are not the single-label protocol)" if "," in label else ""
                report.skip(R.UNKNOWN_LABEL, where, f"label {label!r} not in {list(self.classes)}{hint}")
                continue
            stem = name.rsplit(".", 1)[0]
            media = media_dir / (name if kind == "clips" else stem)
            if not self.media_exists(media, is_dir=kind != "clips"):
                report.skip(R.MISSING_MEDIA, where, f"{name} is listed but {str(media)!r} is missing or empty")
                continue
            yield Sample(stem, media, media.relative_to(root).as_posix(), True, idx, self.canonical[idx], split,
                         fold, None, str(path), lineno, label)
        report.file_summary(str(path), f"{n_rows} rows, string labels")
