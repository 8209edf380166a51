"""BlazeFace short- and full-range detectors run directly with ai-edge-litert (no mediapipe graph needed).

The `.tflite` files are MediaPipe's (assets ``blazeface_full_range`` / ``blazeface_short_range``). Anchors, box
decoding and weighted NMS follow MediaPipe's face_detection graph options:

| model       | input | anchors (strides)            | min score | NMS IoU |
|-------------|-------|------------------------------|-----------|---------|
| full range  | 192   | 48x48x1 = 2304 (4)           | 0.5       | 0.3     |
| short range | 128   | 16x16x2 + 8x8x6 = 896 (8,16) | 0.5       | 0.3     |

Input: RGB letterboxed to a square (aspect kept, zero border), scaled to [-1, 1].
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from PIL import Image

from emollama.faces._deps import require
from emollama.faces._quiet import native_quiet
from emollama.faces.types import FaceBox

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BlazeSpec:
    asset: str
    size: int
    strides: tuple[int, ...]
    anchors_per_cell: tuple[int, ...]  # per distinct stride


SPECS = {
    "full": BlazeSpec("blazeface_full_range", 192, (4,), (1,)),
    "short": BlazeSpec("blazeface_short_range", 128, (8, 16), (2, 6)),
}


def make_anchors(spec: BlazeSpec) -> np.ndarray:
    """(N, 2) anchor centres in [0, 1] (fixed anchor size: width = height = 1)."""
    out = []
    for stride, n in zip(spec.strides, spec.anchors_per_cell, strict=True):
        fm = int(np.ceil(spec.size / stride))
        ys, xs = np.meshgrid((np.arange(fm) + 0.5) / fm, (np.arange(fm) + 0.5) / fm, indexing="ij")
        centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(centres, n, axis=0))
    return np.concatenate(out).astype(np.float32)


def weighted_nms(boxes: np.ndarray, scores: np.ndarray, iou_thresh: float) -> list[tuple[np.ndarray, float]]:
    """MediaPipe's weighted NMS: each cluster (IoU > thresh with its best box) becomes the score-weighted mean box."""
    order = np.argsort(-scores)
    boxes, scores = boxes[order], scores[order]
    alive = np.ones(len(boxes), dtype=bool)
    out = []
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    for i in range(len(boxes)):
        if not alive[i]:
            continue
        iw = np.clip(np.minimum(boxes[i, 2], boxes[:, 2]) - np.maximum(boxes[i, 0], boxes[:, 0]), 0, None)
        ih = np.clip(np.minimum(boxes[i, 3], boxes[:, 3]) - np.maximum(boxes[i, 1], boxes[:, 1]), 0, None)
        inter = iw * ih
        iou = inter / np.maximum(areas[i] + areas - inter, 1e-9)
        members = alive & (iou > iou_thresh)
        members[i] = True
        w = scores[members]
        out.append(((boxes[members] * w[:, None]).sum(0) / w.sum(), float(scores[i])))
        alive &= ~members
    return out


class BlazeFace:
    """``detect(rgb) -> list[FaceBox]`` in image pixels, best first."""

    def __init__(self, kind: str = "full", min_score: float = 0.5, iou_thresh: float = 0.3, model_path=None) -> None:
        if kind not in SPECS:
            raise ValueError(f"BlazeFace kind must be one of {sorted(SPECS)}, got {kind!r}")
        self.kind, self.spec, self.min_score, self.iou_thresh = kind, SPECS[kind], min_score, iou_thresh
        self.anchors = make_anchors(self.spec)
        self._model_path = model_path
        self._interp = None

    def _load(self):
        if self._interp is None:
            from emollama.assets import resolve

            litert = require("ai_edge_litert.interpreter")
            path = self._model_path or resolve(self.spec.asset)
            with native_quiet():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
                self._interp = litert.Interpreter(model_path=str(path), num_threads=1)
                self._interp.allocate_tensors()
            outs = sorted(self._interp.get_output_details(), key=lambda d: -int(d["shape"][-1]))
            self._in = self._interp.get_input_details()[0]["index"]
            self._box_idx, self._score_idx = outs[0]["index"], outs[1]["index"]
        return self._interp

    def detect(self, rgb: np.ndarray) -> list[FaceBox]:
        interp = self._load()
        s = self.spec.size
        h, w = rgb.shape[:2]
        scale = s / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        px, py = (s - nw) // 2, (s - nh) // 2
        canvas = np.zeros((s, s, 3), dtype=np.float32)
        small = np.asarray(Image.fromarray(rgb).resize((nw, nh), Image.Resampling.BILINEAR), dtype=np.float32)
        canvas[py : py + nh, px : px + nw] = small / 127.5 - 1.0
        interp.set_tensor(self._in, canvas[None])
        with native_quiet():
            interp.invoke()
        raw = interp.get_tensor(self._box_idx)[0]
        logits = interp.get_tensor(self._score_idx)[0, :, 0]
        scores = (1.0 / (1.0 + np.exp(-np.clip(logits.astype(np.float64), -100, 100)))).astype(np.float32)
        keep = scores >= self.min_score
        if not keep.any():
            return []
        raw, scores, anchors = raw[keep], scores[keep], self.anchors[keep]
        cx = raw[:, 0] / s + anchors[:, 0]
        cy = raw[:, 1] / s + anchors[:, 1]
        bw, bh = raw[:, 2] / s, raw[:, 3] / s
        boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)
        out = []
        for b, sc in weighted_nms(boxes, scores, self.iou_thresh):
            x0, y0, x1, y1 = (b * s - np.array([px, py, px, py])) / scale
            out.append(FaceBox(float(x0), float(y0), float(x1), float(y1), sc, f"blazeface-{self.kind}"))
        return out

    def detect_tiled(self, rgb: np.ndarray, tile_frac: float = 0.5, side: int | None = None) -> list[FaceBox]:
        """Run on overlapping square tiles (side = ``side`` px, else tile_frac x shorter side; stride half a tile)
        and merge.

        Short range: big photos where the face is small relative to the frame but too large/turned for the
        full-range model. Full range with a fixed ``side``: group photos, whose faces shrink below the model's
        smallest face once the whole image is scaled to its 192 px input.
        """
        h, w = rgb.shape[:2]
        side = max(32, min(h, w, side) if side else int(min(h, w) * tile_frac))
        step = max(1, side // 2)
        found: list[FaceBox] = []
        for y in sorted({*range(0, max(1, h - side + 1), step), max(0, h - side)}):
            for x in sorted({*range(0, max(1, w - side + 1), step), max(0, w - side)}):
                for b in self.detect(np.ascontiguousarray(rgb[y : y + side, x : x + side])):
                    found.append(FaceBox(b.x0 + x, b.y0 + y, b.x1 + x, b.y1 + y, b.score, b.source + "-tiled"))
        if not found:
            return []
        arr = np.array([b.xyxy for b in found], dtype=np.float32)
        merged = weighted_nms(arr, np.array([b.score for b in found], dtype=np.float32), self.iou_thresh)
        return [FaceBox(*map(float, b), sc, found[0].source) for b, sc in merged]
