"""Tower-ready frames in the prior cache: each media item's sampled frames, already resized + centre-cropped to the
vision tower's input size, as uint8 (T, S, S, 3) + their frame indices.

A second `emollama eval --priors CACHE` then decodes no photo or video: it reads these frames and only normalises
them (`emollama.model.transforms.normalise`, cheap). The cold path runs the very same steps (decode ->
`resize_crop` -> uint8 -> `normalise`), so cached and cold pixel tensors are bit-identical.

Entries live in the same shards/index as the face priors (`PriorCache.put_arrays`: temp file + fsync + rename, one
index transaction), with status ``frames`` and their own key: ``frames-<32 hex>`` over media path, content sha256,
frame-sampling policy (videos only) and the resize rule (size, resample, pad, code/Pillow/PyAV versions). A change
to any of them is a miss, never a stale hit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from emollama.media.sampling import DEFAULT_POLICY
from emollama.priors.cache import FRAMES_STATUS, EntryInfo, PriorCache
from emollama.priors.keys import _pkg_version

if TYPE_CHECKING:
    from emollama.priors.source import MediaRef

logger = logging.getLogger(__name__)

FRAMES_VERSION = "2"  # bump when decoding or `resize_crop` changes its pixels (2: CLIP int-truncating resize)


def frame_rule(pp) -> dict:
    """What (besides media and policy) decides the stored pixels of a `Preprocess` ``pp``."""
    return {"size": pp.size, "resample": pp.resample, "pad_to_square": bool(pp.pad_to_square),
            "version": FRAMES_VERSION, "pillow": _pkg_version("pillow"), "av": _pkg_version("av")}


def frames_key(media_rel: str, sha256: str, policy: str, pp) -> str:
    """``frames-<32 hex>``; ``policy`` is '' for images (a video policy change must not touch images)."""
    blob = json.dumps({"media": media_rel, "sha256": sha256, "policy": policy, "rule": frame_rule(pp)},
                      sort_keys=True)
    return f"frames-{hashlib.sha256(blob.encode()).hexdigest()[:32]}"


def frames_key_for(cache: PriorCache, sample: MediaRef, policy: str, pp) -> str:
    """`frames_key` of a benchmark `Sample` (content hash memoised by the cache)."""
    return frames_key(sample.media_rel, cache.content_hash(sample.media), policy if sample.is_video else "", pp)


def tower_frames(media: str | os.PathLike, is_video: bool, policy: str, pp) -> tuple[np.ndarray, np.ndarray]:
    """Decode (`emollama.media.decode.load_media`, as training and eval do) + `resize_crop`: (T, S, S, 3) uint8
    frames ready for normalisation, and (T,) int64 frame indices (one frame, index 0, for a photo)."""
    from emollama.media.decode import load_media
    from emollama.model.transforms import resize_crop

    frames = load_media(media, is_video, policy)
    return np.stack([resize_crop(f.rgb, pp) for f in frames]), np.asarray([f.index for f in frames], np.int64)


def put_frames(cache: PriorCache, key: str, sample: MediaRef, sha256: str, policy: str, pp, pixels: np.ndarray,
               indices: np.ndarray) -> None:
    """Buffer one frames entry (durable at the cache's next shard flush, like a prior)."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    if pixels.ndim != 4 or pixels.shape[1:] != (pp.size, pp.size, 3) or len(indices) != len(pixels):
        raise ValueError(f"frames must be (T, {pp.size}, {pp.size}, 3) uint8 with T indices, got {pixels.shape} "
                         f"and {len(indices)} indices")
    rule = frame_rule(pp)
    info = EntryInfo(key, "", FRAMES_STATUS, len(pixels), sample.media_rel, sha256, "frames",
                     hashlib.sha256(json.dumps(rule, sort_keys=True).encode()).hexdigest()[:16],
                     policy if sample.is_video else "")
    cache.put_arrays(info, {"pixels": pixels, "indices": np.ascontiguousarray(indices, dtype=np.int64)},
                     {"rule": rule})


def get_frames(cache: PriorCache, key: str) -> tuple[np.ndarray, np.ndarray]:
    """(pixels (T, S, S, 3) uint8, indices (T,) int64) of a frames entry; KeyError when absent."""
    arrays, _ = cache._tensors(key, ("pixels", "indices"))
    if "pixels" not in arrays:
        raise KeyError(f"{key!r} in {str(cache.root)!r} is not a frames entry")
    return arrays["pixels"], arrays["indices"]


def prepare_frames(samples: Sequence[MediaRef], cache: PriorCache, pp, policy: str = DEFAULT_POLICY, *,
                   progress: Callable[[int], None] | None = None) -> Counter:
    """Store tower-ready frames for every sample not cached yet (decoded in this process).

    Returns:
        Counter with ``computed``, ``cached``, ``failed`` and ``seconds``; failures are logged, never raised.
    """
    t0, rep, tick, seen = time.perf_counter(), Counter(), progress or (lambda n: None), set()
    for s in samples:
        try:
            sha = cache.content_hash(s.media)
            key = frames_key(s.media_rel, sha, policy if s.is_video else "", pp)
            if key in seen or cache.has(key):
                rep["cached"] += 1
            else:
                pixels, idx = tower_frames(s.media, s.is_video, policy, pp)
                put_frames(cache, key, s, sha, policy, pp, pixels, idx)
                seen.add(key)
                rep["computed"] += 1
        except (OSError, ValueError) as err:  # unreadable media: eval falls back to decoding (and fails there)
            rep["failed"] += 1
            logger.warning("frames of %s not cached: %s: %s", s.media_rel, type(err).__name__, err)
        tick(1)
    cache.flush()
    rep["seconds"] = round(time.perf_counter() - t0, 3)
    return rep
