"""The one training entry point: `run_training(TrainConfig)` on top of `transformers.Trainer`.

Every stage runs through here; a stage only sets `requires_grad` / LoRA (`stages.py`). Using the HF Trainer means
DDP (`torchrun`), DeepSpeed ZeRO-2/3 (`train.deepspeed`) and FSDP (`train.fsdp`) come from transformers/accelerate
unchanged. `EmoTrainer` overrides only what our checkpoint layout needs: the sampler (modality/length grouping,
seeded per epoch), `_save` (trainables + adapter, never the frozen base) and `_load_from_checkpoint` (its inverse).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import Trainer, TrainingArguments

from emollama.model.processor import EmoLlamaProcessor
from emollama.priors.source import build_prior_source
from emollama.training.args import TrainConfig
from emollama.training.callbacks import JsonlMetricsCallback, StepDelayCallback, append_jsonl, environment
from emollama.training.checkpoint import latest_checkpoint, list_checkpoints, load_checkpoint, save_checkpoint
from emollama.training.collate import Collator
from emollama.training.data import InstructionDataset, read_records
from emollama.training.lora import attach_lora
from emollama.training.sampler import (
    ClassBalancedSampler,
    ModalityLengthGroupedSampler,
    SeededRandomSampler,
    balance_weights,
)
from emollama.training.stages import apply_stage, get_stage, log_trainable

logger = logging.getLogger(__name__)
DELAY_ENV = "EMOLLAMA_TRAIN_STEP_DELAY_MS"


def build_base(cfg: TrainConfig, **build_kwargs: Any) -> tuple[nn.Module, EmoLlamaProcessor]:
    """The untrained (model, processor) named by ``cfg.model``: a converted directory or a preset build
    (``build_kwargs`` go to the preset's builder, e.g. ``tower_weights`` for emollama-small)."""
    m = cfg.model
    if m.path:
        if m.overrides:
            raise ValueError("model.overrides apply to preset builds only; edit the converted model's config instead")
        from emollama.model.checkpoint import load_pretrained

        return load_pretrained(m.path)
    from emollama.model.build import build_model

    return build_model(m.preset, list(m.overrides), seed=m.seed, **build_kwargs)


def prepare_model(model: nn.Module, cfg: TrainConfig) -> nn.Module:
    """Attach LoRA if the stage uses it, set `requires_grad` per the stage, log the trainable count."""
    stage = get_stage(cfg.stage.name)
    if stage.lora:
        model = attach_lora(model, cfg.lora)
    apply_stage(model, stage, {"train_qformer": cfg.stage.train_qformer}, cfg.stage.extra_trainable)
    logger.warning("stage %r: %s", cfg.stage.name, log_trainable(model))
    return model


def precision_flags(precision: str) -> dict[str, bool]:
    """TrainingArguments bf16/fp16 flags: 'auto' = bf16 (else fp16) on CUDA, fp32 on CPU."""
    if precision == "auto":
        if not torch.cuda.is_available():
            return {"bf16": False, "fp16": False}
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return {"bf16": precision == "bf16", "fp16": precision == "fp16"}


def training_arguments(cfg: TrainConfig, run_dir: Path) -> TrainingArguments:
    """Map `cfg.train` onto transformers.TrainingArguments (this also initialises torch.distributed)."""
    t = cfg.train
    cpu = not torch.cuda.is_available()
    return TrainingArguments(
        output_dir=str(run_dir),
        per_device_train_batch_size=t.per_device_batch_size,
        gradient_accumulation_steps=t.grad_accum,
        learning_rate=t.lr,
        weight_decay=t.weight_decay,
        warmup_steps=t.warmup_ratio,  # a float in [0, 1) is a ratio of total steps
        lr_scheduler_type=t.scheduler,
        max_grad_norm=t.max_grad_norm,
        optim=t.optim,
        num_train_epochs=t.epochs,
        max_steps=t.max_steps,
        logging_steps=t.logging_steps,
        logging_first_step=True,
        save_strategy="steps",
        save_steps=t.save_steps,
        save_total_limit=t.save_total_limit,
        seed=t.seed,
        activation_checkpointing=t.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if t.gradient_checkpointing else None,
        deepspeed=resolve_deepspeed(t.deepspeed),
        fsdp=t.fsdp,
        report_to=list(t.report_to) or "none",
        remove_unused_columns=False,  # our batches carry packed media/face tensors the Trainer must not prune
        dataloader_num_workers=t.num_workers,
        disable_tqdm=not sys.stderr.isatty(),
        use_cpu=cpu,
        ddp_backend="gloo" if cpu and int(os.environ.get("WORLD_SIZE", "1")) > 1 else None,
        # without priors the face branch is unused; DDP must then not wait for its gradients
        ddp_find_unused_parameters=cfg.data.priors == "none",
        **precision_flags(t.precision),
    )


def resolve_deepspeed(value: str | None) -> str | None:
    """A DeepSpeed JSON path, or a shipped name ('zero2', 'zero2_offload', 'zero3') -> its packaged path."""
    if not value or Path(value).exists():
        return value
    from importlib import resources

    ref = resources.files("emollama.configs").joinpath("deepspeed", f"{value}.json")
    if not ref.is_file():
        raise FileNotFoundError(f"train.deepspeed={value!r} is neither a file nor a shipped config "
                                "('zero2', 'zero2_offload', 'zero3')")
    return str(ref)


class EmoTrainer(Trainer):
    """`Trainer` with emollama's sampler and checkpoint layout (see `emollama.training.checkpoint`)."""

    def __init__(self, *args, processor: EmoLlamaProcessor, ckpt_meta: dict[str, Any], group_by_modality: bool,
                 class_balance: str = "none", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.emo_processor = processor
        self.ckpt_meta = ckpt_meta
        self.group_by_modality = group_by_modality
        self.class_balance = class_balance

    def _get_train_sampler(self, train_dataset=None):
        ds = train_dataset if train_dataset is not None else self.train_dataset
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        if self.class_balance != "none":
            return ClassBalancedSampler(balance_weights([ds.label(i) for i in range(len(ds))], self.class_balance),
                                        seed)
        if not self.group_by_modality:
            return SeededRandomSampler(len(ds), seed)
        group = self.args.per_device_train_batch_size * self.args.world_size
        return ModalityLengthGroupedSampler([ds.length(i) for i in range(len(ds))],
                                            [ds.modality(i) for i in range(len(ds))], group, seed)

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        if not self.args.should_save:
            return
        out = output_dir or self.args.output_dir
        meta = {**self.ckpt_meta, "global_step": self.state.global_step}
        save_checkpoint(self.model, self.emo_processor, out, meta, state_dict=state_dict)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        load_checkpoint(model if model is not None else self.model, resume_from_checkpoint)


def build_datasets(cfg: TrainConfig, processor: EmoLlamaProcessor, run_dir: Path, args: TrainingArguments
                   ) -> tuple[InstructionDataset, InstructionDataset | None]:
    """Generate the synthetic task if asked (main process first), then load train/eval datasets."""
    d = cfg.data
    if d.synthetic.enabled:
        from emollama.training.synthetic_task import generate_task

        s = d.synthetic
        out = Path(s.out) if s.out else run_dir / "data"
        with args.main_process_first(desc="synthetic task"):
            if args.process_index == 0:
                generate_task(out, processor.config.face_config, n_train=s.n_train, n_eval=s.n_eval,
                              video_fraction=s.video_fraction, frames=s.frames, size=s.size, seed=s.seed)
        d.root, d.train, d.eval, d.priors = str(out), str(out / "train.jsonl"), str(out / "eval.jsonl"), "npz:priors"
    if not d.train:
        raise ValueError("data.train is not set: pass an instruction JSONL or enable data.synthetic")
    if d.dataset:
        from emollama.data.benchmarks import get_benchmark

        scheme, sep, arg = d.priors.partition(":")
        if sep and arg and not Path(arg).is_absolute():
            d.priors = f"{scheme}:{Path(arg).resolve()}"
        d.root = str(get_benchmark(d.dataset).media_root(d.root))
    priors = build_prior_source(d.priors, d.root, processor.preprocess if d.face_crops == "prior" else None)
    frames = d.frames or processor.config.frame_sampling
    kw = {"frames": frames, "face_token": d.face_token, "on_missing": d.on_missing, "agr": d.agr}
    records = read_records(d.train)
    if d.validate_schema:
        from emollama.data.schema import validate_dict

        for i, rec in enumerate(records):
            validate_dict(rec, f"{d.train} (record {i + 1})")
    train = InstructionDataset(records, d.root, priors, **kw)
    evalset = InstructionDataset(read_records(d.eval), d.root, priors, **kw) if d.eval else None
    return train, evalset


def run_training(cfg: TrainConfig, resume: bool = False) -> dict[str, Any]:
    """Train per ``cfg`` into ``cfg.train.output_dir``; returns a summary (final loss, eval accuracy, paths)."""
    run_dir = Path(cfg.train.output_dir)
    if cfg.train.torch_threads > 0:
        torch.set_num_threads(cfg.train.torch_threads)
    args = training_arguments(cfg, run_dir)  # initialises the process group under torchrun
    resume_from = _resume_point(run_dir, resume)
    model, processor = build_base(cfg)
    train_ds, eval_ds = build_datasets(cfg, processor, run_dir, args)
    model = prepare_model(model, cfg)
    model.train()
    if args.process_index == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(cfg.to_yaml())
        (run_dir / "env.json").write_text(json.dumps(environment(args.world_size), indent=2))
        if resume_from is None:
            (run_dir / "metrics.jsonl").unlink(missing_ok=True)
    collator = Collator(processor, cfg.data.face_crops, cfg.data.max_length)
    callbacks = [JsonlMetricsCallback(run_dir / "metrics.jsonl")]
    if os.environ.get(DELAY_ENV):
        callbacks.append(StepDelayCallback(float(os.environ[DELAY_ENV])))
    meta = {"stage": cfg.stage.name, "base": dataclasses.asdict(cfg.model),
            "lora": dataclasses.asdict(cfg.lora) if get_stage(cfg.stage.name).lora else None,
            "skipped": dict(train_ds.skipped)}
    from emollama.training.ship import tower_record

    meta.update(tower_record(meta))  # the frozen tower the run was built on, so an export can check it copies that
    trainer = EmoTrainer(model=model, args=args, train_dataset=train_ds, data_collator=collator, callbacks=callbacks,
                         processor=processor, ckpt_meta=meta, group_by_modality=cfg.data.group_by_modality_length,
                         class_balance=cfg.data.class_balance)
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    trainer.save_model(str(run_dir / "final"))
    summary: dict[str, Any] = {"run_dir": str(run_dir), "global_step": result.global_step,
                               "train_loss": result.training_loss, "final": str(run_dir / "final"),
                               "skipped": dict(train_ds.skipped), "process_index": args.process_index}
    if eval_ds is not None and cfg.eval.enabled and args.process_index == 0:
        from emollama.training.evaluate import closed_set_accuracy

        ev = closed_set_accuracy(trainer.model, processor, eval_ds, collator, cfg.eval.max_samples)
        summary["eval"] = ev
        append_jsonl(run_dir / "metrics.jsonl", {"step": result.global_step, "eval_accuracy": ev["accuracy"],
                                                 "eval_n": ev["n"], "eval_chance": ev["chance"]})
        (run_dir / "eval.json").write_text(json.dumps(ev, indent=2))
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        # every rank leaves together and tears the group down: a rank exiting with gloo's threads still alive
        # can die in std::terminate (SIGABRT) while rank 0 is still saving or evaluating
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    return summary


def _resume_point(run_dir: Path, resume: bool) -> Path | None:
    if resume:
        ckpt = latest_checkpoint(run_dir)
        if ckpt is None:
            logger.warning("--resume: no complete checkpoint in %s; starting from scratch", run_dir)
        else:
            logger.warning("resuming from %s", ckpt)
        return ckpt
    existing = list_checkpoints(run_dir, complete_only=False)
    if existing:
        raise ValueError(f"{run_dir} already holds checkpoints ({existing[-1].name}); pass --resume to "
                              "continue that run, or choose another --out")
    return None
