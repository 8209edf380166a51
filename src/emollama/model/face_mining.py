"""Face Info Mining + Q-Former clue aggregator -> N face tokens per `<face>` placeholder.

Our interpretation of EMO-LLaMA (the paper's wiring is not public; docs/architecture.md):
  per frame  global tokens: the prior vector (AU cues, pose, AGR, embedding) and the pooled face-crop features
             local tokens : vision patch features pooled inside each landmark-anchored region + region geometry
  per clip   all frame tokens (+ temporal position) form the memory of an instruction-conditioned Q-Former with
             N learnable queries; its outputs are projected to the LM width.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import InstructBlipQFormerConfig, InstructBlipQFormerModel

from emollama.faces.contract import region_table
from emollama.model.configuration import EmoLlamaFaceConfig
from emollama.model.qformer_query import query_qformer


def region_boxes(landmarks: torch.Tensor, layout: str, margin: float, min_size: float = 0.08) -> torch.Tensor:
    """Boxes of the facial regions from landmarks.

    Args:
        landmarks: (F, K, 2) in [0, 1] crop coordinates.
    Returns:
        (F, R, 4) boxes as (x0, y0, x1, y1), clipped to [0, 1], at least ``min_size`` wide and high.
    """
    _, idx = region_table(layout)
    boxes = []
    for ids in idx:
        pts = landmarks[:, list(ids)]  # (F, n, 2)
        lo, hi = pts.amin(dim=1), pts.amax(dim=1)
        centre, half = (lo + hi) / 2, ((hi - lo) * (1 + 2 * margin)).clamp(min=min_size) / 2
        boxes.append(torch.cat([centre - half, centre + half], dim=-1).clamp(0, 1))
    return torch.stack(boxes, dim=1)


def pool_regions(patches: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Average patch features whose centres fall inside each box (nearest patch when none does).

    Args:
        patches: (F, P, D) with P = g * g on a square grid.
        boxes: (F, R, 4) in [0, 1].
    Returns:
        (F, R, D)
    """
    f, p, _ = patches.shape
    g = int(round(p**0.5))
    c = (torch.arange(g, device=patches.device, dtype=patches.dtype) + 0.5) / g
    cy, cx = torch.meshgrid(c, c, indexing="ij")
    cx, cy = cx.reshape(1, 1, p), cy.reshape(1, 1, p)  # (1, 1, P)
    x0, y0, x1, y1 = (boxes[..., i : i + 1].to(patches.dtype) for i in range(4))  # (F, R, 1)
    inside = ((cx >= x0) & (cx <= x1) & (cy >= y0) & (cy <= y1)).to(patches.dtype)  # (F, R, P)
    # a tiny box between patch centres still gets its nearest patch, so no region is ever empty
    dist = (cx - (x0 + x1) / 2) ** 2 + (cy - (y0 + y1) / 2) ** 2
    nearest = torch.nn.functional.one_hot(dist.argmin(-1), p).to(patches.dtype)
    weights = torch.where(inside.sum(-1, keepdim=True) > 0, inside, nearest)
    weights = weights / weights.sum(-1, keepdim=True)
    return weights @ patches


