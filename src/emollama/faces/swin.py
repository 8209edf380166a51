"""Swin Transformer (v1) with torchvision's parameter names, so torchvision `swin_b` state dicts load unchanged.

Our own port (torchvision is unusable on CPU machines, ASSETS.md §2): `SwinFeatures` == torchvision's
`SwinTransformer.features` (patch embed, 4 stages of shifted-window blocks, patch merging in between). The ImageNet
head is deliberately absent. `stage_outputs` returns the NHWC output of each stage (features 1, 3, 5, 7).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class SwinConfig:
    """Swin v1 shape. Defaults = torchvision `swin_b` (embed 128, depths 2-2-18-2, heads 4-8-16-32, window 7)."""

    patch_size: int = 4
    embed_dim: int = 128
    depths: tuple[int, ...] = (2, 2, 18, 2)
    num_heads: tuple[int, ...] = (4, 8, 16, 32)
    window_size: int = 7
    mlp_ratio: float = 4.0
    layer_norm_eps: float = 1e-5

    @property
    def stage_dims(self) -> tuple[int, ...]:
        return tuple(self.embed_dim * 2**i for i in range(len(self.depths)))


def _relative_position_index(ws: int) -> torch.Tensor:
    """(ws^4,) index into the ((2 ws - 1)^2, heads) bias table for every (query, key) pair of a window."""
    coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)  # (2, ws^2)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (ws - 1)  # (ws^2, ws^2, 2), >= 0
    return (rel[..., 0] * (2 * ws - 1) + rel[..., 1]).flatten()


def _axis_regions(n: int, ws: int, shift: int) -> torch.Tensor:
    """(n,) region label along one axis after a cyclic roll by ``shift``: 0 body, 1 last window, 2 wrapped part."""
    idx = torch.arange(n)
    if shift == 0:
        return torch.zeros(n, dtype=torch.long)
    return (idx >= n - ws).long() + (idx >= n - shift).long()


def _shift_mask(pad_h: int, pad_w: int, ws: int, sh: int, sw: int, device: torch.device) -> torch.Tensor:
    """(nW, ws^2, ws^2) additive mask: -100 between tokens from different regions before the roll (as torchvision)."""
    region = _axis_regions(pad_h, ws, sh)[:, None] * 3 + _axis_regions(pad_w, ws, sw)[None, :]  # (pad_h, pad_w)
    region = region.view(pad_h // ws, ws, pad_w // ws, ws).permute(0, 2, 1, 3).reshape(-1, ws * ws)
    diff = region[:, None, :] - region[:, :, None]
    return torch.zeros(diff.shape, device=device).masked_fill(diff.to(device) != 0, -100.0)


class ShiftedWindowAttention(nn.Module):
    """Window multi-head self-attention with relative position bias; ``shift`` > 0 gives SW-MSA."""

    def __init__(self, dim: int, window_size: int, shift: int, num_heads: int) -> None:
        super().__init__()
        self.window_size, self.shift, self.num_heads = window_size, shift, num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        # persistent: torchvision saves it, so checkpoints contain it
        self.register_buffer("relative_position_index", _relative_position_index(window_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, H, W, C) -> (B, H, W, C)."""
        b, h, w, c = x.shape
        ws, nh = self.window_size, self.num_heads
        x = F.pad(x, (0, 0, 0, (ws - w % ws) % ws, 0, (ws - h % ws) % ws))
        ph, pw = x.shape[1], x.shape[2]
        sh, sw = (self.shift if ws < ph else 0), (self.shift if ws < pw else 0)  # no shift if one window covers
        if sh or sw:
            x = torch.roll(x, shifts=(-sh, -sw), dims=(1, 2))
        nw = (ph // ws) * (pw // ws)
        x = x.view(b, ph // ws, ws, pw // ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b * nw, ws * ws, c)
        q, k, v = self.qkv(x).reshape(b * nw, ws * ws, 3, nh, c // nh).permute(2, 0, 3, 1, 4)  # 3 x (bnW, nh, N, d)
        attn = (q * (c // nh) ** -0.5) @ k.transpose(-2, -1)  # (bnW, nh, N, N)
        bias = self.relative_position_bias_table[self.relative_position_index].view(ws * ws, ws * ws, nh)
        attn = attn + bias.permute(2, 0, 1).unsqueeze(0)
        if sh or sw:
            mask = _shift_mask(ph, pw, ws, sh, sw, x.device)  # (nW, N, N)
            attn = (attn.view(b, nw, nh, ws * ws, ws * ws) + mask[None, :, None]).view(-1, nh, ws * ws, ws * ws)
        x = (attn.softmax(-1) @ v).transpose(1, 2).reshape(b * nw, ws * ws, c)
        x = self.proj(x)
        x = x.view(b, ph // ws, pw // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, ph, pw, c)
        if sh or sw:
            x = torch.roll(x, shifts=(sh, sw), dims=(1, 2))
        return x[:, :h, :w, :].contiguous()


class SwinBlock(nn.Module):
    """Pre-norm block: x + attn(norm1(x)); x + mlp(norm2(x)). ``mlp`` indices 0/3 match torchvision's MLP."""

    def __init__(self, dim: int, num_heads: int, window_size: int, shift: int, mlp_ratio: float, eps: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = ShiftedWindowAttention(dim, window_size, shift, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(0.0), nn.Linear(hidden, dim), nn.Dropout(0.0)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, H, W, C) -> (B, H, W, C). Stochastic depth is a training-only identity here."""
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchMerging(nn.Module):
    """(B, H, W, C) -> (B, ceil(H/2), ceil(W/2), 2C): concat 2x2 neighbours (torchvision order), norm, reduce."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = nn.LayerNorm(4 * dim, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[1], x.shape[2]
        x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x))


class _ToNHWC(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(0, 2, 3, 1)


class SwinFeatures(nn.Sequential):
    """torchvision `SwinTransformer.features`: [patch embed, stage1, merge, stage2, merge, stage3, merge, stage4]."""

    def __init__(self, cfg: SwinConfig) -> None:
        eps = cfg.layer_norm_eps
        layers: list[nn.Module] = [
            nn.Sequential(
                nn.Conv2d(3, cfg.embed_dim, kernel_size=cfg.patch_size, stride=cfg.patch_size),
                _ToNHWC(),
                nn.LayerNorm(cfg.embed_dim, eps=eps),
            )
        ]
        for i, (depth, heads, dim) in enumerate(zip(cfg.depths, cfg.num_heads, cfg.stage_dims, strict=True)):
            shifts = [0 if j % 2 == 0 else cfg.window_size // 2 for j in range(depth)]
            layers.append(
                nn.Sequential(*(SwinBlock(dim, heads, cfg.window_size, s, cfg.mlp_ratio, eps) for s in shifts))
            )
            if i < len(cfg.depths) - 1:
                layers.append(PatchMerging(dim, eps))
        super().__init__(*layers)

    def stage_outputs(self, pixel_values: torch.Tensor) -> list[torch.Tensor]:
        """pixel_values (B, 3, H, W) -> per stage (B, H/4/2^i, W/4/2^i, C_i) NHWC (torchvision features 1, 3, 5, 7)."""
        x, outs = pixel_values, []
        for i, layer in enumerate(self):
            x = layer(x)
            if i % 2 == 1:
                outs.append(x)
        return outs
