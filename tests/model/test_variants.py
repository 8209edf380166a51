"""Alternative configurations: CLIP tower, the LM's own chat template, Q-Former left truncation."""

from __future__ import annotations

import torch
from tests.conftest import make_frames

from emollama.constants import IGNORE_INDEX
from emollama.model.build import build_tiny
from emollama.model.modeling import EmoLlamaForConditionalGeneration
from emollama.model.presets import build_config
from emollama.model.processor import EmoLlamaProcessor
from emollama.model.tiny import tiny_lm_tokenizer, tiny_qformer_tokenizer

CLIP = [
    "vision_config.model_type=clip_vision_model", "vision_config.hidden_size=16",
    "vision_config.intermediate_size=32", "vision_config.num_hidden_layers=2",
    "vision_config.num_attention_heads=2", "vision_config.image_size=32", "vision_config.patch_size=8",
    "vision_feature_layer=-2",
]


def test_clip_tower_alternative(rng):
    cfg = build_config("tiny", CLIP)
    proc = EmoLlamaProcessor(tiny_lm_tokenizer(), tiny_qformer_tokenizer(), cfg)
    model = EmoLlamaForConditionalGeneration(cfg).eval()
    assert type(model.vision_tower).__name__ == "ClipTower"
    b = proc([{"role": "user", "content": "<video> What?"}], media=[make_frames(2, rng)], add_generation_prompt=True)
    with torch.no_grad():
        out = model(**b)
    assert torch.isfinite(out.logits).all()


CHAT_TEMPLATE = (
    "{% for m in messages %}{{ m['role'] }} : {{ m['content'] }}{% if m['role'] == 'assistant' %}</s>"
    "{% else %} . {% endif %}{% endfor %}{% if add_generation_prompt %}assistant :{% endif %}"
)


def test_chat_template_mode_masks_answers(rng):
    cfg = build_config("tiny", ["conv_template=chat_template"])
    tok = tiny_lm_tokenizer()
    tok.chat_template = CHAT_TEMPLATE
    proc = EmoLlamaProcessor(tok, tiny_qformer_tokenizer(), cfg)
    conv = [{"role": "user", "content": "<image> What is the emotion?"}, {"role": "assistant", "content": "anger"},
            {"role": "user", "content": "Why?"}, {"role": "assistant", "content": "brows lowered"}]
    b = proc(conv, media=make_frames(1, rng))
    labels = b["labels"][0]
    kept = tok.convert_ids_to_tokens(labels[labels != IGNORE_INDEX].tolist())
    assert kept == ["anger", "</s>", "brows", "lowered", "</s>"]
    assert b["input_ids"][0, 0] != tok.bos_token_id  # the template, not vicuna_v1, decides the prefix


def test_qformer_prompt_is_left_truncated(rng):
    model, proc = build_tiny(["qformer_max_length=6"])
    long_q = "the person " * 20 + "what is the emotion"
    b = proc([{"role": "user", "content": "<image> " + long_q}], media=make_frames(1, rng))
    assert b["qformer_input_ids"].shape[1] == 6
    text = proc.qformer_tokenizer.decode(b["qformer_input_ids"][0], skip_special_tokens=True)
    assert text == "what is the emotion"  # the question at the end survives


def test_chat_template_supervises_the_answer_not_its_copy_in_the_question(rng):
    """The answer word also appears in the question's option list; the supervised token must be the answer after the
    assistant prompt (a first-occurrence search supervised the option list: the model learned nothing visual)."""
    cfg = build_config("tiny", ["conv_template=chat_template"])
    tok = tiny_lm_tokenizer()
    tok.chat_template = CHAT_TEMPLATE
    proc = EmoLlamaProcessor(tok, tiny_qformer_tokenizer(), cfg)
    conv = [{"role": "user", "content": "<image> What is the emotion? Options: anger, fear."},
            {"role": "assistant", "content": "fear"}]
    b = proc(conv, media=make_frames(1, rng))
    ids, labels = b["input_ids"][0], b["labels"][0]
    pos = (labels != IGNORE_INDEX).nonzero().flatten().tolist()
    assert tok.convert_ids_to_tokens(labels[pos].tolist()) == ["fear", "</s>"]
    prompt = proc([conv[0]], media=make_frames(1, rng), add_generation_prompt=True)["input_ids"][0]
    assert pos[0] == len(prompt)  # the first supervised token is the first one after the generation prompt
    assert torch.equal(ids[pos], labels[pos])
