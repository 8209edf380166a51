"""Conversation rendering with explicit supervised character spans (SPEC §2.9-2.10).

`vicuna_v1` reproduces LLaMA-VID's exact strings; `chat_template` uses the LM tokenizer's own template.
Labels are derived later from token offsets, never from length arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass

VICUNA_V1_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)
ROLES = ("user", "assistant")


@dataclass(frozen=True)
class Rendered:
    """Rendered prompt text and the [start, end) character spans whose tokens are supervised."""

    text: str
    spans: tuple[tuple[int, int], ...]


def validate_messages(messages: list[dict]) -> None:
    """Turns must alternate user/assistant, start with user, and have string content."""
    if not messages:
        raise ValueError("a conversation needs at least one user message")
    for i, m in enumerate(messages):
        want = ROLES[i % 2]
        if m.get("role") != want:
            raise ValueError(f"message {i} has role {m.get('role')!r}; turns must alternate user/assistant from user")
        if not isinstance(m.get("content"), str):
            raise ValueError(f"message {i} content must be a string, got {type(m.get('content')).__name__}")


def render_vicuna_v1(messages: list[dict], add_generation_prompt: bool, eos: str = "</s>") -> Rendered:
    """`{system} USER: {q1} ASSISTANT: {a1}</s>USER: {q2} ASSISTANT:` (separator style TWO)."""
    validate_messages(messages)
    text, spans = VICUNA_V1_SYSTEM + " ", []
    for m in messages:
        if m["role"] == "user":
            text += "USER: " + m["content"] + " "
        else:
            text += "ASSISTANT:"
            start = len(text)
            text += " " + m["content"] + eos
            spans.append((start, len(text)))
    if add_generation_prompt:
        if messages[-1]["role"] != "user":
            raise ValueError("add_generation_prompt needs the conversation to end with a user message")
        text += "ASSISTANT:"
    return Rendered(text, tuple(spans))


def render_chat_template(tokenizer, messages: list[dict], add_generation_prompt: bool) -> Rendered:
    """Render with ``tokenizer.apply_chat_template``; each assistant content + its end-of-turn token is supervised."""
    validate_messages(messages)
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("conv_template='chat_template' but the tokenizer has no chat_template; use 'vicuna_v1'")
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)
    spans, cursor = [], 0
    eos = tokenizer.eos_token or ""
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        # search only after this turn's generation prompt: the answer word also appears earlier, e.g. in the
        # question's option list ("{anger, ..., happiness}"), and supervising that copy teaches nothing
        prefix = tokenizer.apply_chat_template(messages[:i], tokenize=False, add_generation_prompt=True)
        if text.startswith(prefix):
            cursor = max(cursor, len(prefix))
        start = text.find(m["content"], cursor)
        if start < 0:
            raise ValueError("chat template altered an assistant message; cannot locate it for label masking")
        end = start + len(m["content"])
        after = text[end:]
        stripped = after.lstrip(" ")
        if eos and stripped.startswith(eos):
            end += len(after) - len(stripped) + len(eos)
        spans.append((start, end))
        cursor = end
    return Rendered(text, tuple(spans))
