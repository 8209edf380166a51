"""Special tokens, ignore index and canonical label vocabulary shared by every package."""

from __future__ import annotations

IGNORE_INDEX = -100

IMAGE_TOKEN = "<image>"
VIDEO_TOKEN = "<video>"
FACE_TOKEN = "<face>"
PLACEHOLDER_TOKENS = (IMAGE_TOKEN, VIDEO_TOKEN, FACE_TOKEN)

# Canonical class names (DATASETS.md §0.3). Each dataset keeps its own ordered subset.
CANONICAL_EMOTIONS = (
    "anger",
    "contempt",
    "disgust",
    "fear",
    "happiness",
    "neutral",
    "sadness",
    "surprise",
    "anxiety",
    "helplessness",
    "disappointment",
)

# RAF-DB order, also FERID's image option list (SPEC.md §5.2).
RAFDB_CLASSES = ("surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral")
