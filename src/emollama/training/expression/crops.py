"""Face crops for expression training: the analyzer's own face finder and crop code over a dataset split.

Every image goes through `FaceFinder` (``auto``: detect, whole image when nothing is found on a small image), the
largest face is kept, and `expression_input` cuts the network's input from it: the same code the analyzer runs.
Crops are written in chunks of ``CHUNK`` images (atomic .npz files), so a killed run resumes at its last chunk.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from emollama.faces.expression_net import ExpressionNetConfig

log = logging.getLogger(__name__)

CHUNK = 1024  # images per chunk file: ~2.4 MB at 48 px, ~20 s of detection


@dataclass
class CropSet:
    """(N, S, S) uint8 crops, (N,) int64 labels, (N,) source names ('facelandmarker', 'whole-image', ...), ids."""

    crops: np.ndarray
    labels: np.ndarray
    sources: np.ndarray
    ids: np.ndarray


_WORKER: dict = {}


def _init_worker(face_mode: str, net_json: str) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from emollama.faces.detect import DetectorConfig, FaceDetector
    from emollama.faces.expression_net import ExpressionNetConfig
    from emollama.faces.find import FaceFinder

    _WORKER["finder"] = FaceFinder(FaceDetector(DetectorConfig()), face_mode, landmarks=False)
    _WORKER["cfg"] = ExpressionNetConfig.from_json(net_json)


def _crop_chunk(paths: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    from emollama.faces.expression_net import expression_input
    from emollama.faces.find import whole_image_box
    from emollama.media.decode import load_image  # the one decoder the analyzer uses

    finder = _WORKER["finder"]
    crops, sources = [], []
    for p in paths:
        rgb = load_image(p)
        faces = finder.find(rgb)
        box = faces[0].box if faces else whole_image_box(rgb)  # large images without a face: rare in FER sets
        crops.append(expression_input(rgb, box, _WORKER["cfg"]))
        sources.append(box.source if faces else "none")
    return np.stack(crops), sources


def _check_manifest(out_dir: Path, manifest: dict) -> None:
    """Write the cache's manifest, or refuse a cache made for other images or another crop definition."""
    path = out_dir / "manifest.json"
    if path.is_file():
        old = json.loads(path.read_text())
        diff = sorted(k for k in manifest if old.get(k) != manifest[k])
        if diff:
            raise ValueError(f"crop cache {out_dir} was made for other {', '.join(diff)}; delete it or use another "
                             f"--out")
        manifest = {**old, **manifest}  # keeps the recorded crop_seconds
    elif any(out_dir.glob("chunk_*.npz")):
        log.warning("crop cache %s has no manifest (an older run): adopting it", out_dir)
    path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


def build_crops(samples: Sequence, out_dir: Path, *, workers: int = 2, face_mode: str = "auto",
                net: ExpressionNetConfig | None = None, progress: bool = True) -> CropSet:
    """Crops for ``samples`` (objects with ``.media``, ``.label_index``, ``.id``), cached in ``out_dir``.

    Returns (N, size, size) uint8 crops made with ``net``'s crop definition (size, margin)."""
    net = net or ExpressionNetConfig()
    out_dir.mkdir(parents=True, exist_ok=True)
    ids = hashlib.sha256("\n".join(f"{s.id}:{s.label_index}" for s in samples).encode()).hexdigest()
    key = {"samples": len(samples), "ids_sha256": ids, "face_mode": face_mode, "size": net.size, "margin": net.margin}
    if net.mask_context:  # only then: caches cut before the field (context kept) stay valid
        key["mask_context"] = True
    _check_manifest(out_dir, key)
    paths = [str(s.media) for s in samples]
    chunks = [paths[i : i + CHUNK] for i in range(0, len(paths), CHUNK)]
    todo = [i for i in range(len(chunks)) if not (out_dir / f"chunk_{i:05d}.npz").is_file()]
    if todo:
        t0 = time.perf_counter()
        log.info("cropping %d images in %d chunks (%d cached) with %d workers",
                 sum(len(chunks[i]) for i in todo), len(todo), len(chunks) - len(todo), workers)
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(len(chunks[i]) for i in todo), unit="img", desc=f"crops {out_dir.name}",
                   disable=not progress)
        with ProcessPoolExecutor(max(1, workers), initializer=_init_worker,
                                 initargs=(face_mode, net.to_json())) as ex:
            for i, (crops, sources) in zip(todo, ex.map(_crop_chunk, [chunks[i] for i in todo]), strict=True):
                tmp = out_dir / f"chunk_{i:05d}.tmp.npz"
                np.savez(tmp, crops=crops, sources=np.array(sources))
                tmp.replace(out_dir / f"chunk_{i:05d}.npz")
                bar.update(len(crops))
        bar.close()
        log.info("cropped %s in %.0f s", out_dir.name, time.perf_counter() - t0)
        m = json.loads((out_dir / "manifest.json").read_text())
        m["crop_seconds"] = round(m.get("crop_seconds", 0.0) + time.perf_counter() - t0, 1)  # summed over resumes
        (out_dir / "manifest.json").write_text(json.dumps(m, indent=1, sort_keys=True) + "\n")
    parts = [np.load(out_dir / f"chunk_{i:05d}.npz") for i in range(len(chunks))]
    crops = np.concatenate([p["crops"] for p in parts]) if parts else np.zeros((0, net.size, net.size), np.uint8)
    sources = np.concatenate([p["sources"] for p in parts]) if parts else np.zeros((0,), str)
    labels = np.array([s.label_index for s in samples], dtype=np.int64)
    return CropSet(crops, labels, sources, np.array([s.id for s in samples]))
