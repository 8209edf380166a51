"""Python API: `Analyzer` (CPU face analyzer, no LLM) and `EmoLlama` (the MLLM), each `.predict(...)` -> `Prediction`s.

Both run the `emollama analyze` path: media layer (`emollama.media`) -> `emollama.faces.pipeline.analyze_media` ->
records (`emollama.analyze.runner`), so `Prediction.record` is an `emollama analyze` record
(docs/analyze.schema.json). `EmoLlama` adds the MLLM: the analyzer's priors fill `<face>`, its age/gender the AGR
prompt; closed-set class scoring gives label and probabilities, greedy generation the text, from one prefill
(`emollama.model.inference`). The HTTP server (`emollama.serve`) is a thin layer over this package.

Modules: `types` (Prediction, MediaLimits, MediaLimitError, Analysis), `inputs` (paths / bytes / arrays -> pixels,
limits), `analyzer` (Analyzer), `mllm` (EmoLlama).
"""

from __future__ import annotations

from emollama.api.analyzer import Analyzer
from emollama.api.mllm import EmoLlama
from emollama.api.types import (
    ANALYZER_ID,
    DEFAULT_QUESTION,
    Analysis,
    MediaError,
    MediaLimitError,
    MediaLimits,
    Prediction,
)

__all__ = ["ANALYZER_ID", "DEFAULT_QUESTION", "Analysis", "Analyzer", "EmoLlama", "MediaError", "MediaLimitError",
           "MediaLimits", "Prediction"]
