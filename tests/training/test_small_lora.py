"""Slow: one LoRA step of the `instruct` stage on the `small` preset with the real SmolLM2-135M-Instruct LM."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emollama.training.args import load_config
from emollama.training.stages import base_name


@pytest.mark.slow
def test_one_lora_step_on_small_preset():
    from emollama.model import build, text_lm

    if not hasattr(build, "build_small") or not text_lm.assets_available():
        pytest.skip("needs emollama.model.build.build_small and the SmolLM2 assets (scripts/install_slow_assets.py)")
    from conftest import make_frames, make_prior
    from emollama.training.trainer import build_base, prepare_model

    cfg = load_config(overrides=["model.preset=small", "stage.name=instruct", "lora.r=8"])
    model, proc = build_base(cfg)
    model = prepare_model(model, cfg)
    rng = np.random.default_rng(0)
    conv = [{"role": "user", "content": "<image>\n<face>\nWhat is the facial expression of the person?"},
            {"role": "assistant", "content": "happiness"}]
    batch = proc(conv, media=[make_frames(1, rng, 224, 224)[0]], faces=[make_prior(proc.config, 1, rng)])
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3, weight_decay=0.0)
    model.train()
    for _ in range(2):  # LoRA B is zero at step 1, so LoRA A moves from step 2 on
        loss = model(**batch).loss
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    changed = {base_name(n) for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert any(".lora_A." in n for n in changed) and any(".lora_B." in n for n in changed)
    assert any(n.startswith("face_mining.") for n in changed)
    assert not any(n.startswith("language_model.") and ".lora_" not in n for n in changed)  # base LM frozen
    assert not any(n.startswith("vision_tower.") for n in changed)
