"""emollama: EMO-LLaMA (LLaMA-VID + Face Info Mining + AGR prompt) and a CPU face analyzer.

Public names are imported lazily so `import emollama` stays cheap (no torch or transformers import at load time).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from emollama import _moved

__version__ = "0.1.0"
_moved.install()  # old module paths of the 0.1 layout keep importing for one release

_LAZY = {
    "Analyzer": "emollama.api",
    "EmoLlama": "emollama.api",
    "Prediction": "emollama.api",
    "EmoLlamaConfig": "emollama.model.configuration",
    "EmoLlamaFaceConfig": "emollama.model.configuration",
    "EmoLlamaForConditionalGeneration": "emollama.model.modeling",
    "EmoLlamaProcessor": "emollama.model.processor",
    "FacePrior": "emollama.faces.contract",
}

__all__ = [
    "Analyzer",
    "EmoLlama",
    "EmoLlamaConfig",
    "EmoLlamaFaceConfig",
    "EmoLlamaForConditionalGeneration",
    "EmoLlamaProcessor",
    "FacePrior",
    "Prediction",
    "__version__",
]

if TYPE_CHECKING:  # pragma: no cover
    from emollama.api import Analyzer, EmoLlama, Prediction
    from emollama.faces.contract import FacePrior
    from emollama.model.configuration import EmoLlamaConfig, EmoLlamaFaceConfig
    from emollama.model.modeling import EmoLlamaForConditionalGeneration
    from emollama.model.processor import EmoLlamaProcessor


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'emollama' has no attribute {name!r}")
