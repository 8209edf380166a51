"""Named presets + YAML files + dotted overrides -> a validated `EmoLlamaConfig`.

Precedence: preset/file < later files < `--set a.b=c` overrides. Unknown keys are errors listing valid keys.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from transformers import CONFIG_MAPPING, InstructBlipQFormerConfig

from emollama.model.configuration import EmoLlamaConfig, EmoLlamaFaceConfig

_SUB_DEFAULT_TYPES = {"vision_config": "blip_2_vision_model", "text_config": "llama"}
_SUB_FIXED = {"qformer_config": InstructBlipQFormerConfig, "face_config": EmoLlamaFaceConfig}


def preset_names() -> list[str]:
    """Names of the shipped model presets (emollama/configs/model/*.yaml)."""
    root = resources.files("emollama.configs").joinpath("model")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml"))


def load_yaml(source: str | os.PathLike) -> dict[str, Any]:
    """Read a preset name or a YAML path into a dict."""
    path = Path(source)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise FileNotFoundError(f"config file {str(path)!r} does not exist")
        text = path.read_text()
    else:
        names = preset_names()
        if str(source) not in names:
            raise KeyError(f"unknown model preset {str(source)!r}; available: {names} (or pass a .yaml path)")
        text = resources.files("emollama.configs").joinpath("model", f"{source}.yaml").read_text()
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ValueError(f"config {str(source)!r} must be a YAML mapping, got {type(data).__name__}")
    return data


def _field_names(cls) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)} | {"model_type"}


def validate_keys(data: dict[str, Any]) -> None:
    """Raise KeyError for any key the config classes do not define, listing the valid keys at that level."""
    top = _field_names(EmoLlamaConfig)
    for key, value in data.items():
        if key not in top:
            raise KeyError(f"unknown config key {key!r}; valid keys: {sorted(top)}")
        if key in _SUB_DEFAULT_TYPES or key in _SUB_FIXED:
            if not isinstance(value, dict):
                raise ValueError(f"{key} must be a mapping, got {type(value).__name__}")
            if key in _SUB_FIXED:
                cls = _SUB_FIXED[key]
            else:
                mt = value.get("model_type", _SUB_DEFAULT_TYPES[key])
                if mt not in CONFIG_MAPPING:
                    raise KeyError(f"{key}.model_type {mt!r} is not a transformers model type")
                cls = CONFIG_MAPPING[mt]
            valid = _field_names(cls)
            for sub in value:
                if sub not in valid:
                    raise KeyError(f"unknown config key '{key}.{sub}'; valid keys: {sorted(valid)}")


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b=c` overrides (values parsed as YAML scalars) to a copy of ``data``."""
    out = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} must look like key.sub=value")
        key, raw = item.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {item!r}: {p!r} is not a mapping")
        node[parts[-1]] = yaml.safe_load(raw)
    return out


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``extra`` wins."""
    out = copy.deepcopy(base)
    for k, v in extra.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def build_config(sources: list[str] | str = "tiny", overrides: list[str] | None = None) -> EmoLlamaConfig:
    """Presets/YAML files (merged in order) + overrides -> validated `EmoLlamaConfig`."""
    data: dict[str, Any] = {}
    for src in [sources] if isinstance(sources, str) else sources:
        data = merge(data, load_yaml(src))
    data = apply_overrides(data, overrides or [])
    validate_keys(data)
    return EmoLlamaConfig(**data)


def config_to_yaml(config: EmoLlamaConfig) -> str:
    """The resolved config as YAML (what every run saves)."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
