"""Stages as data: after a few steps only the stage's parameters changed, and every trainable one got a gradient."""

from __future__ import annotations

import re

import pytest
import torch
from train_helpers import DEBUG, small_task

from emollama.priors.source import build_prior_source
from emollama.training.args import load_config
from emollama.training.collate import Collator
from emollama.training.data import InstructionDataset, read_records
from emollama.training.lora import lm_linear_leaves
from emollama.training.stages import STAGES, base_name, get_stage, log_trainable, never_used
from emollama.training.trainer import build_base, prepare_model


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    return small_task(tmp_path_factory.mktemp("task"), n_train=16, n_eval=4)


def _batch(task, proc):
    ds = InstructionDataset(read_records(task / "train.jsonl"), task, build_prior_source("npz:priors", task),
                            frames="uniform:4")
    vids = [i for i in range(len(ds)) if ds.modality(i) == "video"][:2]
    imgs = [i for i in range(len(ds)) if ds.modality(i) == "image"][:2]
    assert vids and imgs, "the batch must mix image and video samples"
    return Collator(proc, "media", 512)([ds[i] for i in vids + imgs])


def _expected(name: str, stage: str, model) -> bool:
    """The stage definition restated independently of stages.py (what a reader of SPEC §2.11 expects)."""
    if re.fullmatch(r"vision_tower\..*", name) or any(re.fullmatch(p, name) for p in never_used(model)):
        return False
    face = name.startswith("face_mining.")
    proj = re.match(r"llamavid\.(mm_projector|vlm_att_projector|vlm_att_key_projector|vlm_att_val_projector)\.", name)
    if stage == "align":
        return bool(face or proj)
    if stage == "instruct":
        return bool(face or proj or ".lora_" in name)
    return True  # full


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_only_stage_parameters_change_and_all_get_gradients(stage, task):
    cfg = load_config([DEBUG], [f"stage.name={stage}"])
    model, proc = build_base(cfg)
    model = prepare_model(model, cfg)
    batch = _batch(task, proc)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {n for n in before if _expected(base_name(n), stage, model)}
    got_grad = dict.fromkeys(trainable, False)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.0)
    model.train()
    for _ in range(3):
        opt.zero_grad()
        model(**batch).loss.backward()
        for n, p in model.named_parameters():
            if p.requires_grad and p.grad is not None and p.grad.abs().sum() > 0:
                got_grad[n] = True
            assert p.requires_grad or p.grad is None, n
        opt.step()
    # LoRA B starts at zero, so LoRA A first sees a gradient at step 2: hence "any of 3 steps"
    assert [n for n, g in got_grad.items() if not g] == []
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed == trainable


def test_instruct_lora_targets_every_lm_linear_but_lm_head():
    cfg = load_config([DEBUG], ["stage.name=instruct"])
    model, _ = build_base(cfg)
    leaves = lm_linear_leaves(model)
    assert leaves == sorted(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    peft_model = prepare_model(model, cfg)
    wrapped = {n.rsplit(".", 2)[0] for n, _ in peft_model.named_parameters() if ".lora_A." in n}
    assert all(base_name(n).startswith("language_model.model.layers.") for n in wrapped)
    assert len(wrapped) == len(leaves) * cfg_layers(model)
    assert not any("lm_head" in n and "lora" in n for n, _ in peft_model.named_parameters())


def cfg_layers(model) -> int:
    return model.config.text_config.num_hidden_layers


def test_trainable_log_line_and_unknown_stage(caplog):
    cfg = load_config([DEBUG], ["stage.name=align"])
    model, _ = build_base(cfg)
    prepare_model(model, cfg)
    line = log_trainable(model)
    assert re.fullmatch(r"trainable params: [\d,]+ \|\| all params: [\d,]+ \|\| trainable%: [\d.]+", line)
    with pytest.raises(KeyError, match=r"unknown training stage 'lora'; available: \['align', 'full', 'instruct'\]"):
        get_stage("lora")


def test_pattern_matching_nothing_is_an_error():
    cfg = load_config([DEBUG], ["stage.name=align", "stage.extra_trainable=[no_such_module\\..*]"])
    model, _ = build_base(cfg)
    with pytest.raises(ValueError, match="match no parameter"):
        prepare_model(model, cfg)
