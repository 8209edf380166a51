"""Media for API prompts: an image's bytes, or a clip's centre frame (SPEC §5.4 video pipeline) as JPEG bytes."""

from __future__ import annotations

import io
import mimetypes
from pathlib import Path

from emollama.media.kinds import FRAME_EXTS

_MIME = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp"}


def centre_frame_path(folder: Path) -> Path:
    """Middle image of a frame folder in name order (DFEW/MAFW/FERV39k official face crops)."""
    frames = sorted(p for p in folder.iterdir() if p.suffix.lower() in FRAME_EXTS)
    if not frames:
        raise FileNotFoundError(f"frame folder {str(folder)!r} holds no images ({', '.join(FRAME_EXTS)})")
    return frames[(len(frames) - 1) // 2]


def _jpeg(image) -> bytes:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def media_bytes(path: Path, kind: str) -> tuple[bytes, str]:
    """(bytes, mime type) to attach: the image itself, or a clip's centre frame.

    Formats the APIs may not accept inline (BMP, TIFF, ...) are re-encoded as JPEG.
    """
    path = Path(path)
    if path.is_dir():
        path = centre_frame_path(path)
    elif kind == "video" and path.suffix.lower() not in FRAME_EXTS:  # a clip given as one frame file is sent as is
        from PIL import Image

        from emollama.media.video import read_frames

        frames = read_frames(path, "uniform:1")  # uniform:1 = the centre of the single segment
        if not frames:
            raise ValueError(f"no frame could be decoded from {str(path)!r}")
        return _jpeg(Image.fromarray(frames[0].rgb)), "image/jpeg"
    mime = _MIME.get(path.suffix.lower())
    if mime is None:
        from PIL import Image

        with Image.open(path) as im:
            return _jpeg(im), "image/jpeg"
    return path.read_bytes(), mime or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
