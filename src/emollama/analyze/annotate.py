"""Draw boxes, track ids and labels on images / sampled video frames for a person to look at."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

logger = logging.getLogger(__name__)
COLOURS = {"happiness": (255, 200, 0), "sadness": (60, 120, 255), "surprise": (0, 220, 220), "anger": (255, 40, 40),
           "fear": (180, 60, 255), "disgust": (60, 200, 60), "neutral": (220, 220, 220), "contempt": (255, 120, 200)}


def draw_faces(rgb: np.ndarray, faces: list, track_ids: list[int] | None = None) -> Image.Image:
    """Copy of the frame with each face's box and 'label p' (and '#track') drawn."""
    img = Image.fromarray(rgb).convert("RGB")
    d = ImageDraw.Draw(img)
    width = max(2, round(min(img.size) / 200))
    for i, f in enumerate(faces):
        colour = COLOURS.get(f.label or "", (255, 255, 255))
        x0, y0, x1, y1 = f.box.xyxy
        d.rectangle([x0, y0, x1, y1], outline=colour, width=width)
        text = f"{f.label or '?'} {f.probs.get(f.label, 0.0):.2f}" if f.label else "?"
        if track_ids is not None:
            text = f"#{track_ids[i]} {text}"
        tb = d.textbbox((x0, y0), text)
        ty = max(0, y0 - (tb[3] - tb[1]) - 4)
        d.rectangle([x0, ty, x0 + (tb[2] - tb[0]) + 4, ty + (tb[3] - tb[1]) + 4], fill=colour)
        d.text((x0 + 2, ty + 1), text, fill=(0, 0, 0))
    return img


def annotate_image(rgb: np.ndarray, faces: list, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    draw_faces(rgb, faces).save(out, quality=90)
    return out


class VideoAnnotator:
    """Streams annotated sampled frames into an H.264 mp4 (PyAV), one frame per sampled frame at 2 fps."""

    def __init__(self, out: Path, fps: int = 2) -> None:
        import av

        out.parent.mkdir(parents=True, exist_ok=True)
        self.out, self.fps = out, fps
        self._container = av.open(str(out), mode="w")
        self._stream = None

    def add(self, rgb: np.ndarray, faces: list, track_ids: list[int]) -> None:
        import av

        img = draw_faces(rgb, faces, track_ids)
        w, h = img.size[0] // 2 * 2, img.size[1] // 2 * 2  # yuv420p needs even sizes
        if self._stream is None:
            self._stream = self._container.add_stream("libx264", rate=self.fps)
            self._stream.width, self._stream.height, self._stream.pix_fmt = w, h, "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.asarray(img)[:h, :w], format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        if self._stream is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
        self._container.close()
        logger.info("annotated video written to %s", self.out)
