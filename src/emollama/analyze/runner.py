"""The batch loop of `emollama analyze`: items -> analyzer -> records -> resumable store.

One bad item never stops the batch: it becomes an error record. Items already in the output are skipped, so a
rerun after an interruption (even kill -9) finishes the job without duplicates.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emollama.analyze.inputs import Item
from emollama.analyze.paths import absolute, clean, output_name, path_text, unreadable
from emollama.analyze.records import (
    add_coverage,
    empty_record,
    error_record,
    face_record,
    flag_capped,
    frame_summary,
    track_record,
)
from emollama.analyze.store import ResultStore
from emollama.faces.detect import DEFAULT_MAX_FACES
from emollama.faces.pipeline import FrameAnalyzer, MediaFaces, analyze_media
from emollama.media.decode import MediaError, load_image
from emollama.media.errors import UNREADABLE_VIDEO_FIX
from emollama.media.kinds import DEFAULT_MAX_PIXELS
from emollama.media.video import Frame, VideoError

if TYPE_CHECKING:
    from emollama.media.video import VideoReader

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnalyzeOptions:
    """Options that change the records (their hash guards resumed output files)."""

    backend: str = "mediapipe"
    video_sampling: str = "fps:2"
    max_pixels: int = DEFAULT_MAX_PIXELS
    landmarks: bool = False
    blendshapes: bool = False
    au_series: bool = False
    max_faces: int = DEFAULT_MAX_FACES
    faces: str = "auto"  # auto | detect | whole-image
    expression: str = "emonet"  # emonet | mini-xception: results of another model never resume into this file

    def digest(self) -> str:
        opts = dataclasses.asdict(self)
        return hashlib.sha1(json.dumps(opts, sort_keys=True).encode()).hexdigest()[:12]


def expression_identity(analyzer: FrameAnalyzer) -> str | None:
    """The analyzer's expression weights as ``"NAME sha256:PREFIX"`` (None for a stand-in without one)."""
    return getattr(analyzer, "expression_identity", None)


def build_face_analyzer(options: AnalyzeOptions) -> FrameAnalyzer:
    """The face analyzer ``options`` describe (backend, max_faces, faces, expression): the CLI's and the API's.

    Models load lazily, on the first frame (or `load()`).
    """
    if options.backend == "synthetic":
        from emollama.analyze.synthetic import SyntheticAnalyzer

        return SyntheticAnalyzer()
    if options.backend != "mediapipe":
        raise ValueError(f"unknown analyzer backend {options.backend!r}: 'mediapipe' or 'synthetic'")
    from emollama.faces.analyzer import Analyzer, AnalyzerConfig
    from emollama.faces.detect import DetectorConfig

    return Analyzer(AnalyzerConfig(detector=DetectorConfig(max_faces=options.max_faces), faces=options.faces,
                                   expression_model=options.expression))


@dataclass
class Summary:
    items: int = 0
    skipped: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    faces: int = 0
    tracks: int = 0
    no_face: int = 0
    labels: Counter = field(default_factory=Counter)
    # one row per face / track / empty item / error: (source, which, age/gender, label + confidence, why)
    rows: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    seconds: float = 0.0


