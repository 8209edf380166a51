"""File kinds: which extensions are images, videos and frame folders, and the one default pixel limit."""

from __future__ import annotations

from pathlib import Path

IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".jfif", ".ppm", ".pgm"})
VIDEO_EXTS = frozenset({".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".3gp"})
FRAME_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")  # files of a frame folder (dataset clips), in name order
# Deliberately narrower: what dataset folders are scanned for (benchmark and generic loaders). Other files there
# are notes or thumbnails; widening these would change which samples a folder yields.
DATASET_IMAGE_EXTS = frozenset(FRAME_EXTS)
DATASET_VIDEO_EXTS = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm"})
DEFAULT_MAX_PIXELS = 100_000_000  # 100 MP: larger is almost surely a bomb or a scan, not a face photo


def media_kind(path: Path) -> str | None:
    """'image', 'video' or None from the file extension."""
    ext = path.suffix.lower()
    return "image" if ext in IMAGE_EXTS else "video" if ext in VIDEO_EXTS else None
