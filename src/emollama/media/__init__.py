"""Media: decoding images and videos, frame sampling policies, file kinds, and the typed media errors.

`load_media` (`emollama.media.decode`) is the one decoder; it returns `Frame`s (`emollama.media.video`), the one
frame type. Both are imported lazily so `import emollama.media.sampling` stays free of PIL.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {"Frame": "emollama.media.video", "load_media": "emollama.media.decode", "media_item": "emollama.media.decode"}
__all__ = ["Frame", "load_media", "media_item"]

if TYPE_CHECKING:  # pragma: no cover
    from emollama.media.decode import load_media, media_item
    from emollama.media.video import Frame


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'emollama.media' has no attribute {name!r}")
