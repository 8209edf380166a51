"""Reading LLaMA-VID / LAVIS weight files: shard discovery, prefix routing, EVA-ViT-G sourcing (SPEC §3.4-3.8).

Only IO and tensor plumbing; the name maps live in `convert_names` and the orchestration in `convert`.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch

from emollama.model import convert_names as names

logger = logging.getLogger(__name__)
INDEX_FILES = ("pytorch_model.bin.index.json", "model.safetensors.index.json")
SINGLE_FILES = ("model.safetensors", "pytorch_model.bin")  # preference order when both exist
EVA_FILE = "eva_vit_g.pth"
EVA_ASSET = "eva_vit_g"  # SPEC §3.2: mm_vision_tower is treated as this asset name
Tensors = dict[str, torch.Tensor]


def first_names(items: list[str], n: int = 5) -> str:
    """The first ``n`` names for an error or log message, with '...' when there are more."""
    return f"{items[:n]}{' ...' if len(items) > n else ''}"


def load_tensor_file(path: Path) -> Tensors:
    """One .bin/.pth (pickle, loaded weights-only and memory-mapped) or .safetensors file -> tensors."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # legacy (non-zip) torch.save files cannot be memory-mapped
        logger.info("%s is not in the zip format; loading it without mmap", path)
        obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):  # LAVIS full checkpoints: {"model": sd}
        obj = obj["model"]
    if not isinstance(obj, dict):
        raise ValueError(f"{path} holds a {type(obj).__name__}, not a state dict")
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def checkpoint_files(src: Path) -> list[Path]:
    """Weight files of a LLaMA-VID directory: the shards named in an index, or one single file."""
    for index in INDEX_FILES:
        if (src / index).is_file():
            shards = sorted(set(json.loads((src / index).read_text())["weight_map"].values()))
            missing = [s for s in shards if not (src / s).is_file()]
            if missing:
                raise FileNotFoundError(
                    f"{src / index} names shard(s) {missing} that are not in {src}; download every shard of the "
                    "checkpoint (e.g. huggingface-cli download YanweiLi/<model> --local-dir SRC)"
                )
            return [src / s for s in shards]
    singles = [src / f for f in SINGLE_FILES if (src / f).is_file()][:1] or sorted(src.glob("*.safetensors"))
    if not singles:
        raise FileNotFoundError(
            f"no weights in {src}: expected {INDEX_FILES[0]} + shards, {SINGLE_FILES[1]} or *.safetensors; "
            f"found {sorted(p.name for p in src.iterdir())}"
        )
    return singles


def route_shards(files: list[Path]) -> tuple[dict[str, Tensors], dict[str, str]]:
    """Stream the shards and route each key: (component -> {our name: tensor}, our name -> shard key).

    The 'vision_tower' component keeps shard names (a fallback EVA source only).
    """
    parts: dict[str, Tensors] = {}
    sources: dict[str, str] = {}
    for f in files:
        for key, value in load_tensor_file(f).items():
            routed = names.route_key(key)
            if routed is not None:
                parts.setdefault(routed[0], {})[routed[1]] = value
                sources[routed[1]] = key
        logger.info("read %s", f.name)
    return parts, sources


