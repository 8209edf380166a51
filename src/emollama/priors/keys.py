"""What a face-prior cache key is made of: media path + content hash + extractor fingerprint + sampling policy.

Any change to one of them gives a new key, so a stale entry can never be found (and silently reused): it is simply
recomputed under its new key. Kept free of heavy imports so keys can be computed anywhere.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emollama.faces.align import CropConfig
from emollama.media.decode import FRAME_EXTS, frame_files

# bump when the extraction code of a backend changes its output (a new version invalidates every entry)
EXTRACTOR_VERSIONS = {"mediapipe": "1", "synthetic": "1", "facexformer": "1"}
# third-party packages whose version changes a backend's numbers
_BACKEND_PACKAGES = {"mediapipe": ("mediapipe", "onnxruntime"), "facexformer": ("torch",)}


def _pkg_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


@dataclass(frozen=True)
class ExtractorSpec:
    """A face-prior extractor as the cache identifies it.

    Args:
        name: `emollama.priors.from_faces.PRIOR_EXTRACTORS` name.
        options: extractor keyword options (``--opt K=V``), part of the fingerprint.
        crop: the aligned crop stored with each prior (margin, size).
        version: override of the backend version (default: `EXTRACTOR_VERSIONS` + backend package versions).
    """

    name: str = "mediapipe"
    options: dict[str, Any] = field(default_factory=dict)
    crop: CropConfig = field(default_factory=CropConfig)
    version: str | None = None

    def __hash__(self) -> int:
        return hash(self.fingerprint())

    def resolved_version(self) -> str:
        if self.version is not None:
            return self.version
        pkgs = ",".join(f"{p}={_pkg_version(p)}" for p in _BACKEND_PACKAGES.get(self.name, ()))
        return f"{EXTRACTOR_VERSIONS.get(self.name, '0')}|emollama={_pkg_version('emollama')}|{pkgs}"

    def fingerprint(self) -> str:
        """16 hex digits over name, version, options and crop config."""
        blob = json.dumps({"name": self.name, "version": self.resolved_version(), "options": self.options,
                           "crop": [self.crop.margin, self.crop.size]}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _files(path: Path) -> list[Path]:
    return frame_files(path) if path.is_dir() else [path]


def stat_signature(media: str | os.PathLike) -> str:
    """Cheap change detector: names, sizes and mtimes of every file the media covers."""
    path = Path(media)
    parts = [(p.name, st.st_size, st.st_mtime_ns) for p in _files(path) for st in [p.stat()]]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def content_hash(media: str | os.PathLike) -> str:
    """sha256 of a media file, or of a frame folder's (name, bytes) pairs in name order.

    Raises:
        FileNotFoundError: the media (or every frame of a folder) is missing.
    """
    path = Path(media)
    files = _files(path)
    if path.is_dir() and not files:
        raise FileNotFoundError(f"frame folder {str(path)!r} holds no frame images {FRAME_EXTS}")
    h = hashlib.sha256()
    for p in files:
        if path.is_dir():
            h.update(p.name.encode() + b"\0")
        with open(p, "rb") as f:
            for block in iter(lambda f=f: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def make_key(media_rel: str, sha256: str, spec: ExtractorSpec, policy: str) -> str:
    """``<extractor>-<32 hex>``; ``policy`` is '' for images (a video policy change must not touch images)."""
    blob = json.dumps({"media": media_rel, "sha256": sha256, "extractor": spec.fingerprint(), "policy": policy},
                      sort_keys=True)
    return f"{spec.name}-{hashlib.sha256(blob.encode()).hexdigest()[:32]}"
