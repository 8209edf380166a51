"""The ONE path from decoded frames to tracked faces, shared by `emollama analyze` (`emollama.analyze.runner`),
`emollama.api.Analyzer` and `emollama.api.EmoLlama`.

A photo is one frame analysed with ``analyze_image`` (the finder's photo rules, e.g. the whole-image fallback); each
face found becomes a `FaceTrack` of one frame. A video's sampled frames go through ``analyze_frame`` (VIDEO mode:
timestamps strictly increasing, state reset per clip) and `FaceTracker` links them into `FaceTrack`s.

Decoding is the caller's job (`emollama.media`); this module only sees `emollama.media.video.Frame`s, so the batch
runner can stream a long video while the API keeps the frames it needs for the MLLM.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from emollama.faces.track import FaceTracker, Track
from emollama.faces.types import FaceAttributes, FaceResult
from emollama.media.video import Frame

logger = logging.getLogger(__name__)


class FrameAnalyzer(Protocol):
    """What the pipeline needs of a face analyzer (`emollama.faces.analyzer.Analyzer` or a stand-in).

    An optional ``reset_video()`` is called before each clip, so a clip's results never depend on the one before.
    """

    def analyze_image(self, rgb: np.ndarray) -> list[FaceResult]: ...

    def analyze_frame(self, rgb: np.ndarray, timestamp_ms: int, frame_index: int | None = None) -> list[FaceResult]: ...


# called after each analysed frame with the frame, its faces and their track ids (photos: face indices)
OnFrame = Callable[[Frame, Sequence[FaceResult], Sequence[int]], None]


@dataclass
class FaceTrack:
    """One face through the media: a photo's face (``track_id`` None, one result) or a video track.

    Attributes:
        track_id: the tracker's id (videos), None on a photo.
        results: the face's per-frame results in frame order, only frames where it was found: `FaceResult`s, or what
            ``summarize`` made of them (see `analyze_media`).
        track: videos only, the tracker's `Track` (label over time, mean probabilities, frame range); its points'
            ``detection`` are ``results``.
    """

    track_id: int | None
    results: list[Any]
    track: Track | None = None

    @property
    def attributes(self) -> FaceAttributes | None:
        """Age/gender of the first frame that has them (the AGR prompt's input), else None."""
        return next((r.attributes for r in self.results if r is not None and r.attributes is not None), None)


@dataclass
class MediaFaces:
    """Faces of one photo or video.

    Attributes:
        media: 'image' | 'video'.
        tracks: one `FaceTrack` per face (photo, detection order) or per track (video, id order).
        frames_analysed: frames that went through the analyzer (0: the video decoded to nothing).
        image_size: (width, height) of the last analysed frame; None when no frame was analysed.
        capped_frames: frames on which the analyzer's max_faces cap dropped faces.
        frames: the analysed frames' pixels, (H, W, 3) uint8 each, in order; kept only with ``keep_frames``.
    """

    media: str
    tracks: list[FaceTrack] = field(default_factory=list)
    frames_analysed: int = 0
    image_size: tuple[int, int] | None = None
    capped_frames: int = 0
    frames: list[np.ndarray] = field(default_factory=list)

    def _add(self, frame: Frame, faces: Sequence[FaceResult], keep_frames: bool) -> None:
        self.frames_analysed += 1
        self.capped_frames += any((getattr(f, "meta", None) or {}).get("faces_found") for f in faces)
        self.image_size = (frame.rgb.shape[1], frame.rgb.shape[0])
        if keep_frames:
            self.frames.append(frame.rgb)


def analyze_media(frames: Iterable[Frame], analyzer: FrameAnalyzer, *, video: bool,
                  summarize: Callable[[Any], Any] | None = None, keep_frames: bool = False,
                  on_frame: OnFrame | None = None) -> MediaFaces:
    """Analyse and track the faces of one photo or video.

    Args:
        frames: decoded frames in time order (`emollama.media.decode.load_media`, `VideoReader.iter_frames`); a
            photo is exactly one frame. May be a lazy iterator: it is consumed once, frame by frame.
        analyzer: see `FrameAnalyzer`.
        video: True for a video (VIDEO mode + tracking), False for a photo.
        summarize: videos only: each track point keeps ``summarize(result)`` instead of the full `FaceResult` (e.g.
            `emollama.analyze.records.frame_summary`, which drops crops and meshes), so memory stays flat in video
            length. None keeps full results (priors for the MLLM need them).
        keep_frames: keep every analysed frame's pixels in `MediaFaces.frames`.
        on_frame: called after each frame (annotation, saved crops).
    Raises:
        ValueError: a photo given as anything but one frame. The analyzer's and the decoder's exceptions propagate.
    """
    return _video(frames, analyzer, summarize, keep_frames, on_frame) if video else \
        _photo(frames, analyzer, keep_frames, on_frame)


def _photo(frames: Iterable[Frame], analyzer: FrameAnalyzer, keep_frames: bool, on_frame: OnFrame | None
           ) -> MediaFaces:
    frames = list(frames)
    if len(frames) != 1:
        raise ValueError(f"a photo is exactly one frame, got {len(frames)}")
    frame = frames[0]
    faces = analyzer.analyze_image(frame.rgb)
    out = MediaFaces("image", tracks=[FaceTrack(None, [f]) for f in faces])
    out._add(frame, faces, keep_frames)
    if on_frame is not None:
        on_frame(frame, faces, list(range(len(faces))))
    return out


def video_faces(frames: Iterable[tuple[np.ndarray, int, int]], analyzer: FrameAnalyzer,
                ) -> Iterator[list[FaceResult]]:
    """The one VIDEO-mode loop: each (rgb (H, W, 3) uint8, timestamp ms, frame index) -> that frame's faces.

    Resets the analyzer first (a clip's results must not depend on the clip before it) and makes the timestamps
    strictly increasing, which MediaPipe's VIDEO mode requires (irregular or repeated pts would raise).
    """
    if hasattr(analyzer, "reset_video"):
        analyzer.reset_video()
    last_ms = -1
    for rgb, ts_ms, index in frames:
        last_ms = max(int(ts_ms), last_ms + 1)
        yield analyzer.analyze_frame(rgb, last_ms, index)


def _video(frames: Iterable[Frame], analyzer: FrameAnalyzer, summarize: Callable[[Any], Any] | None,
           keep_frames: bool, on_frame: OnFrame | None) -> MediaFaces:
    tracker = FaceTracker(summarize=summarize)
    out = MediaFaces("video")
    frames = iter(frames)
    seen: list[Frame] = []

    def stamped() -> Iterator[tuple[np.ndarray, int, int]]:
        for frame in frames:
            seen.append(frame)
            yield frame.rgb, int(round(frame.time_s * 1000)), frame.index

    for faces in video_faces(stamped(), analyzer):
        frame = seen.pop()
        ids = tracker.update(faces, frame.index, frame.time_s)
        out._add(frame, faces, keep_frames)
        if on_frame is not None:
            on_frame(frame, faces, ids)
    out.tracks = [FaceTrack(t.track_id, t.detections, t) for t in tracker.finish()]
    logger.debug("%d frame(s) analysed, %d face track(s)", out.frames_analysed, len(out.tracks))
    return out