def load_eva(
    src: Path, cfg: dict, eva: str | os.PathLike | None, shard_eva: Tensors, fused: bool
) -> tuple[Tensors, str]:
    """EVA-ViT-G in Blip2VisionModel names (no prefix) and where it came from.

    Tries --eva, then `mm_vision_tower` (as written, relative to SRC, its file name in SRC), then the asset
    resolver's local sources for 'eva_vit_g' (no download), then the shards' `model.vision_tower.vision_tower.*`
    copy if complete (SPEC §3.4).
    """
    if eva is not None:
        path = Path(eva)
        path = path / EVA_FILE if path.is_dir() else path
        if not path.is_file():
            raise FileNotFoundError(f"--eva {str(eva)!r}: {str(path)!r} does not exist")
        candidates = [path]
    else:
        tower = Path(str(cfg.get("mm_vision_tower") or EVA_FILE))
        candidates = list(dict.fromkeys([tower, src / tower, src / tower.name, src / EVA_FILE]))
    tried = [str(p) for p in candidates]
    if eva is None:
        asset, note = resolve_eva_asset()
        candidates += [asset] if asset is not None else []
        tried.append(note)
    for path in candidates:
        if path.is_file():
            state, ignored = names.eva_to_hf(names.strip_eva_prefix(load_tensor_file(path)), fused)
            if ignored:
                logger.info(
                    "EVA: ignoring %d keys of %s not used by LAVIS: %s", len(ignored), path, first_names(ignored)
                )
            if shard_eva:
                logger.info("EVA: ignoring the %d %s* tensors in the shards (LLaMA-VID loads EVA from its file too)",
                            len(shard_eva), names.SHARD_EVA_PREFIX)  # fmt: skip
            return state, str(path)
    if shard_eva:
        state, ignored = names.eva_to_hf(names.strip_eva_prefix(shard_eva), fused)
        if ignored:
            logger.info("EVA: ignoring %d shard keys unused by LAVIS: %s", len(ignored), first_names(ignored))
        problem = eva_incomplete(state, fused)
        if not problem:
            logger.info("EVA: using the %d model.vision_tower.vision_tower.* tensors from the shards", len(state))
            return state, "checkpoint shards (model.vision_tower.vision_tower.*)"
        logger.warning("EVA copy in the shards is not usable: %s", problem)
    tried.append(f"{names.SHARD_EVA_PREFIX}* keys in the shards")
    raise FileNotFoundError(
        f"EVA-ViT-G weights not found; tried {tried}. LLaMA-VID checkpoints do not contain EVA: download LAVIS "
        f"{EVA_FILE} (see ASSETS.md) and pass --eva PATH"
    )


def resolve_eva_asset() -> tuple[Path | None, str]:
    """The 'eva_vit_g' asset from local sources only (explicit env var, cache); (None, why) when unavailable."""
    try:
        from emollama import assets
    except ImportError:  # resolver not shipped in this checkout
        return None, "asset resolver (emollama.assets not available)"
    if EVA_ASSET not in assets.catalogue():
        return None, f"asset {EVA_ASSET!r} (not in the asset catalogue)"
    try:
        return assets.resolve(EVA_ASSET, download=False), f"asset {EVA_ASSET!r}"
    except assets.AssetError as err:
        return None, f"asset {EVA_ASSET!r} ({err})"


def eva_incomplete(state: Tensors, fused: bool) -> str:
    """'' if every block of a Blip2VisionModel-named EVA state dict is present (39 blocks at 1408 wide)."""
    try:
        fields = names.infer_vision_fields(state)
    except (KeyError, ValueError) as err:
        return f"cannot read its layout ({err})"
    n = fields["num_hidden_layers"]
    if fields["hidden_size"] == 1408 and n != 39:
        return f"{n} blocks, EVA-ViT-G has 39"
    bias = ["qkv.bias"] if fused else ["q_bias", "v_bias"]
    per_layer = [f"{m}.{p}" for m in ("layer_norm1", "layer_norm2", "self_attn.projection", "mlp.fc1", "mlp.fc2")
                 for p in ("weight", "bias")] + ["self_attn.qkv.weight"] + [f"self_attn.{b}" for b in bias]  # fmt: skip
    want = [f"encoder.layers.{i}.{s}" for i in range(n) for s in per_layer]
    missing = [k for k in want if k not in state]
    return f"missing {len(missing)} tensors: {first_names(missing)}" if missing else ""


def interpolate_pos_embed(pos: torch.Tensor, grid: int) -> torch.Tensor:
    """(1, 1 + g0², D) -> (1, 1 + grid², D): bicubic in fp32, align_corners=False, CLS kept (SPEC §2.3)."""
    g0 = int(round((pos.shape[1] - 1) ** 0.5))
    if g0 == grid:
        return pos
    cls, tok = pos[:, :1], pos[:, 1:].float().reshape(1, g0, g0, -1).permute(0, 3, 1, 2)
    tok = torch.nn.functional.interpolate(tok, size=(grid, grid), mode="bicubic", align_corners=False)
    logger.info("EVA: interpolated pos_embed from %dx%d to %dx%d", g0, g0, grid, grid)
    return torch.cat([cls, tok.permute(0, 2, 3, 1).flatten(1, 2).to(pos.dtype)], dim=1)


def fused_qkv_bias() -> bool:
    """True if the installed Blip2Attention stores one qkv.bias (transformers 5.x), False for q_bias/v_bias."""
    from transformers import Blip2VisionConfig, Blip2VisionModel

    with torch.device("meta"):
        keys = Blip2VisionModel(
            Blip2VisionConfig(hidden_size=8, intermediate_size=8, num_hidden_layers=1, num_attention_heads=1)
        ).state_dict()
    return "encoder.layers.0.self_attn.qkv.bias" in keys
