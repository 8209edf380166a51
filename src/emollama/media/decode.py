"""Robust media loading for the analyzer: every failure becomes a `MediaError` naming the file and the fix.

Handles 0-byte, truncated and corrupt files, unsupported formats, EXIF rotation, grayscale / CMYK / 16-bit /
palette / alpha images, and a decompression-bomb guard.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from emollama.media.errors import MediaError, MediaTooLarge
from emollama.media.kinds import DEFAULT_MAX_PIXELS, FRAME_EXTS, IMAGE_EXTS, VIDEO_EXTS, media_kind
from emollama.media.video import Frame

__all__ = ["DEFAULT_MAX_PIXELS", "FRAME_EXTS", "IMAGE_EXTS", "VIDEO_EXTS", "Frame", "MediaError", "MediaTooLarge",
           "frame_files", "load_image", "load_media", "media_item", "media_kind", "to_rgb_uint8"]


def to_rgb_uint8(img: Image.Image) -> np.ndarray:
    """Any PIL mode -> (H, W, 3) uint8 RGB. Alpha is composited on white; 16/32-bit data is rescaled."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        scale = 255.0 / (hi - lo) if hi > lo else 0.0
        img = Image.fromarray(((arr - lo) * scale).astype(np.uint8))
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(canvas, rgba)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8)


def load_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB with EXIF orientation applied.

    Raises:
        MediaError: missing, empty, not an image, truncated/corrupt, or larger than ``max_pixels``.
    """
    path = Path(path)
    if not path.exists():
        raise MediaError(path, "file not found", fix="check the path")
    if path.stat().st_size == 0:
        raise MediaError(path, "empty file (0 bytes)", fix="re-copy or re-download the file")
    # ONE limit: Pillow's own guard (89.48 MP by default) follows ours, so it never refuses what --max-pixels allows
    # and still stops what only decoding reveals (a GIF frame larger than the header). Process-wide: last caller wins.
    Image.MAX_IMAGE_PIXELS = max_pixels
    too_large = "resize it, or raise the limit with --max-pixels"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the header check below says it better
            img = Image.open(path)
        with img, warnings.catch_warnings():
            w, h = img.size  # header only: nothing is decoded before this check
            if w * h > max_pixels:
                raise MediaTooLarge(path, "image too large", f"{w}x{h} = {w * h:,} pixels > {max_pixels:,}", too_large)
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img.load()
            img = ImageOps.exif_transpose(img)
            return to_rgb_uint8(img)
    except MediaError:
        raise
    except UnidentifiedImageError as err:
        raise MediaError(path, "not a recognised image format", str(err), "convert it to JPEG or PNG") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:  # over twice the limit, or mid-decode
        found = re.search(r"\((\d+) pixels\)", str(err))
        detail = f"{int(found[1]):,} pixels > {max_pixels:,}" if found else str(err)
        raise MediaTooLarge(path, "image too large", detail, too_large) from None
    except (OSError, SyntaxError, ValueError) as err:
        raise MediaError(path, "truncated or corrupt image", str(err), "re-export or re-download the file") from None


FRAME_FOLDER_PERIOD_S = 0.04  # frame folders (DFEW/MAFW official faces) carry no timestamps: nominal 25 fps


def frame_files(folder: str | Path) -> list[Path]:
    """Frame images of a frame-folder video, in name order."""
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in FRAME_EXTS)


def load_media(path: str | Path, is_video: bool, policy: str, max_pixels: int = DEFAULT_MAX_PIXELS) -> list[Frame]:
    """The decoder of datasets and the MLLM's media, shared by prepare, training, eval and zero-shot eval, so all
    of them see identical pixels (`emollama analyze` and the API stream videos through `VideoReader` instead).

    Args:
        path: an image file; or, with ``is_video``, a video file or a folder of frame images.
        policy: frame sampling policy for videos (`emollama.media.sampling`); frame folders have no fps.
    Returns:
        `Frame`s (index, time_s, rgb (H, W, 3) uint8) in time order; one frame (index 0, 0 s) for an image.
        Every image and frame-folder file goes through `load_image` (EXIF rotation, mode conversion, bomb guard).
    Raises:
        MediaError for unreadable images / empty folders; `emollama.media.video.VideoError` for bad videos.
    """
    from emollama.media.video import read_frames

    path = Path(path)
    if not is_video:
        return [Frame(0, 0.0, load_image(path, max_pixels))]
    if path.is_dir():
        from emollama.media.sampling import sample_indices

        files = frame_files(path)
        if not files:
            raise MediaError(path, "empty frame folder", f"no {'/'.join(FRAME_EXTS)} files",
                             "point the sample at a folder of frame images or at a video file")
        return [Frame(i, i * FRAME_FOLDER_PERIOD_S, load_image(files[i], max_pixels))
                for i in sample_indices(len(files), 0.0, policy)]
    if not path.exists():
        raise MediaError(path, "file not found", fix="check the path")
    frames = read_frames(path, policy)
    if not frames:
        raise MediaError(path, "no frames decoded", fix="the video may be empty or truncated")
    return frames


def media_item(frames: list[Frame], is_video: bool) -> np.ndarray | list[np.ndarray]:
    """`load_media`'s frames as one media item of the model's processor: an image's (H, W, 3) uint8 array, or a
    clip's list of T (H, W, 3) uint8 arrays (training and evaluation hand the processor exactly this)."""
    return [f.rgb for f in frames] if is_video else frames[0].rgb
