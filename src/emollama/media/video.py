"""A small streaming video reader over PyAV (the `video` extra): metadata and sampled RGB frames.

Frames are decoded one at a time and only the sampled ones are converted to RGB, so memory is O(1) in video length
(O(N) for 'peak:N'). Which frames to read is decided by the pure policies in `emollama.media.sampling`. Between
sampled frames the decoder skips non-reference frames (skip_frame=NONREF), which nothing later depends on.

Seek vs sequential decoding: a PyAV seek lands on the keyframe at or before the target, from which we decode forward
to the exact frame. Reaching sampled frame t from decode position p therefore costs (t - keyframe_before(t)) frames
after a seek and (t - p) frames sequentially. We seek iff keyframe_before(t) > p + SEEK_OVERHEAD_FRAMES, i.e. when the
gap between consecutive sampled frames spans a keyframe interval. Keyframe positions come from the container index
(mp4/mov sample tables, mkv cues) or, when there is none, from a demux-only pass over packet flags (no decoding).
"""

from __future__ import annotations

import bisect
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

import numpy as np

from emollama.media.sampling import DEFAULT_POLICY, candidate_indices, parse_policy, sample_indices, select_peak

logger = logging.getLogger(__name__)

SEEK_OVERHEAD_FRAMES = 4  # a seek flushes the decoder; worth it only if it skips more than this many frames
PROBE_FRAMES = 12  # frames decoded at open to check that timestamps rise in display order (AVI + B-frames: no)


class VideoError(ValueError):
    """A video file that cannot be read (corrupt, truncated, empty, no video stream, unsupported codec)."""


class Frame(NamedTuple):
    """One decoded frame: nominal frame ``index``, ``time_s`` from stream start, ``rgb`` (H, W, 3) uint8."""

    index: int
    time_s: float
    rgb: np.ndarray


@dataclass(frozen=True)
class VideoInfo:
    """Stream metadata. ``num_frames`` is estimated from duration x fps when ``frames_estimated``.

    ``width``/``height`` are the stored size; ``rotation`` (degrees counter-clockwise, from the display matrix) is
    applied to returned frames when the reader's ``apply_rotation`` is on. ``data_frames``: frames whose data the
    file really holds when its container index lists more (a cut copy of a file with its index first), else None.
    """

    path: str
    fps: float
    num_frames: int
    frames_estimated: bool
    duration_s: float
    width: int
    height: int
    rotation: int
    codec: str
    data_frames: int | None = None


@dataclass
class ReadReport:
    """What the last pass over the stream decoded: ``returned`` frames for the ``expected`` sampled ones (``missing``
    never reached), the times of the first and last frame decoded, and the decoding ``error`` that ended the pass
    early ("" when none)."""

    expected: int
    returned: int = 0
    missing: int = 0
    first_time_s: float | None = None
    last_time_s: float | None = None
    error: str = ""

    @property
    def ended_early(self) -> bool:
        return self.missing > 0


def _av():
    try:
        import av
    except ImportError as e:  # genuinely optional dependency
        raise ImportError("video decoding needs PyAV: pip install 'emollama[video]' (av==18.1.0)") from e
    return av


