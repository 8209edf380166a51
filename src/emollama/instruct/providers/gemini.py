"""Gemini through the google-genai SDK (the paper's generator, SPEC §5.4): label + image (or centre frame + caption).

The SDK's own retries are switched off (``retry_options=None``) so the robust client is the only retry layer and
its counts are true. ``base_url`` points the SDK at a proxy or, in tests, at a local fake server.
"""

from __future__ import annotations

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
    parse_retry_after,
    resolve_api_key,
)
from emollama.instruct.providers.media import media_bytes
from emollama.instruct.providers.prompts import DEFAULT_PROMPT_VERSION, load_prompts, parse_reply

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "gemini-2.5-flash"
ENV_VARS = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
_RETRY_STATUS = (408, 429, 500, 502, 503, 504)


def _sdk():
    try:
        from google import genai
        from google.genai import errors, types
    except ImportError as e:
        raise ImportError("the gemini provider needs google-genai: pip install 'emollama[gen]'") from e
    return genai, types, errors


class GeminiGenerator:
    """``Generator`` over ``genai.Client(...).models.generate_content``.

    Args:
        model: Gemini model id.
        base_url: API endpoint override (proxy, regional endpoint, local fake server).
        api_key: normally None: read from $GEMINI_API_KEY / $GOOGLE_API_KEY or the keys file.
        timeout: seconds per HTTP request.
        temperature / max_output_tokens: decoding settings (recorded via the ledger key).
        prompt_version: prompt file under resources/prompts.
        keys_file: YAML file with ``gemini: <key>`` (see ``resolve_api_key``).
    """

    name = "gemini"
    needs_network = True

    def __init__(self, model: str = DEFAULT_MODEL, base_url: str | None = None, api_key: str | None = None,
                 timeout: float = 60.0, temperature: float = 0.7, max_output_tokens: int = 1024,
                 prompt_version: str = DEFAULT_PROMPT_VERSION, keys_file: str | None = None) -> None:
        check_network_allowed(self.name, base_url)
        genai, types, self._errors = _sdk()
        self._types = types
        self.model = model
        self.prompt_version = prompt_version
        self.prompts = load_prompts(prompt_version)
        self.temperature, self.max_output_tokens = temperature, max_output_tokens
        self._key = api_key or resolve_api_key("gemini", ENV_VARS, keys_file)
        if not self._key:
            raise PermanentError(f"no Gemini API key: set ${ENV_VARS[0]} or add 'gemini: <key>' to the keys file")
        http = types.HttpOptions(base_url=base_url, timeout=int(timeout * 1000), retry_options=None)
        self._client = genai.Client(api_key=self._key, http_options=http)

    def __repr__(self) -> str:  # never show the key
        return f"GeminiGenerator(model={self.model!r}, prompt_version={self.prompt_version!r})"

    def secrets(self) -> Sequence[str]:
        return (self._key,)

    @property
    def settings(self) -> dict[str, Any]:
        """Decoding settings that change the output; part of the ledger key."""
        return {"temperature": self.temperature, "max_output_tokens": self.max_output_tokens}

    def generate(self, request: GenerationRequest) -> Generation:
        types = self._types
        system, user = self.prompts.render(request)
        parts = [user]
        if request.media is not None:
            data, mime = media_bytes(request.media, request.kind)
            parts = [types.Part.from_bytes(data=data, mime_type=mime), user]
        config = types.GenerateContentConfig(
            system_instruction=system, temperature=self.temperature, seed=request.seed,
            max_output_tokens=self.max_output_tokens, response_mime_type="application/json")
        try:
            resp = self._client.models.generate_content(model=self.model, contents=parts, config=config)
        except self._errors.APIError as err:
            raise self._translate(err) from None
        except (self._errors.UnknownApiResponseError, ValueError) as err:  # the HTTP body was not JSON (cut off)
            raise MalformedResponse(f"unreadable HTTP response: {type(err).__name__}: {str(err)[:200]}") from None
        except Exception as err:
            if _is_transport_error(err):
                raise TransientError(f"{type(err).__name__}: {err}") from None
            raise
        cand = (resp.candidates or [None])[0]
        finish = str(getattr(cand, "finish_reason", "") or "")
        if cand is None or finish.endswith("MAX_TOKENS"):
            block = getattr(resp.prompt_feedback, "block_reason", None) if resp.prompt_feedback else None
            raise MalformedResponse(f"no usable candidate (finish={finish or None}, block={block})")
        u = resp.usage_metadata
        usage = Usage(int(getattr(u, "prompt_token_count", 0) or 0), int(getattr(u, "candidates_token_count", 0) or 0))
        turns = parse_reply(resp.text, request, self.prompts.reply_fields[request.kind])
        return Generation(turns, usage, resp.model_version or self.model)

    def _translate(self, err: Any) -> Exception:
        code = int(getattr(err, "code", 0) or 0)
        msg = f"Gemini HTTP {code}: {getattr(err, 'message', None) or err}"[:300]
        if code in _RETRY_STATUS:
            headers = getattr(getattr(err, "response", None), "headers", None)
            return TransientError(msg, status=code, retry_after=parse_retry_after(headers))
        return PermanentError(msg)


def _is_transport_error(err: Exception) -> bool:
    """Timeouts and dropped connections from httpx/httpx2 (checked by name: the SDK may use either)."""
    names = {c.__name__ for c in type(err).__mro__}
    return bool(names & {"TimeoutException", "ConnectError", "RemoteProtocolError", "ReadError", "NetworkError"})


PROVIDERS.add("gemini", GeminiGenerator)
