"""Typed media errors: what went wrong with which file, and what to do about it.

`MediaError(path, reason, detail, fix)`: ``reason`` is short and stable (records, CSV), ``fix`` says what to do.
`MediaTooLarge` marks an input over a configured limit (pixels, duration, frames): the server answers 413 for it,
every other `MediaError` is a 400/422.
"""

from __future__ import annotations

from pathlib import Path


class MediaError(Exception):
    """A media file that cannot be analysed. ``reason`` is short and stable (for records), ``fix`` says what to do."""

    def __init__(self, path: str | Path, reason: str, detail: str = "", fix: str = "") -> None:
        self.path, self.reason, self.detail, self.fix = str(path), reason, detail, fix
        msg = f"{self.path}: {reason}" + (f" ({detail})" if detail else "") + (f"; {fix}" if fix else "")
        super().__init__(msg)


UNREADABLE_VIDEO_FIX = "check that the file plays in a media player; re-encode it (e.g. to H.264 mp4)"


class MediaTooLarge(MediaError):
    """Media over a configured limit (pixels per image or frame, video duration or frame count)."""
