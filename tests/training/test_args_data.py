"""Config layering and errors, shipped recipes, the dataset (missing inputs, <face>, videos), the grouped sampler."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from importlib import resources
from pathlib import Path

import pytest
import torch
import yaml
from train_helpers import small_task

from emollama.priors.npz import load_prior_npz
from emollama.priors.providers import InMemoryPriorSource, NullPriorSource
from emollama.priors.source import PriorRequest, build_prior_source
from emollama.training.args import TrainConfig, load_config, packaged_config
from emollama.training.data import InstructionDataset, read_records
from emollama.training.sampler import ModalityLengthGroupedSampler, grouped_indices
from emollama.training.trainer import resolve_deepspeed


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    return small_task(tmp_path_factory.mktemp("task"), n_train=24, n_eval=4)


def test_layering_and_unknown_keys(tmp_path):
    a = tmp_path / "a.yaml"
    a.write_text(yaml.safe_dump({"train": {"lr": 1e-3, "max_steps": 5}, "lora": {"r": 16}}))
    cfg = load_config([a], ["train.lr=2e-4", "lora.targets=[q_proj, v_proj]"])
    assert (cfg.train.lr, cfg.train.max_steps, cfg.lora.r, cfg.lora.alpha) == (2e-4, 5, 16, 16)
    assert cfg.lora.targets == ["q_proj", "v_proj"]
    assert TrainConfig().lora.r == 64 and TrainConfig().lora.dropout == 0.05  # SPEC §2.11 defaults
    with pytest.raises(KeyError, match=r"unknown config key 'train.lrr'; valid keys in train: \[.*'lr'"):
        load_config(overrides=["train.lrr=1"])
    with pytest.raises(KeyError, match=r"unknown config key 'optim'; valid keys: \['model', 'stage'"):
        load_config(overrides=["optim.lr=1"])
    with pytest.raises(ValueError, match=r"train.precision='fp8'; allowed"):
        load_config(overrides=["train.precision=fp8"])
    with pytest.raises(ValueError, match=r"train.max_steps='x': expected int"):
        load_config(overrides=["train.max_steps=x"])


def test_shipped_recipes_load_by_name_and_by_path():
    shipped = resources.files("emollama.configs")
    recipes = sorted(p.name for p in shipped.joinpath("train").iterdir() if p.name.endswith(".yaml"))
    assert {"debug_cpu.yaml", "stage2_instruct.yaml"} <= set(recipes)
    for name in recipes:
        path = packaged_config(name.removesuffix(".yaml"))
        assert path is not None and path.is_file(), name
        cfg = load_config([name.removesuffix(".yaml")])
        assert load_config([path]).to_dict() == cfg.to_dict(), name  # a path still works
        if cfg.train.deepspeed:
            assert Path(resolve_deepspeed(cfg.train.deepspeed)).exists(), cfg.train.deepspeed
    with pytest.raises(FileNotFoundError, match="neither a file nor a shipped name"):
        load_config(["no_such_recipe"])
    jsons = sorted(p.name for p in shipped.joinpath("deepspeed").iterdir() if p.name.endswith(".json"))
    assert jsons == ["zero2.json", "zero2_offload.json", "zero3.json"]
    for name in jsons:
        path = Path(resolve_deepspeed(name.removesuffix(".json")))
        ds = json.loads(path.read_text())
        assert ds["zero_optimization"]["stage"] in (2, 3)
        assert ds["train_micro_batch_size_per_gpu"] == "auto"


def test_synthetic_records_follow_the_instruction_schema(task):
    from emollama.data.schema import validate_dict

    for i, rec in enumerate(read_records(task / "train.jsonl")):
        validate_dict(rec, f"record {i}")
    prior = load_prior_npz(next((task / "priors").glob("*.npz")))
    assert prior.landmarks.shape[1:] == (10, 2) and prior.blendshapes.shape[1] == 8


def test_examples_mix_images_and_videos_with_face_tokens(task):
    ds = InstructionDataset(read_records(task / "train.jsonl"), task, build_prior_source("npz:priors", task),
                            frames="uniform:3")
    mods = Counter(ds.modality(i) for i in range(len(ds)))
    assert mods["image"] and mods["video"]
    v = next(i for i in range(len(ds)) if ds.modality(i) == "video")
    ex = ds[v]
    assert ex.messages[0]["content"].startswith("<video>\n<face>\nWhat is the facial expression")
    assert len(ex.media) == 1 and len(ex.media[0]) == 3 and ex.faces[0].num_frames == 4  # prior keeps its frames
    no_face = InstructionDataset(read_records(task / "train.jsonl"), task, NullPriorSource())
    assert "<face>" not in no_face[0].messages[0]["content"] and no_face[0].faces == []


def test_missing_media_and_priors_error_or_skip(task, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(task, root)
    recs = read_records(root / "train.jsonl")
    (root / recs[0]["image" if "image" in recs[0] else "video"]).rename(root / "gone")
    priors = {r["id"]: load_prior_npz(build_prior_source("npz:priors", root).path(r["id"])) for r in recs[2:]}
    src = InMemoryPriorSource(priors)
    with pytest.raises(FileNotFoundError, match=r"2 of 24 records are missing inputs.*on_missing=skip"):
        InstructionDataset(recs, root, src)
    ds = InstructionDataset(recs, root, src, on_missing="skip")
    assert len(ds) == 22 and ds.skipped == Counter({"missing_media": 1, "missing_prior": 1})


def test_grouped_sampler_is_seeded_and_modality_pure():
    mods = ["image"] * 37 + ["video"] * 19
    lengths = list(range(56))
    s = ModalityLengthGroupedSampler(lengths, mods, group=4, seed=3)
    first = list(s)
    assert sorted(first) == list(range(56)) and list(s) == first
    s.set_epoch(1)
    assert list(s) != first
    full = (37 // 4 + 19 // 4) * 4
    for k in range(0, full, 4):
        group = first[k:k + 4]
        assert len({mods[i] for i in group}) == 1
        assert [lengths[i] for i in group] == sorted((lengths[i] for i in group), reverse=True)
    g = torch.Generator().manual_seed(3)
    assert grouped_indices(lengths, mods, 4, g) == first


def test_agr_from_prior_and_frame_alignment(task):
    import numpy as np

    from emollama.model.presets import build_config
    from emollama.model.processor import EmoLlamaProcessor
    from emollama.model.tiny import tiny_lm_tokenizer, tiny_qformer_tokenizer
    from emollama.training.collate import Collator
    from emollama.training.data import agr_from_prior

    ds = InstructionDataset(read_records(task / "train.jsonl"), task, build_prior_source("npz:priors", task),
                            frames="uniform:3")
    v = next(i for i in range(len(ds)) if ds.modality(i) == "video")
    ex = ds[v]
    prior = ex.faces[0]
    a = agr_from_prior(prior)
    assert a.age_group is not None and a.gender in ("female", "male") and abs(a.gender_confidence - 0.85) < 1e-6
    assert ex.agr == a
    prior.valid = np.zeros(prior.num_frames, bool)
    assert agr_from_prior(prior) is None  # no face on any frame: no AGR sentence
    proc = EmoLlamaProcessor(tiny_lm_tokenizer(), tiny_qformer_tokenizer(), build_config("tiny"))
    batch = Collator(proc, "media")([ds[v]])  # 3 sampled frames, prior cached at 4: aligned to 3 crops
    assert batch["face_frame_counts"].tolist() == [3] and batch["face_pixel_values"].shape[0] == 3
    text = proc.tokenizer.decode(batch["input_ids"][0])
    assert "The person appears to be" in text


def test_prior_cache_is_a_prior_source(task, tmp_path):
    pc = pytest.importorskip("emollama.priors.cache")
    import numpy as np

    from emollama.model.towers import Preprocess

    recs = read_records(task / "train.jsonl")
    npz = build_prior_source("npz:priors", task)
    with pc.PriorCache(tmp_path / "cache", writable=True) as cache:
        for r in recs[:3]:
            prior = npz.get(PriorRequest(r["id"]))
            crops = np.zeros((prior.num_frames, 16, 16, 3), np.uint8)
            cache.put(pc.EntryInfo(r["id"], "", "", 0), prior, crops=crops)
    src = build_prior_source("cache:cache", tmp_path, preprocess=Preprocess(size=32))
    first = PriorRequest(recs[0]["id"])
    assert src.has(first) and not src.has(PriorRequest(recs[5]["id"]))
    got = src.get(first)
    np.testing.assert_allclose(got.blendshapes, npz.get(first).blendshapes)
    assert tuple(got.crops.shape[1:]) == (3, 32, 32)
    ds = InstructionDataset(recs, task, src, on_missing="skip")
    assert len(ds) == 3 and ds.skipped["missing_prior"] == len(recs) - 3
