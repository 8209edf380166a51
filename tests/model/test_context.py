"""LLaMA-VID context/content math (SPEC §2.5) equals a plain re-computation from the module's own weights."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from tests.numerics import assert_close_numerics

from emollama.model.build import build_tiny


def _reference(m, feats, ids, mask, compress):
    """Direct transcription of SPEC §2.5 with the module's weights."""
    lv = m.llamavid
    q = lv.vlm_att_query.expand(feats.shape[0], -1, -1)
    full_mask = torch.cat([torch.ones(q.shape[:2], dtype=mask.dtype), mask], 1)
    qf = lv.vlm_att_encoder(input_ids=ids, attention_mask=full_mask, query_embeds=q,
                            encoder_hidden_states=lv.vlm_att_ln(feats)).last_hidden_state[:, : q.shape[1]]
    qt = qf @ lv.vlm_att_projector.weight.T + lv.vlm_att_projector.bias
    v = feats[:, 1:]
    k = v @ lv.vlm_att_key_projector.weight.T + lv.vlm_att_key_projector.bias
    a = torch.softmax(torch.einsum("rqd,rpd->rqp", qt, k) / math.sqrt(v.shape[-1]), -1)
    e = torch.einsum("rqp,rpd->rqd", a, v).mean(1, keepdim=True)
    ctx = e @ lv.vlm_att_val_projector.weight.T + lv.vlm_att_val_projector.bias
    if compress == "mean":
        pooled = v.mean(1, keepdim=True)
    elif compress is None:
        pooled = v
    else:
        n = int(compress.split(":")[1])
        g = int(math.isqrt(v.shape[1]))
        grid = v.reshape(v.shape[0], g, g, -1).permute(0, 3, 1, 2)
        pooled = F.avg_pool2d(grid, g // n).flatten(2).transpose(1, 2)
    p = lv.mm_projector
    content = p[2](F.gelu(p[0](pooled)))
    return torch.cat([ctx, content], 1)


@pytest.mark.parametrize("compress", ["mean", "grid:2", "grid:4", None])
def test_context_and_content_tokens_match_reference(compress, tiny_processor):
    model, proc = build_tiny([f"compress_type={'null' if compress is None else compress}"])
    feats = torch.randn(3, 17, model.config.vision_config.hidden_size)
    q = proc.qformer_tokenizer(["what is the emotion", "why", "describe the face"], padding=True, return_tensors="pt")
    with torch.no_grad():
        ours = model.llamavid(feats, q["input_ids"], q["attention_mask"])
        ref = _reference(model, feats, q["input_ids"], q["attention_mask"], compress)
    assert_close_numerics(ours, ref)  # einsum vs matmul order: equal up to rounding


def test_context_token_depends_on_prompt_content_does_not(tiny_model, tiny_processor):
    feats = torch.randn(1, 17, tiny_model.config.vision_config.hidden_size)
    outs = []
    for text in ["what is the emotion", "describe the mouth"]:
        q = tiny_processor.qformer_tokenizer([text], return_tensors="pt")
        with torch.no_grad():
            outs.append(tiny_model.llamavid(feats, q["input_ids"], q["attention_mask"]))
    assert not torch.allclose(outs[0][:, 0], outs[1][:, 0])  # context token is text-guided
    torch.testing.assert_close(outs[0][:, 1:], outs[1][:, 1:])  # content token is not


def test_cls_token_is_excluded_from_patches(tiny_model, tiny_processor):
    q = tiny_processor.qformer_tokenizer(["what"], return_tensors="pt")
    feats = torch.randn(1, 17, tiny_model.config.vision_config.hidden_size)
    changed = feats.clone()
    changed[:, 0] = torch.randn_like(changed[:, 0])  # CLS only reaches the Q-Former memory, never the content pooling
    with torch.no_grad():
        a = tiny_model.llamavid(feats, q["input_ids"], q["attention_mask"])
        b = tiny_model.llamavid(changed, q["input_ids"], q["attention_mask"])
    torch.testing.assert_close(a[:, 1:], b[:, 1:])
    assert not torch.allclose(a[:, 0], b[:, 0])
