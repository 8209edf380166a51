"""The face contract: the types and vocabularies every layer above `faces` agrees on, in one import.

* `FacePrior`: one face over T frames (landmarks, blendshapes, pose, age/gender/race probabilities, crops), what
  the prior extractors write, the caches store and the model packs into tensors (`emollama.model.face_inputs`).
* AGR attributes: `AGE_GROUPS`, `GENDERS`, `age_group`, `AGRAttributes` and the AGR prompt text (`render_agr`,
  `emollama.faces.agr`).
* Label vocabularies and the synonym-aware answer parser (`parse_answer`, `resolve_label`, `canonical_name`,
  `DATASET_CLASSES`; `emollama.faces.labels`), used by instruction data, gates and evaluation alike.
* The landmark region table (`region_table`, resources/landmark_regions.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import yaml

from emollama.faces.agr import AGE_GROUPS, AGR_TEMPLATES, AGRAttributes, age_group, render_agr
from emollama.faces.labels import (
    DATASET_CLASSES,
    POLICIES,
    STATUSES,
    AnswerParser,
    ParseResult,
    canonical_name,
    load_vocabulary,
    normalize,
    parse_answer,
    resolve_label,
)

__all__ = ["AGE_GROUPS", "AGR_TEMPLATES", "DATASET_CLASSES", "GENDERS", "POLICIES", "STATUSES", "AGRAttributes",
           "AnswerParser", "ArrayLike", "FacePrior", "ParseResult", "age_group", "canonical_name", "load_vocabulary",
           "normalize", "parse_answer", "region_table", "render_agr", "resolve_label"]

if TYPE_CHECKING:  # torch only for the annotation: the face library and the label parser stay torch-free
    import torch

ArrayLike: TypeAlias = "np.ndarray | torch.Tensor"
GENDERS = ("female", "male")  # order of FacePrior.gender_probs (emollama.priors.from_faces writes them so)


@dataclass
class FacePrior:
    """Facial prior of one face over T frames. Every array's first dim is T.

    Attributes:
        landmarks: (T, K, 2) x, y normalised to [0, 1] of the face crop.
        blendshapes: (T, B) AU-like scores in [0, 1] (MediaPipe's 52 blendshapes, or zeros).
        pose: (T, 3) yaw, pitch, roll in radians.
        age_probs: (T, A) distribution over age groups; gender_probs: (T, G); race_probs: (T, R) or None.
        embedding: (T, E) global face embedding (e.g. FaceXFormer pooled map) or None.
        crops: (T, 3, H, W) face crops preprocessed for the vision tower, or None.
        valid: (T,) bool, False where no face was found on that frame.
        crop_boxes: (T, 4) float x0, y0, x1, y1 in pixels of the frame: the square crop region (the analyzer's
            rule, `emollama.faces.align.crop_face`) the landmarks are normalised to and ``crops`` show; NaN on
            frames without a crop; None when unknown. It lets training cut the very same crop out of the media.
    """

    landmarks: ArrayLike
    blendshapes: ArrayLike
    pose: ArrayLike
    age_probs: ArrayLike
    gender_probs: ArrayLike
    race_probs: ArrayLike | None = None
    embedding: ArrayLike | None = None
    crops: ArrayLike | None = None
    valid: ArrayLike | None = None
    meta: dict = field(default_factory=dict)
    crop_boxes: ArrayLike | None = None

    @property
    def num_frames(self) -> int:
        return int(self.landmarks.shape[0])

    def vector(self, cfg: Any) -> torch.Tensor:
        """(T, cfg.prior_dim) global prior vector; raises if a width disagrees with the config.

        ``cfg`` is the model's face config (`emollama.model.configuration.EmoLlamaFaceConfig`): only its widths
        (num_blendshapes, num_age_bins, num_genders, num_races, embedding_dim) are read.
        """
        import torch

        parts = [
            ("blendshapes", self.blendshapes, cfg.num_blendshapes),
            ("pose", self.pose, 3),
            ("age_probs", self.age_probs, cfg.num_age_bins),
            ("gender_probs", self.gender_probs, cfg.num_genders),
            ("race_probs", self.race_probs, cfg.num_races),
            ("embedding", self.embedding, cfg.embedding_dim),
        ]
        t = self.num_frames
        out = []
        for name, value, width in parts:
            if width == 0:
                continue
            if value is None:
                raise ValueError(f"FacePrior.{name} is None but face_config expects width {width}")
            v = torch.as_tensor(np.asarray(value) if not torch.is_tensor(value) else value, dtype=torch.float32)
            if tuple(v.shape) != (t, width):
                raise ValueError(f"FacePrior.{name}: expected shape ({t}, {width}), got {tuple(v.shape)}")
            out.append(v)
        return torch.cat(out, dim=-1)


@cache
def region_table(layout: str) -> tuple[tuple[str, ...], tuple[tuple[int, ...], ...]]:
    """(region names, landmark indices per region) for a landmark layout (resources/landmark_regions.yaml)."""
    text = resources.files("emollama.resources").joinpath("landmark_regions.yaml").read_text()
    data = yaml.safe_load(text)
    layouts = data["layouts"]
    if layout not in layouts:
        raise KeyError(f"unknown landmark layout {layout!r}; available: {sorted(layouts)}")
    names = tuple(data["regions"])
    return names, tuple(tuple(layouts[layout][n]) for n in names)
