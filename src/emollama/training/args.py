"""Training configuration: typed dataclasses, layered YAML + `--set` overrides, resolved-config dump.

Precedence (STYLE §3.6): dataclass defaults < `--config a.yaml` (repeatable, merged in order) < `--set k=v`.
An unknown key at any level raises KeyError listing the valid keys there. No OmegaConf: dataclasses + PyYAML.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from emollama.model.presets import apply_overrides, merge

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
ON_MISSING = ("error", "skip")
FACE_CROPS = ("media", "prior", "none")
CLASS_BALANCE = ("none", "sqrt", "inverse")


@dataclass
class ModelArgs:
    """Which base model to train: a builder preset (`tiny`, `small`) or a converted model directory."""

    preset: str = "tiny"
    path: str | None = None  # emollama model dir (load_pretrained); wins over preset when set
    overrides: list[str] = field(default_factory=list)  # model-config `a.b=c` overrides (preset builds only)
    seed: int = 0  # seeds the random parts of a preset build; merge-lora rebuilds the same frozen weights


@dataclass
class StageArgs:
    """Stage name (emollama.training.stages.STAGES) plus its options."""

    name: str = "instruct"
    train_qformer: bool = False  # instruct: also train the LLaMA-VID Q-Former (vlm_att_encoder/query/ln)
    extra_trainable: list[str] = field(default_factory=list)  # extra regexes over parameter names


@dataclass
class LoraArgs:
    """peft LoRA; defaults are LLaMA-VID train.py's (SPEC §2.11): r=64, alpha=16, dropout 0.05."""

    r: int = 64
    alpha: int = 16
    dropout: float = 0.05
    targets: list[str] | None = None  # leaf names (e.g. [q_proj, v_proj]); None = every LM nn.Linear but lm_head
    bias: str = "none"


@dataclass
class SyntheticArgs:
    """Generate the learnable drawn-face task (emollama.training.synthetic_task) before training."""

    enabled: bool = False
    out: str | None = None  # default: <run>/data
    n_train: int = 400
    n_eval: int = 100
    video_fraction: float = 0.25
    frames: int = 4
    size: int = 48
    seed: int = 0


@dataclass
class DataArgs:
    """Instruction JSONL (SPEC §5.5), media root, face priors and batching."""

    train: str | None = None
    eval: str | None = None
    root: str = "."  # media paths in records are relative to this
    # adapter name (e.g. fer2013): `root` is the folder a user passes to `emollama gen-data NAME ROOT` and is
    # resolved by the adapter (FER2013: its archive unpacked once into the cache); relative prior dirs are then
    # relative to the working directory, since the resolved root is not the user's folder
    dataset: str | None = None
    priors: str = "none"  # PriorSource: 'none' | 'npz:DIR' | 'cache:DIR' (prior cache; DIR relative to root)
    face_token: bool = True  # insert <face> after the visual placeholder when a prior is available
    # crops for face_pixel_values: 'media' (cut from the frames at the prior's crop regions, the analyzer's rule),
    # 'prior' (prior.crops, the cache's stored crops: same pixels), 'none'
    face_crops: str = "media"
    agr: str = "prior"  # AGR sentence: 'prior' (age/gender from the face prior, as at inference) or 'none'
    on_missing: str = "error"  # missing media/prior: 'error' (stop, list them) or 'skip' (drop and count)
    frames: str | None = None  # video frame policy, e.g. 'uniform:8'; None = model config frame_sampling
    max_length: int = 2048
    group_by_modality_length: bool = True
    # class-balanced order: records with a `label` are drawn with weight freq^-1/2 ('sqrt') or freq^-1 ('inverse')
    # per label (a seeded weighted permutation, so a run shorter than an epoch sees rare classes more often);
    # 'none' = uniform. Needs group_by_modality_length: false (one ordering rule at a time).
    class_balance: str = "none"
    validate_schema: bool = False  # full emollama schema validation (LLaVA-only records fail it)
    synthetic: SyntheticArgs = field(default_factory=SyntheticArgs)

    def __post_init__(self) -> None:
        _check_choice("data.on_missing", self.on_missing, ON_MISSING)
        _check_choice("data.face_crops", self.face_crops, FACE_CROPS)
        _check_choice("data.agr", self.agr, ("prior", "none"))
        _check_choice("data.class_balance", self.class_balance, CLASS_BALANCE)
        if self.class_balance != "none" and self.group_by_modality_length:
            raise ValueError(f"data.class_balance={self.class_balance} replaces the modality/length grouping: also "
                             "set data.group_by_modality_length=false")