class FaceInfoMining(nn.Module):
    """Facial priors (+ face-crop vision features) -> (N, num_queries, text_hidden) face tokens."""

    def __init__(self, cfg: EmoLlamaFaceConfig, vision_hidden: int, text_hidden: int) -> None:
        super().__init__()
        self.cfg = cfg
        h = cfg.hidden_size
        self.num_regions = len(region_table(cfg.landmark_layout)[0])
        self.prior_proj = nn.Sequential(nn.Linear(cfg.prior_dim, h), nn.GELU(), nn.Linear(h, h))
        self.geometry_proj = nn.Linear(4, h)
        self.region_embed = nn.Embedding(self.num_regions, h)
        n_types = 2 + 1  # prior token, crop token, local tokens
        self.type_embed = nn.Embedding(n_types, h)
        self.temporal_embed = nn.Embedding(cfg.max_frames, h)
        if cfg.use_crop_features:
            self.crop_proj = nn.Linear(vision_hidden, h)
            self.local_proj = nn.Linear(vision_hidden, h)
        self.memory_ln = nn.LayerNorm(h)
        self.query = nn.Parameter(torch.randn(1, cfg.num_queries, h) * cfg.initializer_range)
        agg_cfg = InstructBlipQFormerConfig(
            vocab_size=cfg.vocab_size,
            hidden_size=h,
            num_hidden_layers=cfg.num_hidden_layers,
            num_attention_heads=cfg.num_attention_heads,
            intermediate_size=cfg.intermediate_size,
            cross_attention_frequency=cfg.cross_attention_frequency,
            encoder_hidden_size=h,
            max_position_embeddings=cfg.max_position_embeddings,
            layer_norm_eps=cfg.layer_norm_eps,
            hidden_dropout_prob=cfg.hidden_dropout_prob,
            attention_probs_dropout_prob=cfg.attention_probs_dropout_prob,
        )
        self.aggregator = InstructBlipQFormerModel(agg_cfg)
        self.out_proj = nn.Linear(h, text_hidden)

    def frame_tokens(
        self, prior_values: torch.Tensor, landmarks: torch.Tensor, crop_features: torch.Tensor | None
    ) -> torch.Tensor:
        """(F, prior_dim), (F, K, 2), optional (F, 1 + P, Dv) -> (F, M, H) per-frame memory tokens."""
        dtype = self.geometry_proj.weight.dtype
        boxes = region_boxes(landmarks.float(), self.cfg.landmark_layout, self.cfg.region_margin)  # (F, R, 4)
        geom = torch.cat([(boxes[..., :2] + boxes[..., 2:]) / 2, boxes[..., 2:] - boxes[..., :2]], -1).to(dtype)
        local = self.geometry_proj(geom) + self.region_embed.weight  # (F, R, H)
        toks = [self.prior_proj(prior_values.to(dtype)).unsqueeze(1) + self.type_embed.weight[0]]
        if crop_features is not None:
            patches = crop_features[:, 1:]
            toks.append(self.crop_proj(patches.mean(1, keepdim=True)) + self.type_embed.weight[1])
            local = local + self.local_proj(pool_regions(patches, boxes))
        toks.append(local + self.type_embed.weight[2])
        return torch.cat(toks, dim=1)

    def forward(
        self,
        prior_values: torch.Tensor,
        landmarks: torch.Tensor,
        frame_counts: torch.Tensor,
        qformer_input_ids: torch.Tensor,
        qformer_attention_mask: torch.Tensor,
        frame_mask: torch.Tensor | None = None,
        crop_features: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Aggregate each face's frames into face tokens.

        Args:
            prior_values: (F, prior_dim); landmarks: (F, K, 2); frame_counts: (N,) with sum F.
            qformer_input_ids / qformer_attention_mask: (N, L) instruction text of each face's turn.
            frame_mask: (F,) bool, False for frames without a detected face (excluded from the memory).
            crop_features: (F, 1 + P, Dv) raw vision features of the face crops, or None.
        Returns:
            (N, num_queries, text_hidden)
        """
        per_frame = self.frame_tokens(prior_values, landmarks, crop_features)  # (F, M, H)
        f, m, h = per_frame.shape
        counts = frame_counts.tolist()
        t_max = max(counts)
        # temporal position: frame index, rescaled when a clip is longer than the table
        pos = torch.cat([_frame_positions(t, self.cfg.max_frames) for t in counts]).to(per_frame.device)
        per_frame = per_frame + self.temporal_embed(pos).unsqueeze(1)
        valid = torch.ones(f, dtype=torch.bool, device=per_frame.device) if frame_mask is None else frame_mask
        memory = per_frame.new_zeros(len(counts), t_max * m, h)
        mem_mask = torch.zeros(len(counts), t_max * m, dtype=torch.long, device=per_frame.device)
        for i, chunk in enumerate(torch.split(torch.arange(f, device=per_frame.device), counts)):
            memory[i, : len(chunk) * m] = per_frame[chunk].reshape(-1, h)
            ok = valid[chunk].repeat_interleave(m).long()
            if ok.sum() == 0:  # no face on any frame: keep the (uninformative) tokens rather than mask all
                ok = torch.ones_like(ok)
            mem_mask[i, : len(chunk) * m] = ok
        out = query_qformer(self.aggregator, self.query, qformer_input_ids, qformer_attention_mask,
                            self.memory_ln(memory), mem_mask)
        return self.out_proj(out)


def _frame_positions(t: int, table: int) -> torch.Tensor:
    if t <= table:
        return torch.arange(t)
    return torch.round(torch.linspace(0, table - 1, t)).long()
