"""API inputs -> pixels or a video file, through the media layer (`emollama.media`), with the API's limits.

An input is a path, raw bytes (written to a temporary file: the decoders read files), a PIL image or an (H, W, 3)
uint8 RGB array. Each comes with its item key (``sha256:...`` of the bytes or of the resolved path) and the
``source`` its records and error messages name ('upload' for bytes, 'array' for pixels, else the path).
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from emollama.api.types import MediaLimits
from emollama.media.decode import load_image, to_rgb_uint8
from emollama.media.errors import UNREADABLE_VIDEO_FIX, MediaError, MediaTooLarge
from emollama.media.sampling import candidate_indices
from emollama.media.video import VideoError, VideoReader

logger = logging.getLogger(__name__)
def digest(data: bytes | str) -> str:
    """Item key of raw bytes or of a path string."""
    return "sha256:" + hashlib.sha256(data if isinstance(data, bytes) else os.fsencode(data)).hexdigest()[:16]


def as_file(data: Any, tmp: Path, suffix: str) -> tuple[Path, str, str]:
    """(path, item key, source) for a path or raw bytes (bytes are written to ``tmp``)."""
    if isinstance(data, (str, os.PathLike)):
        from emollama.analyze.paths import path_text

        return Path(data), digest(str(Path(data).resolve())), path_text(data)  # any file name, as in records
    if not isinstance(data, bytes):
        raise TypeError(f"video must be a path or bytes, got {type(data).__name__}")
    path = tmp / f"upload{suffix}"
    path.write_bytes(data)
    return path, digest(data), "upload"


def renamed(err: MediaError, path: Path, source: str) -> MediaError:
    """The same error (same class: `MediaTooLarge` stays one) naming ``source`` instead of a temporary path."""
    return type(err)(source, err.reason, err.detail.replace(str(path), source), err.fix)


def image_pixels(image: Any, limits: MediaLimits, tmp: Path) -> tuple[np.ndarray, str, str]:
    """(rgb (H, W, 3) uint8, item key, source) of an image input.

    Raises:
        MediaTooLarge: over ``limits.max_pixels``. MediaError: unreadable. ValueError: an array of another shape.
    """
    if isinstance(image, (str, os.PathLike, bytes)):
        path, key, src = as_file(image, tmp, ".img")
        try:
            return load_image(path, limits.max_pixels), key, src
        except MediaError as err:
            raise renamed(err, path, src) from None
    from PIL import Image

    rgb = to_rgb_uint8(image) if isinstance(image, Image.Image) else np.ascontiguousarray(image, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"image arrays must be (H, W, 3) uint8 RGB, got shape {rgb.shape}")
    if rgb.shape[0] * rgb.shape[1] > limits.max_pixels:
        raise MediaTooLarge("array", "image too large", f"{rgb.shape[1]}x{rgb.shape[0]}", "resize it")
    return rgb, digest(rgb.tobytes()), "array"


def video_policy(path: Path, source: str, limits: MediaLimits, policy: str) -> str:
    """Probe the video against ``limits``; returns ``policy``, thinned to 'uniform:max_video_frames' when it samples
    more frames than that.

    Raises:
        MediaTooLarge: too long, or frames over max_pixels. MediaError: unreadable.
    """
    try:
        info = VideoReader(path).info
    except VideoError as err:
        raise MediaError(source, "unreadable video", str(err).replace(str(path), source),
                         UNREADABLE_VIDEO_FIX) from None
    if info.duration_s > limits.max_video_s:
        raise MediaTooLarge(source, "video too long", f"{info.duration_s:.1f} s > {limits.max_video_s:g} s",
                            "trim the clip")
    if info.width * info.height > limits.max_pixels:
        raise MediaTooLarge(source, "video frames too large", f"{info.width}x{info.height}", "downscale it")
    if len(candidate_indices(info.num_frames, info.fps, policy)) > limits.max_video_frames:
        thinned = f"uniform:{limits.max_video_frames}"
        logger.info("video %s: %s samples too many frames; using %s", source, policy, thinned)
        return thinned
    return policy
