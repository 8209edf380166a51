"""LLaMA-VID token generation (SPEC §2.5): per frame, 1 text-guided context token + pooled content token(s).

Parameter names follow LLaMA-VID (`vlm_att_*`, `mm_projector`) so checkpoint conversion is a prefix map.
"""

from __future__ import annotations

import math
import re

import torch
import torch.nn.functional as F
from torch import nn
from transformers import InstructBlipQFormerModel

from emollama.model import tokens
from emollama.model.configuration import EmoLlamaConfig
from emollama.model.qformer_query import query_qformer


def build_mm_projector(kind: str, in_dim: int, out_dim: int) -> nn.Module:
    """'linear', 'identity' or 'mlp{N}x_gelu' (Linear, GELU, Linear, ...) as in LLaVA's builder."""
    if kind == "linear":
        return nn.Linear(in_dim, out_dim)
    if kind == "identity":
        return nn.Identity()
    m = re.fullmatch(r"mlp(\d+)x_gelu", kind)
    if not m:
        raise ValueError(f"unknown mm_projector_type {kind!r}; use 'linear', 'identity' or 'mlp2x_gelu'")
    layers: list[nn.Module] = [nn.Linear(in_dim, out_dim)]
    for _ in range(int(m.group(1)) - 1):
        layers += [nn.GELU(), nn.Linear(out_dim, out_dim)]
    return nn.Sequential(*layers)


class LlamaVidTokens(nn.Module):
    """Context + content tokens from raw vision features and a Q-Former prompt.

    Args:
        config: the composite config; uses vision/qformer/text widths, num_query, compress_type.
    """

    def __init__(self, config: EmoLlamaConfig) -> None:
        super().__init__()
        self.config = config
        dv = config.vision_config.hidden_size
        hq = config.qformer_config.hidden_size
        dt = config.text_config.hidden_size
        self.vlm_att_ln = nn.LayerNorm(dv)  # torch default eps 1e-5, as LLaMA-VID
        self.vlm_att_query = nn.Parameter(torch.zeros(1, config.num_query, hq))
        self.vlm_att_encoder = InstructBlipQFormerModel(config.qformer_config)
        self.vlm_att_projector = nn.Linear(hq, dv)
        self.vlm_att_key_projector = nn.Linear(dv, dv)
        self.vlm_att_val_projector = nn.Linear(dv, dt)
        self.mm_projector = build_mm_projector(config.mm_projector_type, dv, dt)

    def text_queries(
        self, features: torch.Tensor, qformer_input_ids: torch.Tensor, qformer_attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """Instruction-aware queries projected to the vision width.

        Args:
            features: (R, 1 + P, Dv) raw frame features (all tokens incl. CLS form the memory).
            qformer_input_ids / qformer_attention_mask: (R, L) the prompt of each row's turn.
        Returns:
            (R, num_query, Dv)
        """
        out = query_qformer(self.vlm_att_encoder, self.vlm_att_query, qformer_input_ids, qformer_attention_mask,
                            self.vlm_att_ln(features))
        return self.vlm_att_projector(out)

    def context_token(self, queries: torch.Tensor, patches: torch.Tensor) -> torch.Tensor:
        """(R, Q, Dv) queries, (R, P, Dv) patches -> (R, 1, Dt): mean over queries of softmax(QK^T/sqrt d) V."""
        keys = self.vlm_att_key_projector(patches)  # (R, P, Dv)
        attn = torch.softmax(queries @ keys.transpose(1, 2) / math.sqrt(patches.shape[-1]), dim=-1)  # (R, Q, P)
        embed = (attn @ patches).mean(dim=1, keepdim=True)  # values are the raw patches: (R, 1, Dv)
        return self.vlm_att_val_projector(embed)

    def content_tokens(self, patches: torch.Tensor) -> torch.Tensor:
        """(R, P, Dv) -> (R, C, Dt) with C from `tokens.content_tokens_per_frame`."""
        ct = self.config.compress_type
        if ct is None:
            pooled = patches
        elif ct.startswith("grid:"):
            g = tokens.patch_grid(self.config)
            k = tokens.grid_pool_kernel(self.config)
            grid = patches.transpose(1, 2).reshape(patches.shape[0], -1, g, g)  # (R, Dv, g, g)
            pooled = F.avg_pool2d(grid, kernel_size=k, stride=k).flatten(2).transpose(1, 2)
        else:
            pooled = patches.mean(dim=1, keepdim=True)
        return self.mm_projector(pooled)

    def forward(
        self, features: torch.Tensor, qformer_input_ids: torch.Tensor, qformer_attention_mask: torch.Tensor
    ) -> torch.Tensor:
        """Per-frame tokens in frame order.

        Args:
            features: (R, 1 + P, Dv) raw features, one row per frame (frames of several media concatenated).
            qformer_input_ids / qformer_attention_mask: (R, L) the prompt guiding each frame.
        Returns:
            (R, 1 + C, Dt): row r is [context, content...] of frame r.
        """
        patches = features[:, 1:]  # LLaMA-VID 'patch' selection drops CLS
        ctx = self.context_token(self.text_queries(features, qformer_input_ids, qformer_attention_mask), patches)
        return torch.cat([ctx, self.content_tokens(patches)], dim=1)
