"""Vision towers: EVA-ViT-G via transformers' `Blip2VisionModel` (LLaMA-VID) or CLIP as an alternative.

Each tower returns RAW per-token features (B, 1 + P, D) with the CLS token first: for EVA this is the output
of the last block *without* `post_layernorm` (SPEC §3.7); LLaMA-VID applies its own `vlm_att_ln` to the
Q-Former memory only. Each tower also declares its preprocessing (STYLE §3.4).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import Blip2VisionModel, CLIPVisionModel, PreTrainedConfig

from emollama.registry import Registry

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class Preprocess:
    """How frames must be prepared for a tower: shortest-edge resize (bicubic), centre crop, normalise."""

    size: int
    mean: tuple[float, float, float] = CLIP_MEAN
    std: tuple[float, float, float] = CLIP_STD
    resample: str = "bicubic"
    pad_to_square: bool = False


TOWERS: Registry[type[VisionTower]] = Registry("vision tower")


class VisionTower(nn.Module):
    """Base class: ``forward(pixel_values (F, 3, H, W)) -> (F, 1 + P, D)`` raw features, CLS first."""

    has_cls_token = True

    def __init__(self, config: PreTrainedConfig, feature_layer: int = -1) -> None:
        super().__init__()
        self.config = config
        self.feature_layer = feature_layer

    @property
    def hidden_size(self) -> int:
        return self.config.hidden_size

    @property
    def preprocess(self) -> Preprocess:
        return Preprocess(size=self.config.image_size)


@TOWERS.register("blip_2_vision_model")
class EvaTower(VisionTower):
    """EVA-ViT-G (LAVIS) in `Blip2VisionModel` form; 224 px -> 257 x 1408 features at paper scale."""

    def __init__(self, config: PreTrainedConfig, feature_layer: int = -1) -> None:
        super().__init__(config, feature_layer)
        self.model = Blip2VisionModel(config)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        hidden = self.model.embeddings(pixel_values)
        if self.feature_layer == -1:
            return self.model.encoder(inputs_embeds=hidden).last_hidden_state
        out = self.model.encoder(inputs_embeds=hidden, output_hidden_states=True)
        return out.hidden_states[self.feature_layer]


@TOWERS.register("clip_vision_model")
class ClipTower(VisionTower):
    """CLIP ViT; LLaVA convention takes hidden_states[-2] (set ``vision_feature_layer: -2``)."""

    def __init__(self, config: PreTrainedConfig, feature_layer: int = -2) -> None:
        super().__init__(config, feature_layer)
        self.model = CLIPVisionModel(config)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        out = self.model(pixel_values=pixel_values, output_hidden_states=True)
        return out.hidden_states[self.feature_layer]


@TOWERS.register("emollama_emonet")
class EmoNetTower(VisionTower):
    """emonet-fer2013 (the analyzer's expression CNN) without its head: RGB -> grey (ITU-R 601 luma) -> per-image
    standardisation -> last-stage feature map, (F, 3, S, S) -> (F, 1 + (S/8)^2, C), CLS slot = mean of the cells.

    It stays in eval mode (BatchNorm running statistics) whatever `train()` says: the tower is frozen.
    """

    LUMA = (0.299, 0.587, 0.114)

    def __init__(self, config: PreTrainedConfig, feature_layer: int = -1) -> None:
        super().__init__(config, feature_layer)
        from emollama.faces._expression_torch import ExpressionNet
        from emollama.faces.expression_net import ExpressionNetConfig

        net = ExpressionNet(ExpressionNetConfig(widths=tuple(config.widths), blocks=tuple(config.blocks),
                                                size=config.image_size))
        self.stem, self.body = net.stem, net.body  # the 7-way head is not a feature
        self.register_buffer("luma", torch.tensor(self.LUMA).view(1, 3, 1, 1), persistent=False)
        super().train(False)

    def train(self, mode: bool = True) -> EmoNetTower:
        return super().train(False)

    @property
    def preprocess(self) -> Preprocess:
        # [0, 1] RGB: the network standardises each image itself
        return Preprocess(size=self.config.image_size, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0),
                          resample="bilinear")

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = (pixel_values * self.luma.to(pixel_values.dtype)).sum(1, keepdim=True)  # (F, 1, S, S)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = x.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-2)  # as ExpressionNet.forward
        h = self.body(self.stem((x - mean) / std))  # (F, C, g, g)
        patches = h.flatten(2).transpose(1, 2)  # (F, g*g, C)
        return torch.cat([patches.mean(1, keepdim=True), patches], dim=1)

    def load_expression_weights(self, path) -> None:
        """Load a `emollama train-expression` safetensors file (its head is dropped); shapes must match."""
        from safetensors.torch import load_file

        state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()
                 if not k.startswith("head.")}
        missing, unexpected = self.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise ValueError(f"{path}: does not fit the emonet tower (missing {missing[:5]}, unexpected "
                             f"{unexpected[:5]}); check vision_config.widths/blocks")


def build_vision_tower(config: PreTrainedConfig, feature_layer: int = -1) -> VisionTower:
    """Build the tower registered for ``config.model_type``."""
    return TOWERS.get(config.model_type)(config, feature_layer)
