"""Every visual/face token count in one place. The processor, the model and the docs all call these.

SPEC §2.6: a frame gives 1 context token + C content tokens, where C depends on `compress_type`. Counts are per
placeholder: a media item that a later user turn gets again (`config.visual_tokens_per_turn`, SPEC §2.8) is one more
placeholder of the same `num_visual_tokens`, and the model produces one set of rows per placeholder.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from emollama.model.configuration import EmoLlamaConfig


def patch_grid(config: EmoLlamaConfig) -> int:
    """Side of the square patch grid of the vision tower (16 for EVA-G at 224 px)."""
    vc = config.vision_config
    return vc.image_size // vc.patch_size


def content_tokens_per_frame(config: EmoLlamaConfig) -> int:
    """Content tokens per frame for ``config.compress_type`` ('mean' -> 1, 'grid:N' -> N*N, None -> all patches)."""
    ct = config.compress_type
    g = patch_grid(config)
    if ct is None:
        return g * g
    if ct.startswith("grid:"):
        n = int(ct.split(":", 1)[1])
        if g % n:
            raise ValueError(f"compress_type {ct!r} needs the patch grid ({g}) to be divisible by {n}")
        return n * n
    return 1  # 'mean' and LLaMA-VID's 'mean_concat'


def tokens_per_frame(config: EmoLlamaConfig) -> int:
    """1 context token + content tokens."""
    return 1 + content_tokens_per_frame(config)


def num_visual_tokens(config: EmoLlamaConfig, num_frames: int) -> int:
    """Tokens for one `<image>` (num_frames=1) or `<video>` placeholder of ``num_frames`` frames."""
    if num_frames < 1:
        raise ValueError(f"a visual input needs at least 1 frame, got {num_frames}")
    return num_frames * tokens_per_frame(config)


def num_face_tokens(config: EmoLlamaConfig) -> int:
    """Tokens for one `<face>` placeholder (one set per image or per clip)."""
    return config.face_config.num_queries


def llava_style_tokens(config: EmoLlamaConfig, num_frames: int) -> int:
    """Visual tokens an all-patches LLaVA-style model would use (for benchmarks and docs)."""
    return num_frames * patch_grid(config) ** 2


def grid_pool_kernel(config: EmoLlamaConfig) -> int:
    """avg_pool2d kernel (= stride) for 'grid:N' pooling."""
    n = int(math.isqrt(content_tokens_per_frame(config)))
    return patch_grid(config) // n


def placeholder_mask(
    input_ids: torch.Tensor, token_ids: list[int], n_rows: int, name: str, detail: str = ""
) -> torch.Tensor:
    """Boolean mask of the placeholder positions, raising if their count differs from the number of feature rows.

    Args:
        input_ids: (B, L) token ids.
        token_ids: the placeholder ids (e.g. both `<image>` and `<video>`).
        n_rows: feature rows that will be scattered into the placeholders, in order.
        name: placeholder name for the message, e.g. "<video>".
        detail: context appended to the message (frames, tokens per frame, compress_type).
    Returns:
        (B, L) bool mask.
    """
    mask = torch.zeros_like(input_ids, dtype=torch.bool)
    for tid in token_ids:
        mask |= input_ids == tid
    n_tokens = int(mask.sum())
    if n_tokens != n_rows:
        extra = f" ({detail})" if detail else ""
        raise ValueError(
            f"{name}: {n_tokens} placeholder tokens but {n_rows} feature rows{extra}; "
            "the processor and the model disagree: build inputs with EmoLlamaProcessor for this config"
        )
    return mask
