"""A generated, learnable FER task for the CPU debug recipe: drawn faces whose expression is the label.

Writes, under one directory: images/*.png, videos/<id>/frame_*.png (frame folders, no codec needed),
priors/<key>.npz (landmarks of the drawn face + noisy per-class cue vector), and train.jsonl / eval.jsonl in the
emollama record schema (SPEC §5.5, category kind). The label is visible in the pixels (mouth, brows, eyes) and in
the priors, so the `tiny` model visibly learns it. Deterministic in ``seed``.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from emollama.constants import CANONICAL_EMOTIONS
from emollama.data.synthetic import SYNTHETIC_CLASSES, draw_face, synthetic_cues
from emollama.faces.contract import FacePrior
from emollama.model.configuration import EmoLlamaFaceConfig
from emollama.priors.npz import key_to_filename, save_prior_npz

logger = logging.getLogger(__name__)
GENERATOR = "emollama.training.synthetic_task@3"  # 3: priors record their crop region (the whole drawing)
TEMPLATE = ("What is the facial expression of the person in the {kind}? "
            "Choose one from the following options: {{{opts}}}.")
DONE = "task.json"


def _prior(label: str, landmarks: np.ndarray, face_cfg: EmoLlamaFaceConfig, rng: np.random.Generator,
           size: int) -> FacePrior:
    t = landmarks.shape[0]
    cues = np.tile(synthetic_cues(label, face_cfg.num_blendshapes), (t, 1))
    cues = np.clip(cues + rng.normal(0, 0.1, cues.shape), 0, 1).astype(np.float32)  # noisy, like a real AU model
    # random, label-independent age/gender so the AGR sentence varies (a distractor, as in real data)
    age = np.full((t, face_cfg.num_age_bins), 0.2 / max(1, face_cfg.num_age_bins - 1), np.float32)
    age[:, int(rng.integers(face_cfg.num_age_bins))] = 0.8
    gender = np.full((t, face_cfg.num_genders), 0.15 / max(1, face_cfg.num_genders - 1), np.float32)
    gender[:, int(rng.integers(face_cfg.num_genders))] = 0.85
    race = np.full((t, face_cfg.num_races), 1.0 / face_cfg.num_races, np.float32) if face_cfg.num_races else None
    emb = np.zeros((t, face_cfg.embedding_dim), np.float32) if face_cfg.embedding_dim else None
    # landmarks are in [0, 1] of the whole drawing, so the crop region they are normalised to is the whole frame
    boxes = np.tile(np.array([0.0, 0.0, size, size]), (t, 1))
    return FacePrior(landmarks=landmarks.astype(np.float32), blendshapes=cues, pose=np.zeros((t, 3), np.float32),
                     age_probs=age, gender_probs=gender, race_probs=race, embedding=emb, crop_boxes=boxes)


def _record(rid: str, rel: str, is_video: bool, label: str, split: str, seed: int) -> dict:
    kind = "video" if is_video else "image"
    question = "<image>\n" + TEMPLATE.format(kind=kind, opts=", ".join(SYNTHETIC_CLASSES))
    return {
        "id": rid, kind: rel,
        "conversations": [{"from": "human", "value": question}, {"from": "gpt", "value": label}],
        "dataset": "synthetic", "split": split, "fold": None,
        "label": {"index": CANONICAL_EMOTIONS.index(label), "name": label,
                  "dataset_index": SYNTHETIC_CLASSES.index(label)},
        "kind": "category", "template_id": "synthetic_v1", "generator": GENERATOR, "seed": seed,
        "options": list(SYNTHETIC_CLASSES), "vocabulary": "canonical", "prior_key": rid, "schema_version": 1,
    }


def generate_task(out: str | os.PathLike, face_cfg: EmoLlamaFaceConfig, *, n_train: int = 400, n_eval: int = 100,
                  video_fraction: float = 0.25, frames: int = 4, size: int = 48, seed: int = 0) -> Path:
    """Write the task under ``out`` (skipped when an identical task is already there). Returns ``out``."""
    out = Path(out)
    spec = {"generator": GENERATOR, "n_train": n_train, "n_eval": n_eval, "video_fraction": video_fraction,
            "frames": frames, "size": size, "seed": seed, "num_blendshapes": face_cfg.num_blendshapes,
            "num_landmarks": face_cfg.num_landmarks, "classes": list(SYNTHETIC_CLASSES)}
    if (out / DONE).exists() and json.loads((out / DONE).read_text()) == spec:
        logger.info("synthetic task already present in %s", out)
        return out
    if face_cfg.num_landmarks != 10:
        raise ValueError("the synthetic task draws 'tiny10' landmarks; use a model with face_config.num_landmarks=10")
    for sub in ("images", "videos", "priors"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_eval)):
        lines = []
        for i in range(n):
            label = SYNTHETIC_CLASSES[int(rng.integers(len(SYNTHETIC_CLASSES)))]
            is_video = bool(rng.random() < video_fraction)
            rid = f"synthetic/{split}_{i:05d}"
            t = frames if is_video else 1
            drawn = [draw_face(label, size, jitter=0.06, rng=rng) for _ in range(t)]
            if is_video:
                rel = f"videos/{split}_{i:05d}"
                (out / rel).mkdir(exist_ok=True)
                for k, (img, _) in enumerate(drawn):
                    img.save(out / rel / f"frame_{k:03d}.png")
            else:
                rel = f"images/{split}_{i:05d}.png"
                drawn[0][0].save(out / rel)
            prior = _prior(label, np.stack([lm for _, lm in drawn]), face_cfg, rng, size)
            save_prior_npz(prior, out / "priors" / f"{key_to_filename(rid)}.npz")
            lines.append(_record(rid, rel, is_video, label, split, seed))
        name = "train.jsonl" if split == "train" else "eval.jsonl"
        (out / name).write_text("".join(json.dumps(r) + "\n" for r in lines))
    (out / DONE).write_text(json.dumps(spec, indent=2))
    logger.info("wrote synthetic task (%d train, %d eval) to %s", n_train, n_eval, out)
    return out
