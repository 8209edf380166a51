"""FaceXFormer (Kartik-3004/facexformer) re-implemented with the released checkpoint's parameter names (SPEC §4).

Swin backbone (`emollama.faces.swin`) -> multi-scale neck -> fused face map (B, 256, 56, 56) -> SAM-style two-way
transformer with 18 task tokens -> landmark / pose / attribute / visibility / age / gender / race / parsing heads.
`load_facexformer` reads `ckpts/model.pt` (the user supplies the path; nothing downloads). Face detection and the
prior-extractor registry live elsewhere (`faces.priors`); `FaceXFormerExtractor` turns face crops into
FacePrior-compatible dicts. Age/gender/race label names are [Unknown] (SPEC §4.5), so none are hard-coded here.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from emollama.faces.contract import region_table
from emollama.faces.swin import SwinConfig, SwinFeatures

logger = logging.getLogger(__name__)

TASK_TOKENS = ("landmarks", "pose", "attribute", "visibility", "age", "gender", "race")  # then the mask tokens


@dataclass(frozen=True)
class FaceXFormerConfig:
    """Shapes of FaceXFormer. `FaceXFormerConfig()` is the released model; `FaceXFormerConfig.tiny()` is for tests."""

    swin: SwinConfig = field(default_factory=SwinConfig)
    image_size: int = 224
    dim: int = 256  # neck width = decoder width
    decoder_depth: int = 2
    decoder_heads: int = 8
    decoder_mlp_dim: int = 2048
    attention_downsample: int = 2
    num_landmarks: int = 68
    head_sizes: tuple[tuple[str, int], ...] = (
        ("landmarks", 136),
        ("pose", 3),
        ("attribute", 40),
        ("visibility", 29),
        ("age", 8),
        ("gender", 2),
        ("race", 5),
    )
    num_masks: int = 11

    def __post_init__(self) -> None:
        names = tuple(name for name, _ in self.head_sizes)
        if names != TASK_TOKENS:
            raise ValueError(
                f"FaceXFormerConfig.head_sizes must name the task tokens {TASK_TOKENS} in order, got {names}"
            )

    @classmethod
    def tiny(cls) -> FaceXFormerConfig:
        """32 px input, 4 Swin stages of width 4..32 with window 2 (exercises shifts and padding), decoder width 16."""
        swin = SwinConfig(embed_dim=4, depths=(2, 2, 2, 2), num_heads=(1, 1, 2, 2), window_size=2)
        return cls(swin=swin, image_size=32, dim=16, decoder_heads=2, decoder_mlp_dim=32)

    @property
    def map_size(self) -> int:
        """Side of the fused face map (56 for the released model)."""
        return self.image_size // self.swin.patch_size


class MLP(nn.Module):
    """`layers.{0..n-1}` Linear with ReLU between (FaceXFormer/SAM head MLP)."""

    def __init__(self, d_in: int, d_hidden: int, d_out: int, num_layers: int = 3) -> None:
        super().__init__()
        dims = [d_in] + [d_hidden] * (num_layers - 1) + [d_out]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else F.relu(layer(x))
        return x


class LayerNorm2d(nn.Module):
    """LayerNorm over channels of (B, C, H, W), eps 1e-6 (SAM)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight, self.bias, self.eps = nn.Parameter(torch.ones(channels)), nn.Parameter(torch.zeros(channels)), eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        return self.weight[:, None, None] * (x - u) / torch.sqrt(s + self.eps) + self.bias[:, None, None]


