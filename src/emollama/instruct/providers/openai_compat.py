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
_RETRY_STATUS = (408, 409, 429, 500, 502, 503, 504)


def data_url(data: bytes, mime: str) -> str:
    """Inline media for the chat API: ``data:<mime>;base64,...``."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _sdk():
    try:
        import openai
    except ImportError as e:
        raise ImportError("the openai provider needs the openai SDK: pip install 'emollama[gen]'") from e
    return openai


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
        check_network_allowed(self.name, base_url)
        self._openai = _sdk()
        self.model = model
        self.prompt_version = prompt_version
        self.prompts = load_prompts(prompt_version)
        self.temperature, self.max_tokens, self.json_mode = temperature, max_tokens, json_mode
        env = ((api_key_env,) if api_key_env else ()) + ENV_VARS
        self._key = api_key or resolve_api_key("openai", env, keys_file)
        if not self._key:
            if not is_local(base_url):
                raise PermanentError(f"no API key for {base_url or 'api.openai.com'}: set ${env[0]} or add "
                                     "'openai: <key>' to the keys file")
            self._key = "EMPTY"  # vLLM/Ollama ignore it, but the SDK insists on one
        self._client = self._openai.OpenAI(api_key=self._key, base_url=base_url, timeout=timeout, max_retries=0)

    def __repr__(self) -> str:  # never show the key
        return f"OpenAICompatGenerator(model={self.model!r}, prompt_version={self.prompt_version!r})"

    def secrets(self) -> Sequence[str]:
        return (self._key,) if self._key != "EMPTY" else ()

    @property
    def settings(self) -> dict[str, Any]:
        """Decoding settings that change the output; part of the ledger key."""
        return {"temperature": self.temperature, "max_tokens": self.max_tokens, "json_mode": self.json_mode}

    def generate(self, request: GenerationRequest) -> Generation:
        oa = self._openai
        system, user = self.prompts.render(request)
        content: list[dict[str, Any]] = [{"type": "text", "text": user}]
        if request.media is not None:
            data, mime = media_bytes(request.media, request.kind)
            url = data_url(data, mime)
            content.append({"type": "image_url", "image_url": {"url": url}})
        kwargs: dict[str, Any] = {"response_format": {"type": "json_object"}} if self.json_mode else {}
        try:
            messages = [{"role": "system", "content": system}, {"role": "user", "content": content}]
            resp = self._client.chat.completions.create(model=self.model, messages=messages,
                                                        temperature=self.temperature, max_tokens=self.max_tokens,
                                                        seed=request.seed, **kwargs)
        except (oa.APITimeoutError, oa.APIConnectionError) as err:
            raise TransientError(f"{type(err).__name__}: {err}") from None
        except oa.APIStatusError as err:
            msg = f"HTTP {err.status_code}: {str(err)[:300]}"
            if err.status_code in _RETRY_STATUS:
                raise TransientError(msg, status=err.status_code,
                                     retry_after=parse_retry_after(err.response.headers)) from None
            raise PermanentError(msg) from None
        except (oa.APIResponseValidationError, ValueError) as err:  # body cut off / not JSON
            raise MalformedResponse(f"unreadable HTTP response: {type(err).__name__}: {str(err)[:200]}") from None
        if isinstance(resp, str) or not getattr(resp, "choices", None):
            raise MalformedResponse("response has no choices")
        choice = resp.choices[0]
        if choice.finish_reason == "length":
            raise MalformedResponse("reply cut off by max_tokens (finish_reason=length)")
        u = resp.usage
        usage = Usage(int(getattr(u, "prompt_tokens", 0) or 0), int(getattr(u, "completion_tokens", 0) or 0))
        turns = parse_reply(choice.message.content, request, self.prompts.reply_fields[request.kind])
        return Generation(turns, usage, resp.model or self.model)


PROVIDERS.add("openai", OpenAICompatGenerator)
