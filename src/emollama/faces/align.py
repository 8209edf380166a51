"""Square face crops with a configurable margin: the same crops the analyzer, the expression model and the MLLM's
face branch (`FacePrior.crops`) use, so training and inference see identical pixels.

Rule: take the face box, make it square around its centre (side = max(w, h)), add ``margin`` x side on every side,
cut that region out of the image (zero padding where it leaves the image) and resize it to ``size`` x ``size``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from emollama.faces.types import FaceBox

DEFAULT_MARGIN = 0.25
DEFAULT_SIZE = 224


@dataclass(frozen=True)
class CropConfig:
    margin: float = DEFAULT_MARGIN  # fraction of the square side added on each side
    size: int = DEFAULT_SIZE  # output side in pixels

    def __post_init__(self) -> None:
        if self.margin < 0 or self.size < 1:
            raise ValueError(f"CropConfig needs margin >= 0 and size >= 1, got {self}")


def to_rgb_array(image) -> np.ndarray:
    """PIL image or (H, W[, 1|3|4]) uint8 array -> C-contiguous (H, W, 3) uint8 RGB (grayscale/RGBA/CMYK converted)."""
    if isinstance(image, Image.Image):
        if image.mode != "RGB":
            image = image.convert("RGB")
        return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {arr.dtype}; convert (e.g. 16-bit >> 8) before analysis")
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, :3]
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) image, got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def square_box(box: FaceBox, margin: float = DEFAULT_MARGIN) -> FaceBox:
    """Square region centred on ``box`` with side max(w, h) * (1 + 2 * margin) (may leave the image)."""
    cx, cy = box.center
    half = max(box.width, box.height) * (0.5 + margin)
    return FaceBox(cx - half, cy - half, cx + half, cy + half, box.score, box.source)


def crop_region(rgb: np.ndarray, region: FaceBox, size: int | None = None) -> np.ndarray:
    """Cut ``region`` (integer-rounded) out of ``rgb`` with zero padding outside the image; resize if ``size``."""
    h, w = rgb.shape[:2]
    x0, y0 = int(np.floor(region.x0)), int(np.floor(region.y0))
    x1, y1 = max(x0 + 1, int(np.ceil(region.x1))), max(y0 + 1, int(np.ceil(region.y1)))
    out = np.zeros((y1 - y0, x1 - x0, rgb.shape[2]), dtype=rgb.dtype)
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
    if size is not None and out.shape[:2] != (size, size):
        out = np.asarray(Image.fromarray(out).resize((size, size), Image.Resampling.BILINEAR))
    return np.ascontiguousarray(out)


def crop_face(rgb: np.ndarray, box: FaceBox, cfg: CropConfig | None = None) -> tuple[np.ndarray, FaceBox]:
    """(size x size x 3 uint8 crop, the image region it covers) for one face box."""
    cfg = cfg or CropConfig()
    region = square_box(box, cfg.margin)
    return crop_region(rgb, region, cfg.size), region


def landmarks_to_crop(landmarks_px: np.ndarray, region: FaceBox) -> np.ndarray:
    """(K, >=2) image-pixel landmarks -> (K, 2) normalised to [0, 1] of the crop ``region`` (FacePrior layout)."""
    pts = np.asarray(landmarks_px, dtype=np.float32)[:, :2]
    origin = np.array([region.x0, region.y0], dtype=np.float32)
    scale = np.array([region.width, region.height], dtype=np.float32)
    return (pts - origin) / np.maximum(scale, 1e-6)


def box_from_points(points_px: np.ndarray, score: float = 1.0, source: str = "") -> FaceBox:
    """Tight box around (K, >=2) pixel points."""
    xy = np.asarray(points_px)[:, :2]
    x0, y0 = xy.min(axis=0)
    x1, y1 = xy.max(axis=0)
    return FaceBox(float(x0), float(y0), float(x1), float(y1), score, source)


def reframe(region: FaceBox, margin_from: float, margin_to: float) -> FaceBox:
    """The `square_box` of the same face with another margin: ``region`` was made with ``margin_from``; the result
    has the same centre and side x (1 + 2 * margin_to) / (1 + 2 * margin_from)."""
    cx, cy = region.center
    half = 0.5 * max(region.width, region.height) * (0.5 + margin_to) / (0.5 + margin_from)
    return FaceBox(cx - half, cy - half, cx + half, cy + half, region.score, region.source)


def face_view(frame, crop_box, margin: float, crop_margin: float = DEFAULT_MARGIN) -> np.ndarray:
    """The face's square crop with ``margin`` (no resize) as an (h, w, 3) uint8 array, from ``crop_box``: the
    (4,) x0, y0, x1, y1 region the face's prior records (`FacePrior.crop_boxes[t]`, made with ``crop_margin``).

    What an image MLLM with ``visual_input: face`` puts behind `<image>` at training, evaluation and in the API alike,
    so its tower sees the framing it was trained on. ``crop_box`` None or NaN (no face on the frame): the whole frame.
    """
    rgb = to_rgb_array(frame)
    box = None if crop_box is None else np.asarray(crop_box, np.float64)
    if box is None or box.shape != (4,) or np.isnan(box).any():
        return rgb
    return crop_region(rgb, reframe(FaceBox(*(float(v) for v in box)), crop_margin, margin))