class Attention(nn.Module):
    """Multi-head attention whose internal width is ``dim // downsample`` (SAM)."""

    def __init__(self, dim: int, heads: int, downsample: int = 1) -> None:
        super().__init__()
        inner = dim // downsample
        self.heads = heads
        self.q_proj, self.k_proj, self.v_proj = nn.Linear(dim, inner), nn.Linear(dim, inner), nn.Linear(dim, inner)
        self.out_proj = nn.Linear(inner, dim)

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """q (B, Nq, D), k/v (B, Nk, D) -> (B, Nq, D)."""

        def split(x: torch.Tensor) -> torch.Tensor:
            return x.reshape(x.shape[0], x.shape[1], self.heads, -1).transpose(1, 2)  # (B, h, N, d)

        q, k, v = split(self.q_proj(q)), split(self.k_proj(k)), split(self.v_proj(v))
        attn = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(-1)
        return self.out_proj((attn @ v).transpose(1, 2).flatten(2))


class MLPBlock(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.lin1, self.lin2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2(F.relu(self.lin1(x)))  # TwoWayTransformer passes ReLU (its default activation)


class TwoWayBlock(nn.Module):
    """Token self-attn, token->image cross-attn, token MLP, image->token cross-attn; post-norm (SAM)."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, downsample: int, skip_first_pe: bool) -> None:
        super().__init__()
        self.self_attn = Attention(dim, heads)
        self.cross_attn_token_to_image = Attention(dim, heads, downsample)
        self.cross_attn_image_to_token = Attention(dim, heads, downsample)
        self.mlp = MLPBlock(dim, mlp_dim)
        self.norm1, self.norm2, self.norm3, self.norm4 = (nn.LayerNorm(dim) for _ in range(4))
        self.skip_first_pe = skip_first_pe

    def forward(self, queries, keys, query_pe, key_pe):
        if self.skip_first_pe:  # first layer: the queries ARE the token embeddings, no PE added
            queries = self.self_attn(queries, queries, queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q, q, queries)
        queries = self.norm1(queries)
        queries = self.norm2(queries + self.cross_attn_token_to_image(queries + query_pe, keys + key_pe, keys))
        queries = self.norm3(queries + self.mlp(queries))
        keys = self.norm4(keys + self.cross_attn_image_to_token(keys + key_pe, queries + query_pe, queries))
        return queries, keys


class TwoWayTransformer(nn.Module):
    def __init__(self, cfg: FaceXFormerConfig) -> None:
        super().__init__()
        d = cfg.dim
        self.layers = nn.ModuleList(
            TwoWayBlock(d, cfg.decoder_heads, cfg.decoder_mlp_dim, cfg.attention_downsample, i == 0)
            for i in range(cfg.decoder_depth)
        )
        self.final_attn_token_to_image = Attention(d, cfg.decoder_heads, cfg.attention_downsample)
        self.norm_final_attn = nn.LayerNorm(d)

    def forward(self, image: torch.Tensor, image_pe: torch.Tensor, tokens: torch.Tensor):
        """image/image_pe (B, D, h, w), tokens (B, T, D) -> tokens (B, T, D), image tokens (B, h*w, D)."""
        keys, key_pe = image.flatten(2).transpose(1, 2), image_pe.flatten(2).transpose(1, 2)
        queries = tokens
        for layer in self.layers:
            queries, keys = layer(queries, keys, tokens, key_pe)
        queries = queries + self.final_attn_token_to_image(queries + tokens, keys + key_pe, keys)
        return self.norm_final_attn(queries), keys


class FaceDecoder(nn.Module):
    """Task tokens (order: `TASK_TOKENS` then `num_masks` mask tokens) through the two-way transformer, then heads."""

    def __init__(self, cfg: FaceXFormerConfig) -> None:
        super().__init__()
        d = cfg.dim
        self.transformer = TwoWayTransformer(cfg)
        for name in TASK_TOKENS:
            setattr(self, f"{name}_token", nn.Embedding(1, d))
        self.mask_tokens = nn.Embedding(cfg.num_masks, d)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(d, d // 4, kernel_size=2, stride=2),
            LayerNorm2d(d // 4),
            nn.GELU(),
            nn.ConvTranspose2d(d // 4, d // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.output_hypernetwork_mlps = MLP(d, d, d // 8)  # one MLP shared by all mask tokens (not SAM's list)
        self.head_names = [name for name, _ in cfg.head_sizes]
        for name, size in cfg.head_sizes:
            setattr(self, f"{name}_prediction_head", MLP(d, d, size))

    def forward(self, image: torch.Tensor, image_pe: torch.Tensor) -> dict[str, torch.Tensor]:
        """image (B, D, h, w), image_pe (1, D, h, w) -> {head: (B, size)}, 'segmentation' (B, M, 4h, 4w), 'refined'."""
        b, d, h, w = image.shape
        tokens = torch.cat([getattr(self, f"{n}_token").weight for n in TASK_TOKENS] + [self.mask_tokens.weight])
        tokens = tokens.unsqueeze(0).expand(b, -1, -1)  # (B, 7 + M, D)
        hs, src = self.transformer(image, image_pe.expand(b, -1, -1, -1), tokens)
        out = {n: getattr(self, f"{n}_prediction_head")(hs[:, TASK_TOKENS.index(n)]) for n in self.head_names}
        src = src.transpose(1, 2).reshape(b, d, h, w)
        up = self.output_upscaling(src)  # (B, D/8, 4h, 4w)
        hyper = self.output_hypernetwork_mlps(hs[:, len(TASK_TOKENS) :])  # (B, M, D/8)
        out["segmentation"] = (hyper @ up.flatten(2)).view(b, -1, up.shape[2], up.shape[3])
        out["refined_map"] = src
        return out


class PositionEmbeddingRandom(nn.Module):
    """Random Fourier features; the (2, D/2) matrix is random at init, so it MUST come from the checkpoint."""

    def __init__(self, num_feats: int) -> None:
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", torch.randn(2, num_feats))

    def forward(self, h: int, w: int) -> torch.Tensor:
        """-> (D, h, w) encoding of pixel centres in [0, 1]^2 (x first)."""
        m = self.positional_encoding_gaussian_matrix
        ys = (torch.arange(h, device=m.device, dtype=m.dtype) + 0.5) / h
        xs = (torch.arange(w, device=m.device, dtype=m.dtype) + 0.5) / w
        coords = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (h, w, 2) as (x, y)
        proj = 2 * math.pi * ((2 * coords - 1) @ m)
        return torch.cat([proj.sin(), proj.cos()], dim=-1).permute(2, 0, 1)


class NeckProj(nn.Module):
    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.proj = nn.Linear(d_in, d_out)


class FaceXFormer(nn.Module):
    """FaceXFormer with the released parameter names (`backbone.0` = Swin features, `backbone.1` = final norm)."""

    def __init__(self, config: FaceXFormerConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config or FaceXFormerConfig()
        dims = cfg.swin.stage_dims
        # backbone.1 (the classifier's final norm) is unused by FaceXFormer but kept so the checkpoint loads strictly
        self.backbone = nn.Sequential(SwinFeatures(cfg.swin), nn.LayerNorm(dims[-1], eps=cfg.swin.layer_norm_eps))
        self.linear_c = nn.ModuleList(NeckProj(c, cfg.dim) for c in dims)
        self.linear_fuse = nn.Conv2d(cfg.dim * len(dims), cfg.dim, kernel_size=1, bias=False)
        self.pe_layer = PositionEmbeddingRandom(cfg.dim // 2)
        self.face_decoder = FaceDecoder(cfg)

    def fused_map(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """pixel_values (B, 3, S, S) normalised -> fused face map (B, D, S/4, S/4) (released: (B, 256, 56, 56))."""
        stages = self.backbone[0].stage_outputs(pixel_values)  # NHWC: (B, 56, 56, 128) ... (B, 7, 7, 1024)
        size = stages[0].shape[1:3]
        maps = []
        for x, neck in zip(stages, self.linear_c, strict=True):
            x = neck.proj(x).permute(0, 3, 1, 2)  # per-pixel Linear, -> (B, D, h_i, w_i)
            maps.append(F.interpolate(x, size=size, mode="bilinear", align_corners=False))
        return self.linear_fuse(torch.cat(maps[::-1], dim=1))  # deepest first, as released

    def forward(self, pixel_values: torch.Tensor) -> dict[str, torch.Tensor]:
        """All heads at once.

        Returns: 'face_map' (B, D, S/4, S/4); 'refined_map' (B, D, S/4, S/4) after the decoder; raw head outputs
        'landmarks' (B, 136) in [-1, 1], 'pose' (B, 3) radians (pitch, yaw, roll), 'attribute' (B, 40),
        'visibility' (B, 29), 'age' (B, 8), 'gender' (B, 2), 'race' (B, 5) logits; 'segmentation' (B, 11, S, S).
        """
        fused = self.fused_map(pixel_values)
        pe = self.pe_layer(fused.shape[2], fused.shape[3]).unsqueeze(0)
        out = self.face_decoder(fused, pe)
        out["face_map"] = fused
        return out


def landmarks_to_pixels(landmarks: torch.Tensor, size: int) -> torch.Tensor:
    """(B, 136) or (B, K, 2) in [-1, 1] -> (B, K, 2) crop pixels: ((p + 1) * size - 1) / 2 (align_corners=False)."""
    lm = landmarks.reshape(landmarks.shape[0], -1, 2)
    return ((lm + 1) * size - 1) / 2


def load_facexformer(path: str | os.PathLike, config: FaceXFormerConfig | None = None) -> FaceXFormer:
    """Build FaceXFormer and strictly load a released-layout checkpoint {'state_dict_backbone': {...}}.

    Raises FileNotFoundError / KeyError / ValueError naming the file and the missing, unexpected or mis-shaped keys.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"FaceXFormer checkpoint {path!r} not found; download ckpts/model.pt from huggingface.co/kartiknarayan/"
            "facexformer (MIT) and pass its path"
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(
            f"{path!r} holds non-tensor objects that weights_only loading refuses; re-save only its "
            f"'state_dict_backbone' with torch.save in a trusted environment: {e}"
        ) from e
    if not isinstance(ckpt, dict) or "state_dict_backbone" not in ckpt:
        found = sorted(ckpt)[:10] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise KeyError(f"{path!r} is not a FaceXFormer checkpoint: no 'state_dict_backbone' key (found {found})")
    state = ckpt["state_dict_backbone"]
    if state and all(k.startswith("module.") for k in state):  # saved from DistributedDataParallel
        logger.info("stripping 'module.' prefix from %d keys of %s", len(state), path)
        state = {k[len("module.") :]: v for k, v in state.items()}
    model = FaceXFormer(config)
    check_state_dict(model, state, source=path)
    model.load_state_dict(state, strict=True)
    logger.info("loaded FaceXFormer from %s (%d tensors)", path, len(state))
    return model.eval()


def check_state_dict(model: nn.Module, state: dict[str, torch.Tensor], source: str = "state dict") -> None:
    """Raise ValueError listing missing, unexpected and mis-shaped keys (first 10 of each, with counts)."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [
        f"{k}: expected {tuple(expected[k].shape)}, got {tuple(state[k].shape)}"
        for k in sorted(set(expected) & set(state))
        if tuple(expected[k].shape) != tuple(state[k].shape)
    ]
    problems = [
        f"{len(v)} {name} (e.g. {v[:10]})"
        for name, v in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes))
        if v
    ]
    if problems:
        raise ValueError(
            f"{source}: FaceXFormer weights do not match the model: "
            + "; ".join(problems)
            + ". Is this the released kartiknarayan/facexformer ckpts/model.pt and the right config?"
        )


# -- preprocessing and prior extraction (SPEC §4.1, §4.4) ---------------------------------------------------------
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BOX_MARGIN = 0.5  # adjust_bbox: width and height each grow by 50 %, split equally on both sides
UNKNOWN_LABELS = "[Unknown]"  # SPEC §4.5: index -> name maps of age bins, gender and race are not published


def crop_face(image: Image.Image | np.ndarray, box, margin: float = BOX_MARGIN) -> tuple[Image.Image, tuple]:
    """RGB crop of ``box`` (x0, y0, x1, y1) enlarged by ``margin`` and clipped to the image, as the release does.

    Returns the crop and its integer box (x0, y0, x1, y1) in image pixels (the release truncates with int()).
    """
    img = Image.fromarray(image) if isinstance(image, np.ndarray) else image
    img = img if img.mode == "RGB" else img.convert("RGB")
    x0, y0, x1, y1 = (float(v) for v in getattr(box, "xyxy", box))  # tuples or box objects with .xyxy
    dx, dy = (x1 - x0) * margin / 2, (y1 - y0) * margin / 2
    x0, y0 = max(0.0, x0 - dx), max(0.0, y0 - dy)
    x1, y1 = min(float(img.width), x1 + dx), min(float(img.height), y1 + dy)
    ibox = (int(x0), int(y0), int(x1), int(y1))
    if ibox[2] <= ibox[0] or ibox[3] <= ibox[1]:
        raise ValueError(f"empty face box after clipping: {tuple(box)} in a {img.width}x{img.height} image")
    return img.crop(ibox), ibox


def to_pixel_values(crop: Image.Image | np.ndarray, size: int) -> torch.Tensor:
    """Face crop -> (3, size, size) float32: direct bicubic resize (no aspect keeping, as released), ImageNet norm."""
    img = Image.fromarray(crop) if isinstance(crop, np.ndarray) else crop
    img = (img if img.mode == "RGB" else img.convert("RGB")).resize((size, size), Image.Resampling.BICUBIC)
    arr = (np.asarray(img, dtype=np.float32) / 255.0 - np.array(IMAGENET_MEAN, np.float32)) / np.array(
        IMAGENET_STD, np.float32
    )
    return torch.from_numpy(arr.transpose(2, 0, 1).copy())


class FaceXFormerExtractor:
    """FaceXFormer as a facial-prior extractor: face crops -> FacePrior-compatible dicts.

    Args:
        model: a FaceXFormer (e.g. from `load_facexformer(path)`); see also `from_checkpoint`.
        num_blendshapes: width of the all-zero ``blendshapes`` field (FaceXFormer has none; 52 = MediaPipe's).
        landmark_layout: region table used for region features (resources/landmark_regions.yaml).
    """

    def __init__(self, model: FaceXFormer, *, num_blendshapes: int = 52, landmark_layout: str = "ibug68") -> None:
        self.model = model.eval()
        self.config = model.config
        self.num_blendshapes = num_blendshapes
        self.landmark_layout = landmark_layout
        self.region_names, self.region_indices = region_table(landmark_layout)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, config: FaceXFormerConfig | None = None, **kwargs):
        """Load the released ``ckpts/model.pt`` (user-supplied path) and wrap it."""
        return cls(load_facexformer(path, config), **kwargs)

    @torch.no_grad()
    def run(self, pixel_values: torch.Tensor) -> dict[str, torch.Tensor]:
        """pixel_values (B, 3, S, S) -> model outputs plus decoded fields:
        'landmarks01' (B, 68, 2) in [0, 1] of the crop, 'landmarks_px' (B, 68, 2) crop pixels, 'global' (B, D)
        mean-pooled face map, 'local' (B, 68, D) face map bilinearly sampled at each landmark, 'regions' (B, R, D)
        mean of 'local' over each landmark region."""
        out = self.model(pixel_values)
        lm = out["landmarks"].reshape(pixel_values.shape[0], -1, 2)  # [-1, 1], align_corners=False
        fmap = out["face_map"]
        local = F.grid_sample(fmap, lm.unsqueeze(1), mode="bilinear", align_corners=False)  # (B, D, 1, 68)
        local = local.squeeze(2).transpose(1, 2)
        out.update(
            landmarks01=(lm + 1) / 2,
            landmarks_px=landmarks_to_pixels(lm, self.config.image_size),
            local=local,
            regions=torch.stack([local[:, list(ix)].mean(1) for ix in self.region_indices], dim=1),
        )
        out["global"] = fmap.mean(dim=(2, 3))
        return out

    def extract_crops(self, crops: list[Image.Image | np.ndarray]) -> list[dict]:
        """Face crops (already margin-cropped) -> one FacePrior-compatible dict per crop (T = 1 frame each)."""
        if not crops:
            return []
        size = self.config.image_size
        pv = torch.stack([to_pixel_values(c, size) for c in crops])
        dev = next(self.model.parameters()).device
        out = {k: v.float().cpu() for k, v in self.run(pv.to(dev)).items()}
        return [self._prior(out, i) for i in range(len(crops))]

    def extract_crop(self, crop: Image.Image | np.ndarray) -> dict:
        """One face crop -> FacePrior-compatible dict; see `_prior`."""
        return self.extract_crops([crop])[0]

    def extract(self, image: Image.Image | np.ndarray, boxes) -> list[dict]:
        """Whole image + detector boxes (x0, y0, x1, y1) -> one dict per box; crops as SPEC §4.1 (50 % margin).

        Each dict's meta also has 'crop_box' and 'landmarks_image' (68, 2) in image pixels.
        """
        crops = [crop_face(image, b) for b in boxes]
        priors = self.extract_crops([c for c, _ in crops])
        for prior, (_, (x0, y0, x1, y1)) in zip(priors, crops, strict=True):
            lm = prior["landmarks"][0]
            prior["meta"]["crop_box"] = (x0, y0, x1, y1)
            prior["meta"]["landmarks_image"] = lm * np.array([x1 - x0, y1 - y0], np.float32) + np.array(
                [x0, y0], np.float32
            )
        return priors

    def _prior(self, out: dict[str, torch.Tensor], i: int) -> dict:
        """FacePrior fields with T = 1: landmarks (1, 68, 2) [0, 1] of the crop; blendshapes (1, num_blendshapes)
        zeros; pose (1, 3) yaw, pitch, roll radians (the head gives pitch, yaw, roll); age/gender/race_probs softmax;
        embedding (1, D) pooled face map; valid (1,). Extra outputs go in ``meta``."""
        pitch, yaw, roll = out["pose"][i].tolist()

        def np1(x: torch.Tensor) -> np.ndarray:
            return x[i : i + 1].numpy().astype(np.float32)

        return {
            "landmarks": np1(out["landmarks01"]),
            "blendshapes": np.zeros((1, self.num_blendshapes), np.float32),
            "pose": np.array([[yaw, pitch, roll]], np.float32),
            "age_probs": np1(out["age"].softmax(-1)),
            "gender_probs": np1(out["gender"].softmax(-1)),
            "race_probs": np1(out["race"].softmax(-1)),
            "embedding": np1(out["global"]),
            "valid": np.ones(1, bool),
            "meta": {
                "backend": "facexformer",
                "landmark_layout": self.landmark_layout,
                "landmarks_px": out["landmarks_px"][i].numpy(),
                "local_features": out["local"][i].numpy(),
                "region_names": self.region_names,
                "region_features": out["regions"][i].numpy(),
                "attribute_probs": out["attribute"][i].sigmoid().numpy(),
                "visibility_probs": out["visibility"][i].sigmoid().numpy(),
                "label_maps": {"age": UNKNOWN_LABELS, "gender": UNKNOWN_LABELS, "race": UNKNOWN_LABELS},
            },
        }
