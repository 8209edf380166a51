"""Zero-shot evaluation of other MLLMs over an OpenAI-compatible chat API (vLLM, Ollama, OpenAI, hosted services).

Each sample's category question (the same builder and seed as for our model, placeholders removed) is sent with
the image, or ``frames`` uniformly sampled video frames, as base64 data URLs; the reply text goes through the same
parser and metrics. This is how the paper compared open-source MLLMs zero-shot. Calls run through the robust client
of `emollama.instruct.client`: bounded concurrency, token-bucket rate limit, retries honouring Retry-After, and a
SQLite ledger so a rerun never pays twice. Only ``generate`` mode exists: APIs expose no class log-likelihoods.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emollama.constants import PLACEHOLDER_TOKENS
from emollama.evaluation.backends import EvalItem
from emollama.instruct.client import ClientConfig, Ledger, RobustClient, ordered_map, request_key
from emollama.instruct.providers.base import Generation
from emollama.instruct.providers.media import media_bytes
from emollama.instruct.providers.openai_compat import OpenAIChatClient, data_url, usage_of
from emollama.media.decode import load_media, media_item

logger = logging.getLogger(__name__)
PROMPT_VERSION = "zeroshot-v1"  # how the question is sent (text first, then images); part of the ledger key


def question_text(item: EvalItem) -> str:
    """The category question without `<image>`/`<video>`/`<face>` placeholders (media go as separate parts)."""
    text = item.question
    for tok in PLACEHOLDER_TOKENS:
        text = text.replace(tok, "")
    return " ".join(text.split())


class OpenAIZeroShotBackend:
    """Backend (generate mode only) over ``openai.OpenAI(base_url=...).chat.completions``.

    Args:
        api_model: the model name the server knows ("Qwen/Qwen2-VL-7B-Instruct", "llava", "gpt-4o-mini").
        base_url: e.g. "http://localhost:8000/v1"; None = api.openai.com (needs $OPENAI_API_KEY).
        frames: video frames sent per clip (uniform sampling); images are sent as they are.
        max_tokens / temperature / seed: decoding (temperature 0 = greedy where the server honours it).
        client: a `ClientConfig` (concurrency, rate, retries); ledger: SQLite path for resume.
    """

    modes = ("generate",)

    def __init__(self, api_model: str, base_url: str | None = None, *, frames: int = 4, max_tokens: int = 32,
                 temperature: float = 0.0, seed: int = 0, client: ClientConfig | None = None,
                 ledger: str | Path | None = None, api_key_env: str | None = None,
                 keys_file: str | None = None) -> None:
        self.api_model, self.base_url, self.frames = api_model, base_url, frames
        self.max_tokens, self.temperature, self.seed = max_tokens, temperature, seed
        cfg = client or ClientConfig()
        self._chat = OpenAIChatClient(base_url, api_key_env=api_key_env, keys_file=keys_file, timeout=cfg.timeout,
                                      who="--backend openai")
        self.client = RobustClient(cfg, Ledger(ledger) if ledger else None, secrets=self._chat.secrets())

    def describe(self) -> dict[str, Any]:
        return {"backend": "openai-compatible API (zero-shot)", "model": self.api_model,
                "base_url": self.base_url or "https://api.openai.com/v1", "frames": self.frames,
                "max_new_tokens": self.max_tokens, "temperature": self.temperature, "api_seed": self.seed,
                "prompt_version": PROMPT_VERSION, "decoding": "greedy" if self.temperature == 0 else "sampled"}

    def _images(self, item: EvalItem) -> list[str]:
        s = item.sample
        if not s.is_video:
            return [data_url(*media_bytes(Path(s.media), "image"))]
        from PIL import Image

        urls = []
        for frame in media_item(load_media(s.media, True, f"uniform:{self.frames}"), True):
            buf = io.BytesIO()
            Image.fromarray(frame).save(buf, format="JPEG", quality=92)
            urls.append(data_url(buf.getvalue(), "image/jpeg"))
        return urls

    def _call(self, text: str, urls: list[str]) -> Generation:
        content: list[dict[str, Any]] = [{"type": "text", "text": text}]
        content += [{"type": "image_url", "image_url": {"url": u}} for u in urls]
        resp = self._chat.create(model=self.api_model, messages=[{"role": "user", "content": content}],
                                 temperature=self.temperature, max_tokens=self.max_tokens, seed=self.seed)
        # a reply cut by max_tokens is still an answer: the parser decides whether it names a class
        return Generation(((text, resp.choices[0].message.content or ""),), usage_of(resp),
                          resp.model or self.api_model)

    def _one(self, item: EvalItem) -> dict[str, dict[str, Any]]:
        text = question_text(item)
        urls = self._images(item)
        key = request_key(kind="zeroshot", prompt_version=PROMPT_VERSION, model=self.api_model,
                          base_url=self.base_url, sample=item.key, text=text,
                          media=[request_key(u=u) for u in urls], max_tokens=self.max_tokens,
                          temperature=self.temperature, seed=self.seed)
        out = self.client.call(key, {"sample_id": item.key, "model": self.api_model},
                               lambda: self._call(text, urls))
        if out.status != "ok":
            return {"generate": {"answer": "", "status": f"api_{out.status}", "error": out.error}}
        return {"generate": {"answer": out.generation.turns[0][1], "cached": out.cached}}

    def predict(self, items: Sequence[EvalItem], modes: Sequence[str]) -> list[dict[str, dict[str, Any]]]:
        if set(modes) - {"generate"}:
            raise ValueError("the API backend only supports generate mode")
        return list(ordered_map(self._one, items, workers=self.client.config.concurrency))
