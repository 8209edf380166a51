"""Which faces to analyse in an image: ``--faces auto|detect|whole-image``.

Most FER datasets ship faces that are already tight 48x48 crops, on which a detector often finds nothing (10.5 % of
FER2013's PublicTest). ``auto`` detects first and, only when nothing is found on a small image (longer side at most
``WHOLE_IMAGE_MAX_SIDE`` px), treats the whole image as one face. ``whole-image`` always does. The whole-image face
still gets landmarks and blendshapes where possible: the image is upscaled and padded (a tight crop touches the image
border, which the face detectors need to see around the face) and the mesh found there is mapped back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

from emollama.faces.types import FaceBox

FaceMode = Literal["auto", "detect", "whole-image"]
FACE_MODES: tuple[str, ...] = ("auto", "detect", "whole-image")
WHOLE_IMAGE_MAX_SIDE = 160  # px: larger images are photos with context, where "no face" is a real answer
WHOLE_IMAGE_SOURCE = "whole-image"
DEFAULT_MAX_FACES = 100  # group and class photos hold dozens of faces; a cap of 10 dropped them silently
_UPSCALE_TO = 256  # px: the padded copy's face side; MediaPipe's detectors work at 128-256 px
_PAD = 0.5  # fraction of the face side added on each side of the padded copy


def check_face_mode(mode: str) -> str:
    """``mode`` if valid, else ValueError naming the choices."""
    if mode not in FACE_MODES:
        raise ValueError(f"faces mode must be one of {', '.join(FACE_MODES)}; got {mode!r}")
    return mode


def whole_image_box(rgb: np.ndarray) -> FaceBox:
    """The whole (H, W, 3) image as one face box, source ``whole-image``."""
    h, w = rgb.shape[:2]
    return FaceBox(0.0, 0.0, float(w), float(h), 1.0, WHOLE_IMAGE_SOURCE)


def padded_copy(rgb: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(upscaled + edge-padded (H', W', 3) copy, scale, pad px): image pixel p maps to p * scale + pad."""
    h, w = rgb.shape[:2]
    scale = _UPSCALE_TO / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    up = np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BICUBIC))
    pad = int(round(_PAD * _UPSCALE_TO))
    return np.pad(up, ((pad, pad), (pad, pad), (0, 0)), mode="edge"), scale, float(pad)


@dataclass
class FaceFinder:
    """Applies a face mode on top of a detector: ``find(rgb) -> list[DetectedFace]`` (largest first).

    Args:
        detector: an `emollama.faces.detect.FaceDetector` (or anything with ``detect(rgb)``).
        mode: ``auto`` | ``detect`` | ``whole-image``.
        landmarks: compute landmarks for whole-image faces on the padded copy (off for training crops: it costs
            a second detector pass and the crop does not use it).
    """

    detector: object
    mode: str = "auto"
    landmarks: bool = True

    def __post_init__(self) -> None:
        check_face_mode(self.mode)

    def wants_whole_image(self, rgb: np.ndarray, found: int) -> bool:
        if self.mode == "whole-image":
            return True
        return self.mode == "auto" and found == 0 and max(rgb.shape[:2]) <= WHOLE_IMAGE_MAX_SIDE

    def find(self, rgb: np.ndarray) -> list:
        """Faces of one (H, W, 3) uint8 RGB image according to the mode."""
        faces = [] if self.mode == "whole-image" else self.detector.detect(rgb)
        if not self.wants_whole_image(rgb, len(faces)):
            return faces
        return [self.whole_image_face(rgb)]

    def whole_image_face(self, rgb: np.ndarray):
        """A `DetectedFace` covering the whole image, with the mesh from the padded copy when one is found."""
        from emollama.faces.detect import DetectedFace

        face = DetectedFace(whole_image_box(rgb))
        if not self.landmarks:
            return face
        big, scale, pad = padded_copy(rgb)
        found = [f for f in self.detector.detect(big) if f.landmarks is not None]
        if found:
            best = found[0]  # largest first
            pts = (best.landmarks - np.array([pad, pad, 0.0], dtype=np.float32)) / np.float32(scale)
            face.landmarks, face.blendshapes, face.matrix = pts.astype(np.float32), best.blendshapes, best.matrix
        return face
