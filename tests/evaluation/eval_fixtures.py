"""Helpers for the `emollama eval` tests: tiny datasets in official layouts and a tiny-model local backend."""

from __future__ import annotations

from pathlib import Path

from tests.data import fer_layouts as F

RAFDB_TEST = ["test_0001.jpg 7", "test_0002.jpg 6", "test_0003.jpg 1", "test_0004.jpg 4", "test_0005.jpg 5"]


def rafdb_root(tmp: Path) -> Path:
    """RAF-DB with 5 test images (+ manual AGR annotations) and one train image."""
    return F.rafdb(tmp / "rafdb", ["train_00001.jpg 5", *RAFDB_TEST])


def dfew_two_folds(tmp: Path) -> Path:
    """DFEW with test lists for folds 1 and 2 (2 and 3 clips; disjoint clips, 2 frames each)."""
    root = F.dfew(tmp / "dfew", test=["video_name,label", "4,2", "5,1"])
    base = root / "EmoLabel_DataSplit"
    F.text(base / "train(single-labeled)" / "set_2.csv", ["video_name,label", "4,2"])
    F.text(base / "test(single-labeled)" / "set_2.csv", ["video_name,label", "1,1", "2,3", "6,5"])
    for vid in (5, 6):
        F.frames(root / "Clip" / "clip_224x224" / f"{vid:05d}")
    return root


def tiny_backend(max_new_tokens: int = 6, max_synonyms: int = 1, priors: bool = True, canonical=None):
    """LocalBackend over the random tiny model with synthetic (tiny10) priors."""
    from emollama.data.benchmarks import dataset_classes
    from emollama.evaluation.backends import LocalBackend
    from emollama.model.build import build_tiny
    from emollama.priors.source import model_prior_source

    model, proc = build_tiny(seed=0)
    prov = model_prior_source("auto" if priors else "none", proc)
    return LocalBackend(model, proc, prov, model_id="tiny", canonical=canonical or dataset_classes("rafdb"),
                        max_new_tokens=max_new_tokens, max_synonyms=max_synonyms)


def rafdb_items(root: Path, limit: int | None = None, seed: int = 0):
    from emollama.data.benchmarks import get_benchmark
    from emollama.evaluation.runner import build_items

    res = get_benchmark("rafdb").load(root, "test")
    samples = res.samples[:limit] if limit else res.samples
    return res.info, build_items([(None, samples)], res.info, ("ferid",), "canonical", seed)
