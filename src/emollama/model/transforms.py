"""Frame preprocessing from a tower's `Preprocess` declaration (PIL + numpy + torch; no torchvision)."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from emollama.model.towers import Preprocess

_RESAMPLE = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR}


def to_pil_rgb(frame: Image.Image | np.ndarray) -> Image.Image:
    """Any PIL image or (H, W[, C]) uint8 array -> RGB PIL image (grayscale and RGBA are converted)."""
    if isinstance(frame, np.ndarray):
        if frame.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 arrays, got {frame.dtype}")
        frame = Image.fromarray(frame)
    return frame if frame.mode == "RGB" else frame.convert("RGB")


def expand_to_square(img: Image.Image, mean: tuple[float, float, float]) -> Image.Image:
    """Centre the image on a square canvas filled with the mean colour (LLaVA 'pad' rule)."""
    w, h = img.size
    if w == h:
        return img
    side = max(w, h)
    canvas = Image.new("RGB", (side, side), tuple(int(m * 255) for m in mean))
    canvas.paste(img, ((side - w) // 2, (side - h) // 2))
    return canvas


def shortest_edge_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(new width, new height) of a shortest-edge resize to ``size``, with CLIPImageProcessor's arithmetic.

    transformers' `get_resize_output_image_size(default_to_square=False)` sets the short side to ``size`` and the
    long side to ``int(size * long / short)``: truncation, not rounding (640x480 at 224 -> 298x224, not 299x224).
    Matching it keeps our tower inputs equal to LLaMA-VID's CLIP image processor.
    """
    short, long = (width, height) if width <= height else (height, width)
    new_long = int(size * long / short)
    return (size, new_long) if width <= height else (new_long, size)


def resize_crop(frame: Image.Image | np.ndarray, pp: Preprocess, pad: bool | None = None) -> np.ndarray:
    """Shortest-edge resize + centre crop (+ optional pad to square first). Returns (size, size, 3) uint8.

    A (size, size, 3) uint8 array is returned as is: the PIL steps are the identity on it (a square image needs no
    padding, a same-size resize is a copy, the crop covers it), so frames cached after this step (`emollama
    prepare --frames-for-model`) give bit-identical tower inputs.
    """
    if isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.shape == (pp.size, pp.size, 3):
        return frame
    img = to_pil_rgb(frame)
    if pp.pad_to_square if pad is None else pad:
        img = expand_to_square(img, pp.mean)
    nw, nh = shortest_edge_size(*img.size, pp.size)
    img = img.resize((nw, nh), _RESAMPLE[pp.resample])
    left, top = (nw - pp.size) // 2, (nh - pp.size) // 2
    img = img.crop((left, top, left + pp.size, top + pp.size))
    return np.asarray(img, dtype=np.uint8)


def normalise(frame: np.ndarray, pp: Preprocess) -> torch.Tensor:
    """(S, S, 3) uint8 -> (3, S, S) float32: rescale 1/255, subtract mean, divide by std."""
    arr = np.asarray(frame, dtype=np.float32) / 255.0
    arr = (arr - np.asarray(pp.mean, dtype=np.float32)) / np.asarray(pp.std, dtype=np.float32)
    return torch.from_numpy(arr.transpose(2, 0, 1).copy())


def preprocess_frame(frame: Image.Image | np.ndarray, pp: Preprocess, pad: bool | None = None) -> torch.Tensor:
    """`resize_crop` (uint8) then `normalise`. Returns (3, size, size) float32."""
    return normalise(resize_crop(frame, pp, pad), pp)


def tower_crops(crops: np.ndarray | None, has_crop: np.ndarray, pp: Preprocess | None) -> torch.Tensor | None:
    """(T, S, S, 3) uint8 face crops -> (T, 3, size, size) float32 for the vision tower, zeros on frames without a
    crop (``has_crop`` (T,) False); None when there are no crops or no ``pp``."""
    if crops is None or pp is None:
        return None
    return torch.stack([preprocess_frame(c, pp) if ok else torch.zeros(3, pp.size, pp.size)
                        for c, ok in zip(crops, np.asarray(has_crop, bool), strict=True)])


def preprocess_frames(frames: list, pp: Preprocess, pad: bool | None = None) -> torch.Tensor:
    """List of T frames -> (T, 3, size, size)."""
    return torch.stack([preprocess_frame(f, pp, pad) for f in frames])
