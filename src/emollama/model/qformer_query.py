"""The instruction-conditioned Q-Former call shared by LLaMA-VID context tokens and the face clue aggregator."""

from __future__ import annotations

import torch
from transformers import InstructBlipQFormerModel


def query_qformer(
    qformer: InstructBlipQFormerModel,
    query: torch.Tensor,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    memory: torch.Tensor,
    memory_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Learnable queries read ``memory`` while attending to the instruction text; returns the query outputs.

    Args:
        qformer: the Q-Former (its ``encoder_hidden_size`` is the memory width M).
        query: (1, Q, H) learnable queries, shared by every row.
        input_ids / attention_mask: (B, L) instruction tokens of each row.
        memory: (B, S, M) cross-attention memory (already layer-normed).
        memory_mask: (B, S) 1 = attend, 0 = padding; None attends everywhere.
    Returns:
        (B, Q, H) the Q-Former's last hidden state at the query positions.
    """
    queries = query.expand(memory.shape[0], -1, -1)
    # the queries are never padded; the text mask follows them, as in InstructBLIP
    query_mask = torch.ones(queries.shape[:2], dtype=attention_mask.dtype, device=memory.device)
    out = qformer(
        input_ids=input_ids,
        attention_mask=torch.cat([query_mask, attention_mask], dim=1),
        query_embeds=queries,
        encoder_hidden_states=memory,
        encoder_attention_mask=memory_mask,
    )
    return out.last_hidden_state[:, : queries.shape[1]]
