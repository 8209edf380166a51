"""`Analyzer`: the CPU face analyzer behind `emollama analyze`, as a Python API (no LLM).

One photo or video goes media layer (`emollama.api.inputs`) -> `emollama.faces.pipeline.analyze_media` (the path
the batch runner takes) -> `emollama analyze` records (`emollama.analyze.runner.image_records` / `video_records`),
so `Prediction.record` is an `emollama analyze` record (docs/analyze.schema.json).
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from emollama.analyze.runner import (
    AnalyzeOptions,
    build_face_analyzer,
    expression_identity,
    image_records,
    prefetch,
    video_records,
)
from emollama.api.inputs import as_file, image_pixels, renamed, video_policy
from emollama.api.types import ANALYZER_ID, Analysis, MediaLimits, Prediction
from emollama.faces.detect import DEFAULT_MAX_FACES
from emollama.faces.pipeline import analyze_media
from emollama.media.errors import UNREADABLE_VIDEO_FIX, MediaError
from emollama.media.sampling import parse_policy
from emollama.media.video import Frame, VideoError, VideoReader

_DEFAULTS = AnalyzeOptions()  # the API's defaults are `emollama analyze`'s


class Analyzer:
    """The CPU face analyzer behind `emollama analyze`: per face box, label, probabilities, AU cues, explanation.

    Args:
        backend: 'mediapipe' (default), 'synthetic' (dependency-free stand-in, tests only) or an analyzer object.
        limits: `MediaLimits`; video_sampling: frame policy for videos (as `emollama analyze --video-sampling`).
        max_faces: faces analysed per image / frame, the largest (`emollama analyze --max-faces`; default 100).
        faces: 'auto' (default) | 'detect' | 'whole-image' (`emollama analyze --faces`).
        expression: 'emonet' (default, learned) | 'mini-xception' (baseline) (`emollama analyze --expression`).
    """

    name = ANALYZER_ID

    def __init__(self, backend: str | Any = "mediapipe", *, limits: MediaLimits | None = None,
                 video_sampling: str = _DEFAULTS.video_sampling, max_faces: int | None = None,
                 faces: str = _DEFAULTS.faces, expression: str = _DEFAULTS.expression) -> None:
        parse_policy(video_sampling)
        max_faces = max_faces or DEFAULT_MAX_FACES
        self.backend_name = backend if isinstance(backend, str) else type(backend).__name__
        self.limits, self.video_sampling = limits or MediaLimits(), video_sampling
        self.max_faces, self.faces, self.expression = max_faces, faces, expression
        self.options = AnalyzeOptions(backend=self.backend_name, video_sampling=video_sampling,
                                      max_pixels=self.limits.max_pixels, max_faces=max_faces, faces=faces,
                                      expression=expression)
        self.backend = build_face_analyzer(self.options) if isinstance(backend, str) else backend

    def spawn(self) -> Analyzer:
        """A new Analyzer with the same settings and its own models (one analyzer per thread)."""
        return Analyzer(self.backend_name if self.backend_name in ("mediapipe", "synthetic") else self.backend,
                        limits=self.limits, video_sampling=self.video_sampling, max_faces=self.max_faces,
                        faces=self.faces, expression=self.expression)

    def load(self) -> None:
        """Load the face models now instead of on the first request."""
        if hasattr(self.backend, "load"):
            self.backend.load()

    def close(self) -> None:
        """Release the face models."""
        if hasattr(self.backend, "close"):
            self.backend.close()

    def analyze(self, image: Any = None, video: Any = None, *, source: str | None = None) -> list[dict[str, Any]]:
        """`emollama analyze` records (face / track / no_face) for one image or video; raises `MediaError`."""
        return self.analysis(image, video, source=source).records

    def predict(self, image: Any = None, video: Any = None, question: str | None = None, faces: str = "all",
                **_: Any) -> list[Prediction]:
        """One `Prediction` per face (image) or track (video); ``text`` is the analyzer's explanation (``question``
        cannot change it: there is no language model here). ``faces``: 'all' or 'largest'."""
        a = self.analysis(image, video)
        return [Prediction.from_record(r, f, a.media, self.name) for r, f in a.select(faces)]

    def analysis(self, image: Any = None, video: Any = None, *, source: str | None = None,
                 keep_frames: bool = False) -> Analysis:
        """Records and `FaceTrack`s (full `FaceResult`s per frame) of one image or video, and with ``keep_frames``
        the analysed frames' pixels.

        Raises:
            ValueError: not exactly one of image / video. MediaLimitError: over `limits`. MediaError: unreadable.
            RuntimeError: the analysis of a video failed.
        """
        if (image is None) == (video is None):
            raise ValueError("pass exactly one of image=... or video=...")
        with tempfile.TemporaryDirectory(prefix="emollama-") as tmp:
            if image is not None:
                rgb, key, src = image_pixels(image, self.limits, Path(tmp))
                faces = analyze_media([Frame(0, 0.0, rgb)], self.backend, video=False, keep_frames=keep_frames)
                out = Analysis("image", image_records(faces, source or src, self.options,
                                                      expression_identity(self.backend)), faces.tracks, faces.frames)
            else:
                path, key, src = as_file(video, Path(tmp), ".mp4")
                out = self._video(path, source or src, keep_frames)
        for i, r in enumerate(out.records):  # the fields ResultStore stamps, so records match the published schema
            r.update(item_key=key, options_hash=self.options.digest(), record_index=i, records_in_item=len(out.records))
        return out

    def _video(self, path: Path, source: str, keep_frames: bool) -> Analysis:
        options = dataclasses.replace(self.options, video_sampling=video_policy(path, source, self.limits,
                                                                                 self.video_sampling))
        try:
            reader = VideoReader(path)
            faces = analyze_media(prefetch(reader.iter_frames(options.video_sampling)), self.backend, video=True,
                                  keep_frames=keep_frames)
            records = video_records(faces, source, options, reader, expression_identity(self.backend))
        except MediaError as err:
            raise renamed(err, path, source) from None
        except VideoError as err:
            raise MediaError(source, "unreadable video", str(err).replace(str(path), source),
                             UNREADABLE_VIDEO_FIX) from None
        except Exception as err:  # the analyzer's own failure, not the input's
            raise RuntimeError(f"video analysis failed: {type(err).__name__}: {err}") from err
        return Analysis("video", records, faces.tracks, faces.frames)
