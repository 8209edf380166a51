"""The conversation ``Generator`` protocol, its request/response types, errors, API-key lookup and ``PROVIDERS``.

A generator turns one labelled sample (label + dataset vocabulary + media + optional AU/AGR cues) into conversation
turns. API generators (gemini, openai) raise the error classes below so the robust client can tell what to retry;
the offline generator never touches the network.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import yaml

from emollama.faces.contract import AGRAttributes
from emollama.registry import Registry

logger = logging.getLogger(__name__)

KINDS = ("image", "video")
KEYS_FILE_ENV = "EMOLLAMA_KEYS_FILE"
DEFAULT_KEYS_FILE = "~/.config/emollama/keys.yaml"
LOCAL_HOSTS = ("://localhost", "://127.0.0.1", "://0.0.0.0", "://[::1]")


class ProviderError(Exception):
    """Base class of everything a provider raises on purpose."""


class TransientError(ProviderError):
    """Worth retrying: HTTP 429/5xx, timeouts, dropped connections. ``retry_after`` in seconds when the server said."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class MalformedResponse(ProviderError):
    """The reply arrived but is unusable: truncated JSON, missing fields, empty or blocked output."""


class PermanentError(ProviderError):
    """Retrying cannot help (bad request, bad key, unknown model); the sample is counted as failed."""


def parse_retry_after(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` / ``Retry-After`` (delta-seconds or HTTP date), or None."""
    if headers is None:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError, AttributeError):
        return None


@dataclass(frozen=True)
class Cues:
    """Optional per-sample grounding: AU intensities in [0, 1], age/gender/race, clip caption, prior-cache key."""

    au: dict[str, float] = field(default_factory=dict)
    agr: AGRAttributes | None = None
    caption: str | None = None
    prior_key: str | None = None


@dataclass(frozen=True)
class GenerationRequest:
    """Everything a generator may use for one sample.

    Attributes:
        sample_id: stable id (dataset/sample), part of the ledger key.
        label: canonical class name (``constants.CANONICAL_EMOTIONS``).
        label_word: the class as worded in the dataset vocabulary shown to the model (e.g. "joy").
        classes: the dataset vocabulary, official order, same wording as ``label_word``.
        kind: "image" or "video".
        media: image path, or the clip's file / frame folder (providers take its centre frame).
        question: the first human question (chosen by the caller from the prompt file, seeded).
        seed: per-request seed (already mixed with the label-retry attempt).
        cues: AU / AGR / caption grounding.
    """

    sample_id: str
    label: str
    label_word: str
    classes: tuple[str, ...]
    kind: str
    media: Path | None
    question: str
    seed: int
    cues: Cues = field(default_factory=Cues)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")


@dataclass(frozen=True)
class Usage:
    """Token counts reported by the API (0 for offline generation)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens)


@dataclass(frozen=True)
class Generation:
    """Conversation as (question, answer) pairs, first pair answering ``request.question``; plus usage and model."""

    turns: tuple[tuple[str, str], ...]
    usage: Usage = Usage()
    model: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"turns": [list(t) for t in self.turns], "usage": [self.usage.prompt_tokens,
                self.usage.completion_tokens], "model": self.model}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Generation:
        return cls(tuple((q, a) for q, a in d["turns"]), Usage(*d.get("usage", (0, 0))), d.get("model", ""))


@runtime_checkable
class Generator(Protocol):
    """A conversation generator. ``name``/``model``/``prompt_version`` are recorded per sample and key the ledger."""

    name: str
    model: str
    prompt_version: str
    needs_network: bool  # False: the robust client skips rate limiting and retries

    def generate(self, request: GenerationRequest) -> Generation:
        """Conversation for one sample; raises TransientError / MalformedResponse / PermanentError."""
        ...

    def secrets(self) -> Sequence[str]:
        """Strings that must never appear in logs or on disk (API keys)."""
        ...


PROVIDERS: Registry[Callable[..., Generator]] = Registry("conversation provider")


def build_provider(name: str, **kwargs: Any) -> Generator:
    """Instantiate provider ``name`` (gemini | openai | offline); importing the module registers it lazily."""
    import emollama.instruct.providers  # noqa: F401  (registers the built-ins)

    return PROVIDERS.get(name)(**kwargs)


def is_local(base_url: str | None) -> bool:
    """True for loopback endpoints (a local vLLM / Ollama / test server)."""
    return bool(base_url) and any(h in base_url for h in LOCAL_HOSTS)


def check_network_allowed(provider: str, base_url: str | None) -> None:
    """Refuse remote endpoints under ``EMOLLAMA_OFFLINE=1`` (set by the test suite), so a stray API call fails fast."""
    if os.environ.get("EMOLLAMA_OFFLINE", "") not in ("", "0", "false", "False") and not is_local(base_url):
        raise PermanentError(f"{provider}: EMOLLAMA_OFFLINE=1 forbids calls to {base_url or 'the public API'}; "
                             "unset it, point --base-url at a local server, or use --provider offline")


def resolve_api_key(provider: str, env_vars: Sequence[str], keys_file: str | Path | None = None) -> str | None:
    """API key from the first set variable in ``env_vars``, else from the keys file (YAML ``{provider: key}``).

    The file is ``keys_file``, else ``$EMOLLAMA_KEYS_FILE``, else ``~/.config/emollama/keys.yaml`` when it exists.
    Never pass keys on the command line: they would land in shell history and process listings.
    """
    for var in env_vars:
        if os.environ.get(var):
            logger.debug("%s: API key taken from $%s", provider, var)
            return os.environ[var].strip()
    path = Path(keys_file or os.environ.get(KEYS_FILE_ENV) or DEFAULT_KEYS_FILE).expanduser()
    if not path.is_file():
        return None
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping like 'openai: sk-...', got {type(data).__name__}")
    key = data.get(provider)
    if key:
        logger.debug("%s: API key taken from %s", provider, path)
    return str(key).strip() if key else None
