"""Any OpenAI-compatible chat endpoint through the openai SDK: OpenAI itself, vLLM, Ollama, hosted services.

The image (or a clip's centre frame) goes in as a base64 data URL. SDK retries are off (``max_retries=0``) so the
robust client is the only retry layer. Local servers usually need no key; a placeholder is sent then.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from typing import Any

from emollama.instruct.providers.base import (
    PROVIDERS,
    Generation,
    GenerationRequest,
    MalformedResponse,
    PermanentError,
    TransientError,
    Usage,
    check_network_allowed,
    is_local,
    parse_retry_after,
    resolve_api_key,
)
from emollama.instruct.providers.media import media_bytes
from emollama.instruct.providers.prompts import DEFAULT_PROMPT_VERSION, load_prompts, parse_reply

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "gpt-4o-mini"
ENV_VARS = ("OPENAI_API_KEY",)
RETRY_STATUS = (408, 409, 429, 500, 502, 503, 504)  # HTTP codes mapped to TransientError (retried)


def data_url(data: bytes, mime: str) -> str:
    """Inline media for the chat API: ``data:<mime>;base64,...``."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def import_openai(who: str = "the openai provider") -> Any:
    """The ``openai`` module, or an ImportError naming the extra to install (``who`` names the caller)."""
    try:
        import openai
    except ImportError as e:
        raise ImportError(f"{who} needs the openai SDK: pip install 'emollama[gen]'") from e
    return openai


class OpenAIChatClient:
    """One OpenAI-compatible endpoint: key lookup, the SDK client (its retries off) and error mapping.

    Shared by the conversation provider and zero-shot evaluation, so both treat keys and HTTP errors alike.

    Args:
        base_url: e.g. "http://localhost:8000/v1"; None = api.openai.com.
        api_key: normally None: read from ``api_key_env`` / $OPENAI_API_KEY or the keys file.
        api_key_env: extra environment variable to read first.
        keys_file / timeout: keys-file path; per-request timeout in seconds.
        who: the caller, named in the missing-SDK error.
    """

    def __init__(self, base_url: str | None = None, *, api_key: str | None = None, api_key_env: str | None = None,
                 keys_file: str | None = None, timeout: float = 60.0, who: str = "the openai provider") -> None:
        check_network_allowed("openai", base_url)
        self.openai = import_openai(who)
        env = ((api_key_env,) if api_key_env else ()) + ENV_VARS
        key = api_key or resolve_api_key("openai", env, keys_file)
        if not key and not is_local(base_url):
            raise PermanentError(f"no API key for {base_url or 'api.openai.com'}: set ${env[0]} or add "
                                 "'openai: <key>' to the keys file")
        self._key = key or "EMPTY"  # vLLM/Ollama ignore it, but the SDK insists on one
        self.sdk = self.openai.OpenAI(api_key=self._key, base_url=base_url, timeout=timeout, max_retries=0)

    def __repr__(self) -> str:  # never show the key
        return "OpenAIChatClient()"

    def secrets(self) -> Sequence[str]:
        """The API key when one was found (never the local placeholder)."""
        return (self._key,) if self._key != "EMPTY" else ()

    def create(self, **kwargs: Any) -> Any:
        """``chat.completions.create(**kwargs)`` with SDK errors mapped to Transient/Permanent/Malformed errors.

        Returns the SDK response, which is checked to have at least one choice.
        """
        oa = self.openai
        try:
            resp = self.sdk.chat.completions.create(**kwargs)
        except (oa.APITimeoutError, oa.APIConnectionError) as err:
            raise TransientError(f"{type(err).__name__}: {err}") from None
        except oa.APIStatusError as err:
            msg = f"HTTP {err.status_code}: {str(err)[:300]}"
            if err.status_code in RETRY_STATUS:
                raise TransientError(msg, status=err.status_code,
                                     retry_after=parse_retry_after(err.response.headers)) from None
            raise PermanentError(msg) from None
        except (oa.APIResponseValidationError, ValueError) as err:  # body cut off / not JSON
            raise MalformedResponse(f"unreadable HTTP response: {type(err).__name__}: {str(err)[:200]}") from None
        if isinstance(resp, str) or not getattr(resp, "choices", None):
            raise MalformedResponse("response has no choices")
        return resp


def usage_of(resp: Any) -> Usage:
    """Token counts of a chat-completions response (0 where the server reports none)."""
    u = resp.usage
    return Usage(int(getattr(u, "prompt_tokens", 0) or 0), int(getattr(u, "completion_tokens", 0) or 0))


class OpenAICompatGenerator:
    """``Generator`` over ``openai.OpenAI(base_url=...).chat.completions.create``.

    Args:
        model: model name as the server knows it (e.g. "gpt-4o-mini", "Qwen/Qwen2.5-VL-7B-Instruct", "llava").
        base_url: e.g. "http://localhost:8000/v1" (vLLM), "http://localhost:11434/v1" (Ollama); None = OpenAI.
        api_key: normally None: read from ``api_key_env`` / $OPENAI_API_KEY or the keys file.
        api_key_env: extra environment variable to read first (e.g. TOGETHER_API_KEY for a hosted service).
        json_mode: send ``response_format={"type": "json_object"}``; turn off for servers that reject it.
        timeout / temperature / max_tokens / prompt_version / keys_file: as for the Gemini provider.
    """

    name = "openai"
    needs_network = True

    def __init__(self, model: str = DEFAULT_MODEL, base_url: str | None = None, api_key: str | None = None,
                 api_key_env: str | None = None, timeout: float = 60.0, temperature: float = 0.7,
                 max_tokens: int = 1024, json_mode: bool = True, prompt_version: str = DEFAULT_PROMPT_VERSION,
                 keys_file: str | None = None) -> None:
        self._chat = OpenAIChatClient(base_url, api_key=api_key, api_key_env=api_key_env, keys_file=keys_file,
                                      timeout=timeout)
        self.model = model
        self.prompt_version = prompt_version
        self.prompts = load_prompts(prompt_version)
        self.temperature, self.max_tokens, self.json_mode = temperature, max_tokens, json_mode

    def __repr__(self) -> str:  # never show the key
        return f"OpenAICompatGenerator(model={self.model!r}, prompt_version={self.prompt_version!r})"

    def secrets(self) -> Sequence[str]:
        return self._chat.secrets()

    @property
    def settings(self) -> dict[str, Any]:
        """Decoding settings that change the output; part of the ledger key."""
        return {"temperature": self.temperature, "max_tokens": self.max_tokens, "json_mode": self.json_mode}

    def generate(self, request: GenerationRequest) -> Generation:
        system, user = self.prompts.render(request)
        content: list[dict[str, Any]] = [{"type": "text", "text": user}]
        if request.media is not None:
            data, mime = media_bytes(request.media, request.kind)
            url = data_url(data, mime)
            content.append({"type": "image_url", "image_url": {"url": url}})
        kwargs: dict[str, Any] = {"response_format": {"type": "json_object"}} if self.json_mode else {}
        messages = [{"role": "system", "content": system}, {"role": "user", "content": content}]
        resp = self._chat.create(model=self.model, messages=messages, temperature=self.temperature,
                                 max_tokens=self.max_tokens, seed=request.seed, **kwargs)
        choice = resp.choices[0]
        if choice.finish_reason == "length":
            raise MalformedResponse("reply cut off by max_tokens (finish_reason=length)")
        turns = parse_reply(choice.message.content, request, self.prompts.reply_fields[request.kind])
        return Generation(turns, usage_of(resp), resp.model or self.model)


PROVIDERS.add("openai", OpenAICompatGenerator)
