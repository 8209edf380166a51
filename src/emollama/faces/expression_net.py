"""The learned expression model: a small residual CNN trained on FER2013 by `emollama train-expression`.

Input is the analyzer's own face crop, made by `expression_input` at training and at inference alike: the face box
made square with ``margin`` x side added on every side (`align.square_box`, zero padding outside the image), every
pixel outside the face box itself set to zero if ``mask_context`` (off in the shipped recipe, see
`ExpressionNetConfig`), converted to grey (ITU-R 601 luma, as PIL does) and resized to ``size`` x ``size``. Grey by
design: FER2013 is grey, and a grey input cannot over-fit colour casts of one camera. Each crop is standardised to
zero mean and unit variance inside the network, so brightness and contrast shifts between datasets cancel out.

Output: 7 logits in `FER_LABELS` order; `LearnedExpression` divides them by the calibrated temperature.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from emollama.faces.align import crop_region, square_box
from emollama.faces.expression import FER_LABELS, model_identity
from emollama.faces.types import FaceBox

log = logging.getLogger(__name__)

DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "resources" / "expression" / "emonet_fer2013.safetensors"


@dataclass(frozen=True)
class ExpressionNetConfig:
    """Shape of the network and of its input crop (stored in the weights file's metadata)."""

    # Compute moved from full resolution to 12 x 12 (the 68.9 %-WAR model had 24 channels at 48 x 48 and 2 blocks in
    # stage 3): the 48 x 48 stage was ~23 % of a training step (ad-hoc timing), memory-bound, for low-level edges; a
    # third 96-channel block adds depth where expression parts meet. Eager training 431 -> 562 images/s
    # (bench/p11_expression_compile.py), inference 4.3 -> 4.5 ms a face (bench/p7_expression.py); 70 epochs took
    # 56.5 min (52 took 48.2) and gave 68.9 -> 70.0 % WAR on PublicTest, 68.4 -> 68.9 held out; a second seed gave
    # 68.2 % on PublicTest (docs/expression_model.md).
    widths: tuple[int, ...] = (16, 48, 96, 192)  # channels per stage; stages 2.. halve the resolution
    blocks: tuple[int, ...] = (1, 2, 3, 2)  # residual blocks per stage
    size: int = 48  # input side in px (FER2013's native size)
    margin: float = 0.1  # crop margin around the face box, fraction of the square side
    dropout: float = 0.1  # 0.3 in the previous, under-fitting model (see AugmentConfig)
    labels: tuple[str, ...] = FER_LABELS
    # average the logits of the crop and its mirror image (one batch of 2): on the f19cc63-recipe model +0.7 WAR on
    # held-out val and +0.5 on PublicTest, 2.5 -> 3.9 ms a face at batch 1 (docs/expression_model.md). On the
    # earlier, under-fitting model it had measured +0.4 / -0.7, so it was off then.
    flip_tta: bool = True
    # Zero every pixel outside the face box (the margin keeps the square's framing, not the context). FER2013's
    # 48 x 48 images are themselves face crops: the margin falls outside the image in 96 % of the training crops and
    # is zero-padded there, so a network trained with context learns black borders, while a photo's margin shows
    # hair and background. The shipped model (context kept) loses 4.3 WAR / 7.2 UAR points when PublicTest's faces
    # are re-rendered as 640 x 480 photos (bench/p13_expression_context.py). Trained with the mask (the same recipe
    # otherwise, `--context mask`) it lost 1.7 / 2.0 there, but scored 69.0 % WAR on the 48 px files vs 70.0 %
    # (held out 69.9 vs 68.9): it missed the shipping rule fixed before the run, so the recipe keeps the context.
    # Files written before this field were trained with the context kept, so a stored config without it means False.
    mask_context: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ExpressionNetConfig:
        d = json.loads(text)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def expression_input(rgb: np.ndarray, box: FaceBox, cfg: ExpressionNetConfig | None = None) -> np.ndarray:
    """(H, W, 3) uint8 image + face box -> (size, size) uint8 grey crop, the network's input."""
    cfg = cfg or ExpressionNetConfig()
    region = square_box(box, cfg.margin)
    crop = crop_region(rgb, region)
    if cfg.mask_context:
        crop = _zero_outside(crop, region, box)
    return np.asarray(Image.fromarray(crop).convert("L").resize((cfg.size, cfg.size), Image.Resampling.BILINEAR))


def _zero_outside(crop: np.ndarray, region: FaceBox, box: FaceBox) -> np.ndarray:
    """(h, w, 3) crop of ``region`` (as `crop_region` cut it) with the pixels outside ``box`` set to zero, in place.

    The box is rounded outwards to whole pixels, like the region, so a box that covers the image keeps it all."""
    ox, oy = int(np.floor(region.x0)), int(np.floor(region.y0))
    h, w = crop.shape[:2]
    x0, y0 = min(w, max(0, int(np.floor(box.x0)) - ox)), min(h, max(0, int(np.floor(box.y0)) - oy))
    x1, y1 = max(x0, min(w, int(np.ceil(box.x1)) - ox)), max(y0, min(h, int(np.ceil(box.y1)) - oy))
    crop[:y0] = 0
    crop[y1:] = 0
    crop[:, :x0] = 0
    crop[:, x1:] = 0
    return crop


class LearnedExpression:
    """``predict_face(rgb, box) -> {label: prob}`` with the shipped (or given) weights; loads lazily.

    Args:
        weights: a safetensors file written by `emollama train-expression` (default: the one in the package).
        threads: torch intra-op threads for inference (batch 1 is fastest on 1-2 threads).
    """

    labels = FER_LABELS
    name = "emonet-fer2013"

    def __init__(self, weights: str | Path | None = None, threads: int | None = None) -> None:
        self.weights = Path(weights) if weights else DEFAULT_WEIGHTS
        self.threads = threads
        self._net = None
        self.cfg = ExpressionNetConfig()
        self.temperature = 1.0
        self.metadata: dict[str, str] = {}
        self._identity: str | None = None

    @property
    def identity(self) -> str:
        """`model_identity` of the weights file, e.g. ``"emonet-fer2013 sha256:54379f266c34"``."""
        if self._identity is None:
            if not self.weights.is_file():
                return self.name  # not cached: `load` will say the file is missing
            self._identity = model_identity(self.name, self.weights)
        return self._identity

    def load(self):
        if self._net is None:
            from emollama.faces._expression_torch import load_network

            if not self.weights.is_file():
                raise FileNotFoundError(
                    f"expression weights {self.weights} not found; reinstall emollama, pass --expression "
                    f"mini-xception, or train them with `emollama train-expression`")
            self._net, self.cfg, self.metadata = load_network(self.weights)
            self.temperature = float(self.metadata.get("temperature", 1.0))
            self.labels = self.cfg.labels
        return self._net

    def predict_batch(self, crops: np.ndarray) -> np.ndarray:
        """(B, size, size) uint8 grey crops -> (B, 7) calibrated probabilities in ``labels`` order."""
        from emollama.faces._expression_torch import predict_probs

        return predict_probs(self.load(), crops, self.temperature, self.threads)

    def predict_face(self, rgb: np.ndarray, box: FaceBox) -> dict[str, float]:
        """Probabilities for the face at ``box`` in the (H, W, 3) uint8 image."""
        self.load()
        p = self.predict_batch(expression_input(rgb, box, self.cfg)[None])[0]
        return dict(zip(self.labels, map(float, p), strict=True))
