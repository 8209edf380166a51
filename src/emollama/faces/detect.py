"""Face detection + 478 landmarks + 52 blendshapes + head pose (MediaPipe FaceLandmarker), with a second detector.

The FaceLandmarker bundle's own detector is short-range: it misses small faces, group photos and some large photos.
So `FaceDetector` runs, per image:

1. FaceLandmarker on the whole image (IMAGE mode, or VIDEO mode with timestamps for `detect_video`);
2. BlazeFace full-range (`emollama.faces.blazeface`) on the whole image; each box that no mesh covers is cropped
   (square, ``crop_expand`` margin) and the crop is landmarked, landmarks mapped back to the image;
3. on an image larger than ``tile_side`` (IMAGE mode only): BlazeFace full-range on overlapping ``tile_side`` tiles,
   then step 2's crop landmarking. Scaled whole to the model's 192 px input, the faces of a group photo fall below
   its smallest face (a 2x2 tile of a 5-person photo: 4 of 20 found without this step);
4. only when 1-3 found nothing on a large image (shorter side >= ``tile_min_side``; IMAGE mode only): BlazeFace
   short-range on overlapping tiles, then step 2's crop landmarking.

A face whose crop yields no mesh is kept with its box only (no landmarks/blendshapes) when its detector score is at
least ``min_box_only_score``. 0 faces is a normal result. At most ``max_faces`` faces are returned, the largest;
``FaceDetector.last_found`` tells how many there were before that cap.
Input is any RGB uint8 array; grayscale / RGBA are converted first (MediaPipe crashes on non-3-channel input).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace

import numpy as np

from emollama.faces._deps import require
from emollama.faces._quiet import native_quiet
from emollama.faces.align import box_from_points, crop_region, square_box, to_rgb_array
from emollama.faces.blazeface import BlazeFace
from emollama.faces.find import DEFAULT_MAX_FACES
from emollama.faces.types import FaceBox

log = logging.getLogger(__name__)


@dataclass
class DetectedFace:
    """One face. ``box.score``: the BlazeFace score when a BlazeFace box matches the face, else the landmarker
    detection threshold the face passed (a lower bound; MediaPipe's landmarker exposes no per-face score)."""

    box: FaceBox
    landmarks: np.ndarray | None = None  # (478, 3) image pixels (z scaled like x)
    blendshapes: dict[str, float] = field(default_factory=dict)
    matrix: np.ndarray | None = None  # (4, 4) facial transformation matrix

    @property
    def pose(self) -> tuple[float, float, float] | None:
        return None if self.matrix is None else pose_from_matrix(self.matrix)


def pose_from_matrix(m: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) radians from MediaPipe's canonical-face -> camera matrix, R = Rz(roll) Ry(yaw) Rx(pitch).

    Frontal face: (0, 0, 0). Yaw is rotation about the vertical axis, pitch about the horizontal, roll in-plane.
    """
    r = np.asarray(m, dtype=np.float64)[:3, :3]
    yaw = math.asin(float(np.clip(-r[2, 0], -1.0, 1.0)))
    pitch = math.atan2(r[2, 1], r[2, 2])
    roll = math.atan2(r[1, 0], r[0, 0])
    return (yaw, pitch, roll)




@dataclass(frozen=True)
class DetectorConfig:
    max_faces: int = DEFAULT_MAX_FACES  # per image / frame: the largest are kept
    min_detection_confidence: float = 0.5  # landmarker's internal detector and BlazeFace
    min_presence_confidence: float = 0.5
    second_detector: bool = True  # BlazeFace full-range pass (step 2)
    tile_small_faces: bool = True  # step 3
    tile_side: int = 800  # 100 px faces are ~24 px at the full-range model's input on such a tile
    tile_large_images: bool = True  # step 4
    tile_min_side: int = 800
    crop_expand: float = 0.6  # crop for landmarking = box side x (1 + 2 x crop_expand)
    match_iou: float = 0.3  # a BlazeFace box with IoU above this (or centre inside) a mesh box is that face
    dedupe_iou: float = 0.5
    # a box that no landmark mesh confirms is kept only above this score: on the no-face clip BlazeFace fires at 0.54
    # on lettering, while the real box-only face of the grayscale photo scores 0.73
    min_box_only_score: float = 0.65


class Landmarker:
    """Thin wrapper over ``mediapipe.tasks.python.vision.FaceLandmarker`` returning `DetectedFace` in pixels."""

    def __init__(self, mode: str = "image", num_faces: int = 10, cfg: DetectorConfig | None = None, model_path=None):
        from emollama.assets import resolve

        cfg = cfg or DetectorConfig()
        self.mp = require("mediapipe")
        vision = require("mediapipe.tasks.python.vision")
        base = require("mediapipe.tasks.python").BaseOptions
        modes = {"image": vision.RunningMode.IMAGE, "video": vision.RunningMode.VIDEO}
        if mode not in modes:
            raise ValueError(f"Landmarker mode must be 'image' or 'video', got {mode!r}")
        opts = vision.FaceLandmarkerOptions(
            base_options=base(model_asset_path=str(model_path or resolve("face_landmarker"))),
            running_mode=modes[mode],
            num_faces=num_faces,
            min_face_detection_confidence=cfg.min_detection_confidence,
            min_face_presence_confidence=cfg.min_presence_confidence,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        self.mode, self.min_score = mode, cfg.min_detection_confidence
        with native_quiet():  # graph start-up logs ~5 native lines (GPU probe, XNNPACK, feedback manager)
            self._lm = vision.FaceLandmarker.create_from_options(opts)
        self._last_ts = -1

    def detect(
        self, rgb: np.ndarray, timestamp_ms: int | None = None, score: float | None = None
    ) -> list[DetectedFace]:
        image = self.mp.Image(image_format=self.mp.ImageFormat.SRGB, data=rgb)
        if self.mode == "video":
            if timestamp_ms is None or timestamp_ms <= self._last_ts:
                raise ValueError(f"VIDEO mode needs increasing timestamps; got {timestamp_ms} after {self._last_ts}")
            self._last_ts = timestamp_ms
            with native_quiet():
                res = self._lm.detect_for_video(image, int(timestamp_ms))
        else:
            with native_quiet():
                res = self._lm.detect(image)
        h, w = rgb.shape[:2]
        score = self.min_score if score is None else score
        out = []
        for i, lms in enumerate(res.face_landmarks):
            pts = np.array([(p.x * w, p.y * h, p.z * w) for p in lms], dtype=np.float32)
            bs = {c.category_name: float(c.score) for c in res.face_blendshapes[i]} if res.face_blendshapes else {}
            mat = np.asarray(res.facial_transformation_matrixes[i]) if res.facial_transformation_matrixes else None
            out.append(DetectedFace(box_from_points(pts, score, "facelandmarker"), pts, bs, mat))
        return out

    def close(self) -> None:
        with native_quiet():
            self._lm.close()


def _shift(face: DetectedFace, region: FaceBox, crop_w: int, box: FaceBox) -> DetectedFace:
    """Map a face found on a crop of ``region`` (crop is crop_w px wide) back to image pixels."""
    k = region.width / crop_w
    pts = face.landmarks * np.float32(k) + np.array([region.x0, region.y0, 0.0], dtype=np.float32)
    return DetectedFace(box_from_points(pts, box.score, box.source), pts, face.blendshapes, face.matrix)


def _overlap(a: FaceBox, b: FaceBox) -> float:
    inter = max(0.0, min(a.x1, b.x1) - max(a.x0, b.x0)) * max(0.0, min(a.y1, b.y1) - max(a.y0, b.y0))
    return inter / max(1e-9, min(a.area, b.area))


class FaceDetector:
    """``detect(image)`` / ``detect_video(frame, timestamp_ms)`` -> list[DetectedFace], largest face first."""

    def __init__(self, cfg: DetectorConfig | None = None) -> None:
        self.cfg = cfg or DetectorConfig()
        self._image_lm: Landmarker | None = None
        self._video_lm: Landmarker | None = None
        self._crop_lm: Landmarker | None = None
        self._full = BlazeFace("full", min_score=self.cfg.min_detection_confidence)
        self._short = BlazeFace("short", min_score=self.cfg.min_detection_confidence)
        self.last_found = 0  # faces of the last detect / detect_video call before the max_faces cap

    def _landmarker(self, which: str) -> Landmarker:
        attr = f"_{which}_lm"
        if getattr(self, attr) is None:
            mode = "video" if which == "video" else "image"
            cfg = self.cfg
            if which == "crop":  # the box is already a confirmed face: let the mesh's own detector be lenient
                c = self.cfg
                cfg = replace(c, min_detection_confidence=0.6 * c.min_detection_confidence)
            setattr(self, attr, Landmarker(mode, 1 if which == "crop" else self.cfg.max_faces, cfg))
        return getattr(self, attr)

    def load(self) -> None:
        """Load every model now (otherwise lazily, on first use)."""
        self._landmarker("image")
        self._landmarker("crop")
        self._full._load()
        self._short._load()

    def detect(self, image) -> list[DetectedFace]:
        rgb = to_rgb_array(image)
        return self._run(rgb, self._landmarker("image").detect(rgb), tiles=True)

    def detect_video(self, frame, timestamp_ms: int) -> list[DetectedFace]:
        rgb = to_rgb_array(frame)
        return self._run(rgb, self._landmarker("video").detect(rgb, timestamp_ms), tiles=False)

    def _run(self, rgb: np.ndarray, faces: list[DetectedFace], tiles: bool) -> list[DetectedFace]:
        """Steps 2-4 after the landmarker's ``faces``; ``tiles``: IMAGE mode (video frames skip the tiled steps)."""
        c = self.cfg
        if c.second_detector:  # also when the landmarker hit the cap: faces beyond it show that the cap truncated
            faces = self._add_boxes(rgb, faces, self._full.detect(rgb))
        if tiles and c.tile_small_faces and max(rgb.shape[:2]) > c.tile_side:
            faces = self._add_boxes(rgb, faces, self._full.detect_tiled(rgb, side=c.tile_side))
        if not faces and tiles and c.tile_large_images and min(rgb.shape[:2]) >= c.tile_min_side:
            faces = self._add_boxes(rgb, faces, self._short.detect_tiled(rgb))
        faces = self._dedupe(faces)
        self.last_found = len(faces)
        if len(faces) > c.max_faces:
            log.info("%d faces found, keeping the largest %d (max_faces)", len(faces), c.max_faces)
        return sorted(faces, key=lambda f: -f.box.area)[: c.max_faces]

    def _add_boxes(self, rgb: np.ndarray, faces: list[DetectedFace], boxes: list[FaceBox]) -> list[DetectedFace]:
        faces = list(faces)
        for b in boxes:
            hit = next((f for f in faces if f.box.iou(b) > self.cfg.match_iou or f.box.contains(*b.center)), None)
            if hit is not None:  # a mesh already covers it: adopt the detector's score
                if hit.box.source == "facelandmarker":
                    hit.box = FaceBox(*hit.box.xyxy, b.score, f"facelandmarker+{b.source}")
                continue
            region = square_box(b, self.cfg.crop_expand)
            crop = crop_region(rgb, region)
            found = self._landmarker("crop").detect(crop, score=b.score)
            found = [f for f in found if b.contains(*_shift(f, region, crop.shape[1], b).box.center)]
            if found:
                face = _shift(found[0], region, crop.shape[1], b)
                face.box = FaceBox(*face.box.xyxy, b.score, f"{b.source}+facelandmarker")
                faces.append(face)
            elif b.score >= self.cfg.min_box_only_score:
                faces.append(DetectedFace(b))
        return faces

    def _dedupe(self, faces: list[DetectedFace]) -> list[DetectedFace]:
        """Drop duplicates: IoU > dedupe_iou, or for box-only faces >30 % of the smaller box covered."""
        keep: list[DetectedFace] = []
        for f in sorted(faces, key=lambda f: (f.landmarks is None, -f.box.score)):
            if all(
                f.box.iou(k.box) <= self.cfg.dedupe_iou and not (f.landmarks is None and _overlap(f.box, k.box) > 0.3)
                for k in keep
            ):
                keep.append(f)
        return keep

    def reset_video(self) -> None:
        """Forget VIDEO-mode tracking state and timestamps: call before each new clip so a clip's results never
        depend on which clip came before (and its timestamps may restart at 0)."""
        if self._video_lm is not None:
            self._video_lm.close()
            self._video_lm = None

    def close(self) -> None:
        for lm in (self._image_lm, self._video_lm, self._crop_lm):
            if lm is not None:
                lm.close()
        self._image_lm = self._video_lm = self._crop_lm = None