@dataclass
class LoopArgs:
    """The optimisation loop (mapped onto transformers.TrainingArguments)."""

    output_dir: str = "runs/train"
    seed: int = 42  # model-independent: data order, dropout
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    per_device_batch_size: int = 4
    grad_accum: int = 1
    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup_ratio: float = 0.03
    scheduler: str = "cosine"
    max_grad_norm: float = 1.0
    optim: str = "adamw_torch"
    precision: str = "auto"  # auto: bf16 (or fp16) on CUDA, fp32 on CPU
    gradient_checkpointing: bool = False
    save_steps: int = 500
    save_total_limit: int = 2  # keep-last-K checkpoints
    logging_steps: int = 10
    num_workers: int = 0
    deepspeed: str | None = None  # a DeepSpeed JSON path or a shipped name (zero2, zero2_offload, zero3)
    fsdp: str = ""  # transformers fsdp string, e.g. "full_shard auto_wrap"
    report_to: list[str] = field(default_factory=list)  # 'tensorboard', 'wandb' (optional extras)
    torch_threads: int = 0  # 0 = leave torch's default

    def __post_init__(self) -> None:
        _check_choice("train.precision", self.precision, PRECISIONS)
        if self.per_device_batch_size < 1 or self.grad_accum < 1:
            raise ValueError("train.per_device_batch_size and train.grad_accum must be >= 1")


@dataclass
class EvalArgs:
    """Closed-set accuracy on data.eval after training (class scoring over each record's options)."""

    enabled: bool = True
    max_samples: int = 200


@dataclass
class TrainConfig:
    """Everything one `emollama train` run needs; saved resolved as <run>/config.yaml."""

    model: ModelArgs = field(default_factory=ModelArgs)
    stage: StageArgs = field(default_factory=StageArgs)
    lora: LoraArgs = field(default_factory=LoraArgs)
    data: DataArgs = field(default_factory=DataArgs)
    train: LoopArgs = field(default_factory=LoopArgs)
    eval: EvalArgs = field(default_factory=EvalArgs)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r}; allowed: {list(allowed)}")


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def from_dict(cls: type, data: dict[str, Any], where: str = "") -> Any:
    """Build dataclass ``cls`` from a nested dict; unknown keys raise KeyError listing the valid ones."""
    if not isinstance(data, dict):
        raise ValueError(f"{where or 'config'} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        full = f"{where}.{key}" if where else key
        if key not in names:
            raise KeyError(f"unknown config key {full!r}; valid keys{' in ' + where if where else ''}: {names}")
        tp = hints[key]
        kwargs[key] = from_dict(tp, value or {}, full) if _is_dataclass_type(tp) else _coerce(full, tp, value)
    return cls(**kwargs)


def _coerce(name: str, tp: Any, value: Any) -> Any:
    # YAML gives ints for "1" and floats for "1e-3" only with a dot; accept ints where floats are expected
    args = typing.get_args(tp) if isinstance(tp, types.UnionType) else (tp,)
    if value is None:
        if type(None) in args:
            return None
        raise ValueError(f"{name} may not be null")
    if float in args and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if float in args and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    plain = [a for a in args if isinstance(a, type) and a is not type(None)]
    origins = [typing.get_origin(a) for a in args]
    if list in origins and isinstance(value, str):
        return [value]
    if plain and not isinstance(value, tuple(plain)) and list not in origins:
        raise ValueError(f"{name}={value!r}: expected {' or '.join(a.__name__ for a in plain)}")
    return value


def packaged_config(name: str) -> Path | None:
    """Path of a shipped training config (emollama/configs/train/<name>.yaml), or None."""
    ref = resources.files("emollama.configs").joinpath("train", f"{name}.yaml")
    return Path(str(ref)) if ref.is_file() else None


def load_config(sources: list[str | os.PathLike] | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Defaults < YAML files (paths or shipped names like 'debug_cpu', merged in order) < `a.b=c` overrides."""
    data: dict[str, Any] = {}
    for src in sources or []:
        path = Path(src)
        if not path.exists():
            shipped = packaged_config(str(src))
            if shipped is None:
                raise FileNotFoundError(f"training config {str(src)!r} not found (neither a file nor a shipped name "
                                        f"in emollama/configs/train/)")
            path = shipped
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"training config {str(path)!r} must be a YAML mapping")
        data = merge(data, loaded)
    data = apply_overrides(data, overrides or [])
    return from_dict(TrainConfig, data)
