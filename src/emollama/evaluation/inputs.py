"""Media inputs of a local evaluation: decoded from the files, or the tower-ready frames from the prior cache.

``DecodedMedia`` decodes with the shared decoder (`emollama.media.decode.load_media`, as training does);
``CachedMedia`` reads the frames `emollama prepare --frames-for-model` stored (bit-identical after normalisation,
decoding on a miss). Decoded and read counts and milliseconds are kept in ``stats`` (reported as timing, never as
part of the results). Face priors come from a `emollama.priors.source.PriorSource`.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from emollama.data.benchmarks.base import Sample
from emollama.media.decode import load_media, media_item


class DecodedMedia:
    """Media decoded from the files on every run (cold). ``stats``: decoded count and milliseconds."""

    def __init__(self) -> None:
        self.stats: Counter = Counter()

    def describe(self) -> dict[str, Any]:
        return {"source": "decoded per sample"}

    def load(self, sample: Sample, frames: str) -> Any:
        """An image as (H, W, 3) uint8, a clip as its frames sampled by policy ``frames`` (`media_item`)."""
        t0 = time.perf_counter()
        media = media_item(load_media(sample.media, sample.is_video, frames), sample.is_video)
        self.stats["decoded"] += 1
        self.stats["decode_ms"] += round(1000 * (time.perf_counter() - t0), 3)
        return media


class CachedMedia(DecodedMedia):
    """Tower-ready frames from the cache (`emollama prepare --frames-for-model`): an image becomes one
    (S, S, 3) uint8 array, a clip a (T, S, S, 3) uint8 array, which the processor only normalises (its resize/crop
    is the identity on them). Absent entries (other policy, size or media) are decoded as usual and counted.
    ``images=False``: photos are always decoded (a `visual_input: face` model cuts the face crop from the photo, not
    from the stored whole-image frame); clips still come from the cache."""

    def __init__(self, cache, preprocess, images: bool = True) -> None:
        super().__init__()
        self.cache, self.preprocess, self.images = cache, preprocess, images

    def describe(self) -> dict[str, Any]:
        return {"source": "frame cache, decoding on a miss" + ("" if self.images else "; photos decoded"),
                "cache": str(self.cache.root)}

    def load(self, sample: Sample, frames: str) -> Any:
        from emollama.priors.frames import frames_key_for, get_frames

        if not (self.images or sample.is_video):
            return super().load(sample, frames)
        t0 = time.perf_counter()
        key = frames_key_for(self.cache, sample, frames, self.preprocess)
        if not self.cache.has(key):
            self.stats["frames_miss"] += 1
            return super().load(sample, frames)
        pixels, _ = get_frames(self.cache, key)
        self.stats["frames_hit"] += 1
        self.stats["read_ms"] += round(1000 * (time.perf_counter() - t0), 3)
        return pixels if sample.is_video else pixels[0]


def build_media(spec_arg: str, processor) -> DecodedMedia:
    """Cached frames when ``spec_arg`` (the ``--priors`` value) is a cache directory, else decoding."""
    if spec_arg in ("none", "auto"):
        return DecodedMedia()
    from emollama.priors.cache import PriorCache

    # a stored photo frame is the whole image at tower size; a `visual_input: face` model needs the decoded photo
    return CachedMedia(PriorCache(spec_arg), processor.preprocess, images=processor.config.visual_input != "face")
