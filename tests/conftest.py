"""Shared fixtures: deterministic, offline, float32, 2 threads; tiny config / tokenizers / model."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("EMOLLAMA_OFFLINE", "1")


def pytest_collection_modifyitems(config, items):
    if os.environ.get("EMOLLAMA_RUN_SLOW") == "1" or "slow" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="slow test: set EMOLLAMA_RUN_SLOW=1 or run `make test-slow`")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _determinism():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    torch.set_default_dtype(torch.float32)
    yield


@pytest.fixture
def tiny_config():
    from emollama.model.presets import build_config

    return build_config("tiny")


@pytest.fixture
def tiny_processor(tiny_config):
    from emollama.model.processor import EmoLlamaProcessor
    from emollama.model.tiny import tiny_lm_tokenizer, tiny_qformer_tokenizer

    return EmoLlamaProcessor(tiny_lm_tokenizer(), tiny_qformer_tokenizer(), tiny_config)


@pytest.fixture
def tiny_model(tiny_processor):
    from emollama.model.modeling import EmoLlamaForConditionalGeneration

    torch.manual_seed(0)
    return EmoLlamaForConditionalGeneration(tiny_processor.config).eval()


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def make_prior(cfg, t: int, rng: np.random.Generator, crops: bool = True):
    """Random but well-formed FacePrior for ``cfg.face_config`` over ``t`` frames."""
    from emollama.faces.contract import FacePrior

    fc = cfg.face_config
    size = cfg.vision_config.image_size
    return FacePrior(
        landmarks=rng.random((t, fc.num_landmarks, 2)).astype(np.float32),
        blendshapes=rng.random((t, fc.num_blendshapes)).astype(np.float32),
        pose=np.zeros((t, 3), np.float32),
        age_probs=np.full((t, fc.num_age_bins), 1 / fc.num_age_bins, np.float32),
        gender_probs=np.full((t, fc.num_genders), 0.5, np.float32),
        crops=torch.from_numpy(rng.standard_normal((t, 3, size, size)).astype(np.float32)) if crops else None,
    )


def make_frames(t: int, rng: np.random.Generator, h: int = 40, w: int = 48) -> list[np.ndarray]:
    return [(rng.random((h, w, 3)) * 255).astype(np.uint8) for _ in range(t)]


SHARED_FER2013 = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "fer2013")


@pytest.fixture(scope="session")
def fer2013_root():
    """The real FER2013 folder (train/ + test/), unpacked once from ../shared into the cache; skips if absent."""
    from pathlib import Path

    src = Path(os.environ.get("EMOLLAMA_FER2013", SHARED_FER2013)).resolve()
    if not src.exists():
        pytest.skip(f"FER2013 is not at {src}: put the shared data beside the checkout (../shared/data/fer2013) "
                    "or set EMOLLAMA_FER2013 to a copy")
    from emollama.data.benchmarks.fer2013 import resolve_root

    return resolve_root(src)