def prefetch(iterable: Iterable, depth: int = 4) -> Iterator:
    """Iterate ``iterable`` in a background thread, ``depth`` items ahead.

    Video decoding (PyAV releases the GIL) then overlaps with face-model inference on the other core; the bounded
    queue keeps memory O(depth) frames. Exceptions from the producer are re-raised in the consumer.
    """
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def put(x) -> bool:
        while not stop.is_set():  # never block forever: the consumer may have gone away
            try:
                q.put(x, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for x in iterable:
                if not put(x):
                    return
            put(done)
        except BaseException as err:  # handed to the consumer, which re-raises it
            put(err)

    thread = threading.Thread(target=produce, name="emollama-decode", daemon=True)
    thread.start()
    try:
        while True:
            x = q.get()
            if x is done:
                return
            if isinstance(x, BaseException):
                raise x
            yield x
    finally:
        stop.set()
        thread.join(timeout=5)


def item_key(path: Path) -> str:
    """Identity of an input: resolved path + size + mtime, so a changed file is analysed again."""
    st = path.stat()
    return f"{path_text(absolute(path))}|{st.st_size}|{st.st_mtime_ns}"


class Runner:
    """Analyse items into a `ResultStore`.

    Args:
        analyzer: a `emollama.faces.pipeline.FrameAnalyzer` (``analyze_image`` / ``analyze_frame``), run through
            `emollama.faces.pipeline.analyze_media`.
        options: `AnalyzeOptions`.
        annotate_dir / crops_dir: optional folders for annotated images / saved face crops.
    """

    def __init__(self, analyzer: FrameAnalyzer, options: AnalyzeOptions, annotate_dir: Path | None = None,
                 crops_dir: Path | None = None) -> None:
        self.analyzer = analyzer
        self.options = options
        self.expression_model = expression_identity(analyzer)
        self.annotate_dir = annotate_dir
        self.crops_dir = crops_dir

    def run(self, items: list[Item], store: ResultStore, progress: bool = False) -> Summary:
        from tqdm import tqdm

        summary = Summary()
        t0 = time.perf_counter()
        for item in tqdm(items, desc="analyze", unit="file", disable=not progress):
            try:
                key = item_key(item.path)
            except OSError as err:  # missing, dangling or looping link: recorded once, like any failed input
                key = f"{path_text(absolute(item.path))}|missing"
                records = [error_record(source=path_text(item.path), media=item.kind, **unreadable(item.path, err))]
            else:
                records = None
            if key in store.done:
                summary.skipped += 1
                continue
            records = clean(records or self.analyze_item(item))  # no file name can make the write fail
            store.write_item(key, records)
            self._tally(summary, path_text(item.path), records)
        summary.seconds = time.perf_counter() - t0
        return summary

    def analyze_item(self, item: Item) -> list[dict[str, Any]]:
        """All records for one item; failures become one error record."""
        src = path_text(item.path)
        try:
            if item.kind == "image":
                return self._image(item.path)
            if item.kind == "video":
                return self._video(item.path)
            return [error_record(source=src, media=None, reason="unsupported file type",
                                 detail=f"extension {item.path.suffix or '(none)'!r}",
                                 fix="pass an image (jpg, png, ...) or a video (mp4, mov, ...)")]
        except MediaError as err:
            return [error_record(source=src, media=item.kind, reason=err.reason, detail=err.detail, fix=err.fix)]
        except VideoError as err:
            return [error_record(source=src, media=item.kind, reason="unreadable video", detail=str(err),
                                 fix=UNREADABLE_VIDEO_FIX)]
        except FileNotFoundError as err:
            if item.path.exists():  # a missing model or asset, not the input: keep its own message
                raise_as = f"{type(err).__name__}: {err}"
                logger.warning("analysis of %s failed: %s", src, raise_as)
                return [error_record(source=src, media=item.kind, reason="analysis failed", detail=raise_as,
                                     fix="reinstall the face stack (python scripts/install_faces.py) or see the "
                                         "detail")]
            # the input is gone since the batch started (a video: even between its probe and decoding)
            return [error_record(source=src, media=item.kind, reason="file not found", fix="check the path")]
        except Exception as err:  # one bad item must never abort the batch; the record keeps the cause
            logger.warning("analysis of %s failed: %s: %s", src, type(err).__name__, err, exc_info=True)
            return [error_record(source=src, media=item.kind, reason="analysis failed",
                                 detail=f"{type(err).__name__}: {err}",
                                 fix="please report this with the file (or run with -vv for the traceback)")]

    def _image(self, path: Path) -> list[dict[str, Any]]:
        frame = Frame(0, 0.0, load_image(path, self.options.max_pixels))
        faces = analyze_media([frame], self.analyzer, video=False)
        results = [t.results[0] for t in faces.tracks]
        if self.annotate_dir is not None:
            from emollama.analyze.annotate import annotate_image

            annotate_image(frame.rgb, results, self.annotate_dir / output_name(path, "_annotated.jpg"))
        if self.crops_dir is not None:
            self._save_crops(path, results)
        return image_records(faces, path_text(path), self.options, self.expression_model)

    def _video(self, path: Path) -> list[dict[str, Any]]:
        from emollama.media.video import VideoReader

        reader = VideoReader(path)
        writer = None
        if self.annotate_dir is not None:
            from emollama.analyze.annotate import VideoAnnotator

            writer = VideoAnnotator(self.annotate_dir / output_name(path, "_annotated.mp4"))

        def on_frame(frame: Frame, faces: Sequence[Any], ids: Sequence[int]) -> None:
            if writer is not None:
                writer.add(frame.rgb, faces, ids)
            if self.crops_dir is not None:
                self._save_crops(path, faces, f"_f{frame.index:06d}")

        try:  # no crops or meshes kept per track point: memory flat in video length
            faces = analyze_media(prefetch(reader.iter_frames(self.options.video_sampling)), self.analyzer,
                                  video=True, summarize=frame_summary, on_frame=on_frame)
        finally:
            if writer is not None:
                writer.close()
        return video_records(faces, path_text(path), self.options, reader, self.expression_model)

    def _save_crops(self, path: Path, faces: Sequence[Any], part: str = "") -> None:
        from PIL import Image

        self.crops_dir.mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(faces):
            if f.crop is not None:  # '<stem><part>_face<i>-<tag>.png': unique per input, the same on every run
                Image.fromarray(f.crop).save(self.crops_dir / output_name(path, f"{part}_face{i}.png"))

    @staticmethod
    def _tally(summary: Summary, source: str, records: list[dict[str, Any]]) -> None:
        summary.items += 1
        kinds = Counter(r["kind"] for r in records)
        summary.faces += kinds["face"]
        summary.tracks += kinds["track"]
        summary.no_face += kinds["no_face"]
        labels = [r.get("label") or "?" for r in records if r["kind"] in ("face", "track")]
        summary.labels.update(labels)
        if kinds["error"]:
            err = records[0]["error"]
            summary.errors.append({"source": source, **err})
            summary.rows.append((source, "error", "", "-", err["reason"]))
            return
        for r in records:
            if r["kind"] == "no_face":
                summary.rows.append((source, "no face", "", "-", ""))
                continue
            which = f"track {r['track_id']}" if r["kind"] == "track" else f"face {r['face_index']}"
            conf = f" {r['confidence']:.2f}" if r.get("confidence") is not None else ""
            who = " ".join(x for x in ((r.get("gender") or {}).get("value"), (r.get("age") or {}).get("group")) if x)
            summary.rows.append((source, which, who, f"{r.get('label') or '?'}{conf}", r.get("explanation") or ""))


def image_records(faces: MediaFaces, source: str, options: AnalyzeOptions, expression_model: str | None = None
                  ) -> list[dict[str, Any]]:
    """The records of one analysed photo: one 'face' record per face, or one 'no_face' record. Face records name
    ``expression_model`` (`expression_identity`) when given."""
    size = faces.image_size
    if not faces.tracks:
        return [empty_record(source=source, media="image", image_size=size)]
    return [face_record(t.results[0], source=source, media="image", face_index=i, image_size=size,
                        landmarks=options.landmarks, blendshapes=options.blendshapes, expression_model=expression_model)
            for i, t in enumerate(faces.tracks)]


def video_records(faces: MediaFaces, source: str, options: AnalyzeOptions, reader: VideoReader,
                  expression_model: str | None = None) -> list[dict[str, Any]]:
    """The records of one analysed video: one 'track' record per face track, or one 'no_face' record; each says
    how much of the clip ``reader`` (the `VideoReader` that decoded the frames) read. Track records name
    ``expression_model`` when given.

    Raises:
        MediaError: no frame was decoded.
    """
    n, size = faces.frames_analysed, faces.image_size
    if n == 0:
        raise MediaError(source, "no frames decoded", fix="the video may be empty or truncated")
    if not faces.tracks:
        return [add_coverage(empty_record(source=source, media="video", frames_sampled=n, image_size=size),
                             reader.info, reader.last_read)]
    recs = [add_coverage(track_record(t.track, source=source, frames_sampled=n, image_size=size,
                                      au_series=options.au_series, expression_model=expression_model),
                         reader.info, reader.last_read) for t in faces.tracks]
    if faces.capped_frames:
        for r in recs:
            flag_capped(r, f"more faces than max_faces in {faces.capped_frames} of {n} sampled frames; the smallest "
                           "were dropped (raise --max-faces)")
    return recs
