"""FER2013 (7 classes, 48x48 grey faces): the Kaggle image-folder layout or the original ``fer2013.csv``.

Layouts, detected under ROOT (DATASETS.md, ../shared/data/fer2013/README.md):

* image folders: ``train/<class>/Training_<id>.jpg`` and ``test/<class>/{PublicTest,PrivateTest}_<id>.jpg``;
  splits are named by the file-name prefix, so a ``test/`` folder holding only PublicTest files has an empty
  ``privatetest`` split. ROOT may also be the folder that contains ``fer2013/`` or a ``*.tar.gz`` of it: the
  archive is unpacked once into the cache (``EMOLLAMA_CACHE``, default ~/.cache/emollama/datasets).
* ``fer2013.csv`` (``emotion,pixels,Usage``): the pixel strings are written once as PNGs into the cache.

Splits: ``train``, ``publictest`` (the validation set), ``privatetest`` (the split the field reports) and
``test`` (both test splits).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tarfile
from collections.abc import Iterator
from pathlib import Path

from emollama.data.benchmarks import report as R
from emollama.data.benchmarks._io import parse_int, read_csv, require
from emollama.data.benchmarks.base import BENCHMARKS, Benchmark, Sample

log = logging.getLogger(__name__)

# official class order (fer2013.csv ``emotion`` ids 0-6) and the image-folder names of the same classes
CLASSES = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
CANONICAL = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")
FOLDER_NAMES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
_PREFIX = {"train": ("Training",), "publictest": ("PublicTest",), "privatetest": ("PrivateTest",),
           "test": ("PublicTest", "PrivateTest")}
_USAGE = {"Training": "train", "PublicTest": "publictest", "PrivateTest": "privatetest"}
NAME_UNKNOWN = "file name without its folder's split prefix"
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
_FIX = ("pass the folder that holds train/ and test/ (the Kaggle image-folder release), a folder with fer2013.csv, "
        "or the folder with the fer2013 .tar.gz")


def cache_dir() -> Path:
    return Path(os.environ.get("EMOLLAMA_CACHE", Path.home() / ".cache" / "emollama")) / "datasets"


def _unpack(archive: Path) -> Path:
    """Unpack ``archive`` once (keyed by name + size) into the cache; returns the folder holding train/ test/."""
    key = hashlib.sha256(f"{archive.name}:{archive.stat().st_size}".encode()).hexdigest()[:12]
    dest = cache_dir() / f"fer2013-{key}"
    done = dest / ".complete"
    if not done.is_file():
        import shutil

        log.info("unpacking %s into %s (once)", archive, dest)
        tmp = dest.with_name(dest.name + f".tmp{os.getpid()}")
        tmp.mkdir(parents=True, exist_ok=True)
        try:
            with tarfile.open(archive) as tf:
                tf.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError, EOFError) as err:  # EOFError: a cut .gz (an unfinished download)
            shutil.rmtree(tmp, ignore_errors=True)  # a half-extracted copy is never reused: the next call starts over
            raise R.DatasetLayoutError(f"FER2013: {archive} is not a readable .tar.gz ({err}). Fix: {_FIX}") from err
        if dest.exists():  # another process finished first
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.rename(dest)
        done.touch()
    hits = [p.parent for p in dest.rglob("train") if p.is_dir() and (p.parent / "test").is_dir()]
    if not hits:
        raise R.DatasetLayoutError(f"FER2013: {archive} holds no train/ and test/ folders. Fix: {_FIX}")
    return hits[0]


def resolve_root(root: Path) -> Path:
    """The folder with train/ + test/, or with fer2013.csv, for any accepted form of ROOT."""
    root = Path(root)
    if (root / "train").is_dir() or (root / "fer2013.csv").is_file():
        return root
    if (root / "fer2013" / "train").is_dir():
        return root / "fer2013"
    if root.is_file() and root.name == "fer2013.csv":
        return root.parent
    archives = sorted(root.glob("*.tar.gz")) if root.is_dir() else \
        ([root] if root.is_file() and root.name.endswith((".tar.gz", ".tgz")) else [])
    if archives:
        return _unpack(archives[0])
    require(root / "train", title="FER2013", what="the train/ image folder (or fer2013.csv)", fix=_FIX, is_dir=True)
    return root


@BENCHMARKS.register("fer2013")
class FER2013(Benchmark):
    """FER2013 from the image-folder release or the original CSV."""

    name = "fer2013"
    title = "FER2013"
    classes = CLASSES
    canonical = CANONICAL
    modality = "image"

    def media_root(self, root: str | Path) -> Path:
        """The unpacked folder with train/ and test/ (the archive is unpacked once into the cache)."""
        return resolve_root(Path(root).expanduser())
    label_format = "class folder names (angry ... surprise) or emotion ids 0-6 in fer2013.csv"
    splits = ("train", "publictest", "privatetest", "test")
    test_split = "test"

    def _load(self, root: Path, split: str, fold: int | None, report: R.SkipReport) -> Iterator[Sample]:
        base = resolve_root(root)
        if (base / "train").is_dir():
            yield from self._folders(base, split, report)
        else:
            yield from self._csv(base, split, report)

    def _folders(self, base: Path, split: str, report: R.SkipReport) -> Iterator[Sample]:
        top = base / ("train" if split == "train" else "test")
        require(top, title=self.title, what=f"the {split} images", fix=_FIX, is_dir=True)
        unknown = sorted(p.name for p in top.iterdir() if p.is_dir() and p.name.lower() not in FOLDER_NAMES)
        for name in unknown:
            report.skip(R.UNKNOWN_LABEL, str(top / name), f"class folder {name!r} is not one of {list(FOLDER_NAMES)}")
        belongs = ("Training_",) if top.name == "train" else ("PublicTest_", "PrivateTest_")
        n = 0
        for idx, folder in enumerate(FOLDER_NAMES):
            d = top / folder
            if not d.is_dir():
                continue
            for f in sorted(d.iterdir()):
                if not f.is_file() or f.suffix.lower() not in _IMAGE_SUFFIXES:
                    continue  # Thumbs.db, a README: not samples, never an error even under strict
                if not f.name.startswith(tuple(p + "_" for p in _PREFIX[split])):
                    if not f.name.startswith(belongs):  # test/ also holds the other test split: that is no skip
                        report.skip(NAME_UNKNOWN, str(f), f"{top.name}/ holds {' or '.join(belongs)}* images, so "
                                    "this one's split is unknown; rename it or move it to the right folder")
                    continue
                n += 1
                # keyed by class folder and name: the Kaggle folder release reuses two names across folders
                yield Sample(f"{folder}/{f.stem}", f, f.relative_to(base).as_posix(), False, idx, CANONICAL[idx], split,
                             source=str(d), raw_label=folder)
        report.file_summary(str(top), f"{n} {split} images in {len(FOLDER_NAMES)} class folders")

    def _csv(self, base: Path, split: str, report: R.SkipReport) -> Iterator[Sample]:
        path = base / "fer2013.csv"
        out = _png_dir(path)
        n = 0
        for line, row in read_csv(path, ("emotion", "pixels", "Usage"), title=self.title):
            where = f"{path}:{line}"
            if "__malformed__" in row:
                report.skip(R.MALFORMED, where, row["__malformed__"])
                continue
            usage = _USAGE.get(row["Usage"])
            if usage is None:
                report.skip(R.MALFORMED, where, f"Usage {row['Usage']!r} is not one of {list(_USAGE)}")
                continue
            if usage not in ("publictest", "privatetest") if split == "test" else usage != split:
                continue
            idx = parse_int(row["emotion"])
            if idx is None or not 0 <= idx < len(CLASSES):
                report.skip(R.UNKNOWN_LABEL, where, f"emotion {row['emotion']!r} is not an id 0-6 {list(CLASSES)}")
                continue
            media = out / f"{row['Usage']}_{line}.png"
            if not media.is_file() and not _write_png(row["pixels"], media):
                report.skip(R.MALFORMED, where, "pixels must be 2304 (48x48) integers 0-255 separated by spaces")
                continue
            n += 1
            yield Sample(media.stem, media, f"fer2013.csv:{line}", False, idx, CANONICAL[idx], split,
                         source=str(path), line=line, raw_label=row["emotion"])
        report.file_summary(str(path), f"{n} {split} rows")


def _png_dir(csv_path: Path) -> Path:
    st = csv_path.stat()
    key = hashlib.sha256(f"{csv_path.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:12]
    return cache_dir() / f"fer2013-csv-{key}"


def _write_png(pixels: str, dest: Path) -> bool:
    """Write one 48x48 grey PNG atomically; False when ``pixels`` is not 2304 values in 0-255."""
    import numpy as np
    from PIL import Image

    try:
        arr = np.array([int(v) for v in pixels.split()], dtype=np.int64)
    except ValueError:
        return False
    if arr.size != 48 * 48 or arr.min(initial=0) < 0 or arr.max(initial=0) > 255:
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(f".tmp{os.getpid()}.png")
    Image.fromarray(arr.reshape(48, 48).astype(np.uint8), "L").save(tmp)
    tmp.replace(dest)
    return True