class VideoReader:
    """Probe a video once, then stream sampled frames with `iter_frames` / `read_frames`.

    Args:
        path: video file.
        apply_rotation: rotate frames upright according to the stream's display matrix.
    """

    def __init__(self, path: str | os.PathLike, apply_rotation: bool = True) -> None:
        self.path = os.fspath(path)
        self.apply_rotation = apply_rotation
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"video file {self.path!r} does not exist")
        if os.path.getsize(self.path) == 0:
            raise VideoError(f"video file {self.path!r} is empty (0 bytes)")
        self._keyframes: list[int] | None = None
        self.last_read: ReadReport | None = None  # set by each pass over the frames (iter_frames / read_frames)
        self.info = self._probe()

    # -- opening and metadata ------------------------------------------------------------------------------------
    def _open(self):
        av = _av()
        try:
            container = av.open(self.path, metadata_errors="ignore")
        except FileNotFoundError:  # gone since the reader was made: the caller reports a missing file, not a bad one
            raise
        except (av.error.FFmpegError, UnicodeDecodeError) as e:
            raise VideoError(f"cannot open video {self.path!r} (corrupt, truncated or unsupported format): {e}") from e
        if not container.streams.video:
            container.close()
            raise VideoError(f"{self.path!r} has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        return container, stream

    def _probe(self) -> VideoInfo:
        container, stream = self._open()
        with container:
            tb = stream.time_base or Fraction(1, 1)
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            fps = float(rate) if rate else 0.0
            if stream.duration is not None:
                duration = float(stream.duration * tb)
            elif container.duration is not None:
                duration = container.duration / 1_000_000  # av.time_base is microseconds
            else:
                duration = 0.0
            self._tb, self._fps = tb, fps
            self._start = stream.start_time if stream.start_time is not None else None
            first = self._probe_frames(container, stream)
            num = int(stream.frames or 0)
            estimated = num <= 0
            if estimated and duration > 0:  # e.g. mkv/webm/ts: no frame count in the container
                num = max(1, round(duration * fps))
            elif estimated:  # raw elementary streams: no duration either; count packets (demux only, no decoding)
                counter, cstream = self._open()
                with counter:
                    num = max(1, sum(1 for p in counter.demux(cstream) if p.size))
            info = VideoInfo(
                path=self.path,
                fps=fps,
                num_frames=num,
                frames_estimated=estimated,
                duration_s=duration if duration > 0 else (num / fps if fps else 0.0),
                width=stream.codec_context.width,
                height=stream.codec_context.height,
                rotation=int(first.rotation or 0),
                codec=stream.codec_context.name,
                data_frames=self._data_frames(stream),
            )
            self._keyframes = self._index_keyframes(stream)
        if info.data_frames is not None:
            logger.warning("%s: the file holds only %d of the %d frames its index lists (truncated?)", self.path,
                           info.data_frames, info.num_frames)
        logger.debug("probed %s: %s", self.path, info)
        return info

    def _probe_frames(self, container, stream):
        """Decode the first frames: the first one (rotation, start time) and whether pts rise in display order.

        Without trustworthy timestamps frames are numbered by counting, and seeking / frame skipping are off."""
        av = _av()
        pts: list[int | None] = []
        first = None
        try:
            for frame in container.decode(stream):
                first = first or frame
                pts.append(frame.pts)
                if len(pts) >= PROBE_FRAMES:
                    break
        except av.error.FFmpegError as e:
            if first is None:
                raise VideoError(f"cannot decode video {self.path!r} (corrupt or truncated): {e}") from e
        if first is None:
            raise VideoError(f"video {self.path!r} contains no decodable frames (truncated or empty stream)")
        self._pts_ok = self._fps > 0 and None not in pts and all(b > a for a, b in zip(pts[:-1], pts[1:], strict=True))
        if not self._pts_ok:
            logger.info("%s: timestamps missing or out of order; numbering frames by counting, no seeking", self.path)
        if self._start is None:
            self._start = first.pts or 0
        return first

    def _data_frames(self, stream) -> int | None:
        """Frames of the container index whose bytes lie inside the file, when fewer than the index lists: an
        index-first (faststart) file cut short still opens and decodes its first part as if it were whole."""
        entries = stream.index_entries
        size = os.path.getsize(self.path)
        if not entries or max(e.pos + e.size for e in entries) <= size:
            return None
        return sum(1 for e in entries if e.pos + e.size <= size)

    def _index_keyframes(self, stream) -> list[int] | None:
        """Frame indices of keyframes from the container index (timestamps there are dts: offset by the first)."""
        entries = [e for e in stream.index_entries if not e.is_discard]
        if not entries or self._fps <= 0:
            return None
        t0 = entries[0].timestamp
        return sorted({round(float((e.timestamp - t0) * self._tb) * self._fps) for e in entries if e.is_keyframe})

    def keyframes(self) -> list[int]:
        """Keyframe frame indices; without a container index, found by a demux-only pass (O(#keyframes) memory)."""
        if self._keyframes is None:
            container, stream = self._open()
            with container:
                self._keyframes = sorted(
                    {self._index_of(p.pts) for p in container.demux(stream) if p.pts is not None and p.is_keyframe}
                )
        return self._keyframes or [0]

    # -- decoding ------------------------------------------------------------------------------------------------
    def _index_of(self, pts: int | None) -> int:
        return round(float(((pts or 0) - (self._start or 0)) * self._tb) * self._fps) if self._fps else 0

    def _rgb(self, frame) -> np.ndarray:
        rgb = frame.to_ndarray(format="rgb24")  # (H, W, 3) uint8 view of an FFmpeg buffer
        rot = int(frame.rotation or 0) if self.apply_rotation else 0
        # copy into numpy-owned memory: a view would pin the decoder's frame buffer for as long as the caller keeps it
        return np.ascontiguousarray(np.rot90(rgb, k=rot // 90)) if rot % 360 else rgb.copy()

    def _should_seek(self, pos: int, target: int) -> bool:
        kfs = self.keyframes()
        kf = kfs[max(0, bisect.bisect_right(kfs, target) - 1)]
        return kf > pos + SEEK_OVERHEAD_FRAMES

    def _frames(self, container, stream, nxt: list[int]) -> Iterator:
        """Decoded frames from the current position. Packets before the pending target ``nxt[0]`` are decoded with
        skip_frame=NONREF: non-reference frames there are never returned, and nothing else depends on them."""
        ctx = stream.codec_context
        for packet in container.demux(stream):
            if packet.pts is not None and self._pts_ok:
                mode = "NONREF" if self._index_of(packet.pts) < nxt[0] else "DEFAULT"
                if ctx.skip_frame != mode:
                    ctx.skip_frame = mode
            yield from packet.decode()

    def _seek(self, container, stream, target: int, nxt: list[int]):
        """Decoder positioned at or before ``target``: seek, and step further back if the demuxer overshot.

        Returns (first frame or None, frame iterator), or None when the input cannot seek (then decode on)."""
        av = _av()
        back = 0
        while True:
            t = max(0, target - back)
            ts = (self._start or 0) + round(t / self._fps / self._tb)  # round: int() can land one tick early
            try:
                container.seek(ts, stream=stream, backward=True, any_frame=False)
            except av.error.FFmpegError as e:
                logger.debug("%s: seek failed (%s); decoding sequentially", self.path, e)
                self._keyframes = [0]  # no more seek attempts on this file
                return None
            frames = self._frames(container, stream, nxt)
            first = next(frames, None)
            if (first is not None and self._index_of(first.pts) <= target) or t == 0:
                return first, frames  # None at t == 0: nothing decodable from the start either
            back = max(2 * back, SEEK_OVERHEAD_FRAMES, 1)

    def _decode_indices(self, targets: list[int]) -> Iterator[tuple[int, object]]:
        """Yield (target index, av frame) for each target: the first frame whose index is >= the target.

        A decoding error after the first yielded frame ends the pass like the end of the stream (what was decoded
        stays usable); `last_read` says how far it got and why it stopped."""
        report = self.last_read = ReadReport(expected=len(targets))
        if not targets:
            return
        av = _av()
        container, stream = self._open()
        with container:
            nxt = [targets[0]]  # pending target, read by `_frames` to decide what it may skip
            frames: Iterator = self._frames(container, stream, nxt)
            pending, pos, k, sought = None, -1, 0, -1
            # dense targets ('all', or gaps of a few frames) never justify a seek: skip the keyframe lookup entirely
            gaps = np.diff([-1, *targets])
            may_seek = self._pts_ok and int(gaps.max()) > SEEK_OVERHEAD_FRAMES
            try:
                while k < len(targets):
                    nxt[0] = targets[k]
                    # at most one seek per target: if the demuxer lands earlier than the index promised, decode on
                    if may_seek and targets[k] != sought and self._should_seek(pos, targets[k]):
                        sought = targets[k]
                        sought_frames = self._seek(container, stream, targets[k], nxt)
                        if sought_frames is not None:
                            pending, frames = sought_frames
                            logger.debug("%s: seek to frame %d", self.path, targets[k])
                    frame = pending if pending is not None else next(frames, None)
                    pending = None
                    if frame is None:
                        break
                    pos = self._index_of(frame.pts) if self._pts_ok else pos + 1
                    report.last_time_s = self._time_of(frame, pos)
                    if report.first_time_s is None:
                        report.first_time_s = report.last_time_s
                    if pos >= targets[k]:
                        report.returned += 1
                        yield targets[k], frame
                        k = bisect.bisect_right(targets, pos, lo=k)  # one frame serves every target it reaches
            except av.error.FFmpegError as e:
                if not report.returned:
                    raise VideoError(f"error decoding {self.path!r} near frame {pos + 1}: {e}") from e
                report.error = f"decoding failed near frame {pos + 1}: {e}"
        report.missing = len(targets) - k
        if k < len(targets):
            logger.warning(
                "%s: %s; %d sampled frame(s) from %d on are missing%s",
                self.path,
                report.error or f"stream ended at frame {pos}",
                len(targets) - k,
                targets[k],
                " (frame count was estimated)" if self.info.frames_estimated else " (truncated?)",
            )

    def iter_frames(
        self, policy: str = DEFAULT_POLICY, score: Callable[[Frame], float] | None = None
    ) -> Iterator[Frame]:
        """Stream the frames selected by ``policy`` (see `emollama.media.sampling`), in time order.

        Args:
            policy: 'uniform:N' | 'fps:F' | 'all' | 'peak:N'.
            score: 'peak:N' only: candidate `Frame` -> expression energy (e.g. AU energy of its face); the caller may
                cache its per-frame analysis by ``frame.index`` to reuse it for the frames kept.
        """
        name, arg = parse_policy(policy)
        if name == "peak":
            if score is None:
                raise ValueError(f"policy {policy!r} needs a score callback (Frame -> expression energy)")
            yield from self._iter_peak(int(arg), score)
            return
        for index, frame in self._decode_indices(sample_indices(self.info.num_frames, self.info.fps, policy)):
            yield Frame(index, self._time_of(frame, index), self._rgb(frame))

    def _time_of(self, frame, index: int) -> float:
        if not self._pts_ok or frame.pts is None:  # no trustworthy timestamps: nominal time
            return index / self._fps if self._fps else 0.0
        return float((frame.pts - (self._start or 0)) * self._tb)

    def _iter_peak(self, n: int, score: Callable[[Frame], float]) -> Iterator[Frame]:
        # keep only the current best n frames: memory O(n), one decoding pass over the candidates
        best: list[tuple[Frame, float]] = []
        cands = candidate_indices(self.info.num_frames, self.info.fps, f"peak:{n}")
        for index, frame in self._decode_indices(cands):
            f = Frame(index, self._time_of(frame, index), self._rgb(frame))
            best.append((f, float(score(f))))
            if len(best) > n:
                keep = set(select_peak([b[0].index for b in best], [b[1] for b in best], n))
                best = [b for b in best if b[0].index in keep]
        yield from (b[0] for b in best)

    def read_frames(self, policy: str = DEFAULT_POLICY, score: Callable[[Frame], float] | None = None) -> list[Frame]:
        """`iter_frames` collected in a list (holds every sampled frame: avoid with 'all' on long videos)."""
        return list(self.iter_frames(policy, score))


def read_frames(
    path: str | os.PathLike, policy: str = DEFAULT_POLICY, score: Callable[[Frame], float] | None = None
) -> list[Frame]:
    """Sampled frames of the video at ``path`` as `Frame(index, time_s, rgb (H, W, 3) uint8)` tuples."""
    return VideoReader(path).read_frames(policy, score)


def iter_frames(
    path: str | os.PathLike, policy: str = DEFAULT_POLICY, score: Callable[[Frame], float] | None = None
) -> Iterator[Frame]:
    """Streaming version of `read_frames`: O(1) memory in video length."""
    return VideoReader(path).iter_frames(policy, score)
