"""Conversation generators behind one ``Generator`` protocol: ``gemini``, ``openai`` (any compatible endpoint) and
``offline`` (no network). Importing this package registers all three; the SDKs are imported only on construction.
"""

from __future__ import annotations

from emollama.instruct.providers import gemini, offline, openai_compat  # noqa: F401  (registration)
from emollama.instruct.providers.base import (
    PROVIDERS,
    Cues,
    Generation,
    GenerationRequest,
    Generator,
    MalformedResponse,
    PermanentError,
    ProviderError,
    TransientError,
    Usage,
    build_provider,
    resolve_api_key,
)

__all__ = [
    "PROVIDERS",
    "Cues",
    "Generation",
    "GenerationRequest",
    "Generator",
    "MalformedResponse",
    "PermanentError",
    "ProviderError",
    "TransientError",
    "Usage",
    "build_provider",
    "resolve_api_key",
]
