"""DFEW (video, 7 classes, 1-based ids, 5 folds): the single-labelled clips of ``EmoLabel_DataSplit``.

Media default to the official face-cropped frame folders ``Clip/clip_224x224/<00001>/`` (DATASETS.md §0.2.5: use
the official crops). ``video_name`` is an integer zero-padded to 5 digits for folder names.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from emollama.data.benchmarks import report as R
from emollama.data.benchmarks._io import check_id_range, parse_int, read_csv, require
from emollama.data.benchmarks.base import BENCHMARKS, Benchmark, Sample
from emollama.media.kinds import DATASET_VIDEO_EXTS

_FIX = ("pass the DFEW folder holding EmoLabel_DataSplit/ and Clip/ as ROOT; the official CSVs are "
        "'EmoLabel_DataSplit/train(single-labeled)/set_<k>.csv' and '.../test(single-labeled)/set_<k>.csv' "
        "(third-party copies that renamed them, e.g. train_set_1.csv, or made ids 0-based are not official)")


@BENCHMARKS.register("dfew")
class DFEW(Benchmark):
    """DFEW: 11,697 single-labelled clips, folds 1-5 (~9.36k train / ~2.34k test each)."""

    name = "dfew"
    title = "DFEW"
    classes = ("Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear")
    canonical = ("happiness", "sadness", "neutral", "anger", "surprise", "disgust", "fear")
    modality = "video"
    label_format = "ids 1-7 (1-based)"
    splits = ("train", "test")
    folds = (1, 2, 3, 4, 5)
    options = {
        "media": ("clip_224x224", "clip_224x224 (official face crops), clip_224x224_16f (16 frames) or original "
                                  "(raw clip files in Clip/original/)"),
    }

    def _media_for(self, root: Path) -> tuple[Path, dict[str, str] | None]:
        kind = self.opts["media"]
        if kind not in ("clip_224x224", "clip_224x224_16f", "original"):
            raise ValueError(f"dfew: option media must be clip_224x224, clip_224x224_16f or original, got {kind!r}")
        folder = require(root / "Clip" / kind, title=self.title, what=f"the {kind} media", is_dir=True,
                         fix=f"{_FIX}; or choose another media set with --opt media=...")
        if kind != "original":
            return folder, None
        # raw clips: one listing instead of a glob per sample
        return folder, {p.stem: p.name for p in folder.iterdir() if p.suffix.lower() in DATASET_VIDEO_EXTS}

    def _load(self, root: Path, split: str, fold: int | None, report: R.SkipReport) -> Iterator[Sample]:
        labels = require(root / "EmoLabel_DataSplit", title=self.title, what="the label folder", is_dir=True, fix=_FIX)
        path = require(labels / f"{split}(single-labeled)" / f"set_{fold}.csv", title=self.title,
                       what=f"the fold-{fold} {split} list", fix=_FIX)
        folder, clips = self._media_for(root)
        rows: list[tuple[int, int, int]] = []
        for lineno, row in read_csv(path, ("video_name", "label"), title=self.title):
            vid, label = parse_int(row.get("video_name", "")), parse_int(row.get("label", ""))
            if "__malformed__" in row or vid is None or label is None:
                report.skip(R.MALFORMED, f"{path}:{lineno}", f"expected '<integer video_name>,<label 1-7>', got {row}")
                continue
            rows.append((lineno, vid, label))
        check_id_range(path, [r[2] for r in rows], 1, 7, title=self.title, report=report)
        for lineno, vid, label in rows:
            where = f"{path}:{lineno}"
            if not 1 <= label <= 7:
                report.skip(R.UNKNOWN_LABEL, where, f"label {label} for clip {vid}; DFEW ids are 1..7")
                continue
            cid = f"{vid:05d}"
            if clips is None:
                media, ok = folder / cid, self.media_exists(folder / cid, is_dir=True)
            else:
                media = folder / clips.get(cid, cid + ".mp4")
                ok = cid in clips or not self._check_media
            if not ok:
                report.skip(R.MISSING_MEDIA, where, f"clip {cid} is listed but {str(media)!r} is missing or empty")
                continue
            yield Sample(cid, media, media.relative_to(root).as_posix(), True, label - 1, self.canonical[label - 1],
                         split, fold, None, str(path), lineno, str(label))
