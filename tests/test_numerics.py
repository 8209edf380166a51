"""The tolerance helpers in tests/numerics.py: rounding passes at any magnitude, real differences fail."""

from __future__ import annotations

import pytest
import torch
from tests.numerics import assert_argmax_agrees, assert_close_numerics, tolerance


def test_tolerance_scales_with_magnitude_and_dtype():
    x = torch.tensor([-11.0, 2.0])
    assert tolerance(x, x) == pytest.approx(256 * torch.finfo(torch.float32).eps * 11)
    assert tolerance(x.double(), x.double()) < 1e-12
    assert tolerance(x.double(), x.double(), dtype=torch.float32) == tolerance(x, x)


def test_reordered_float32_sums_pass_at_any_scale():
    g = torch.Generator().manual_seed(0)
    for scale in (1e-3, 1.0, 1e4):
        terms = torch.randn(64, 4096, generator=g) * scale
        forward, backward = terms.sum(-1), terms.flip(-1).cumsum(-1)[:, -1]
        assert not torch.equal(forward, backward)  # the two orders really do round differently
        assert_close_numerics(forward, backward)


def test_merged_lora_sized_rounding_passes_where_a_fixed_atol_failed():
    logits = torch.randn(6, 128, 100, generator=torch.Generator().manual_seed(0)) * 3
    logits[0, 0, 0], logits[0, 66, 85] = 10.9, 0.5  # AMD EPYC: max |logit| 10.9; 2.3e-5 apart at a logit near 0
    other = logits.clone()
    other[0, 66, 85] += 2.3e-5
    with pytest.raises(AssertionError):
        torch.testing.assert_close(other, logits, rtol=1e-5, atol=1e-5)
    assert_close_numerics(other, logits)


def test_a_real_difference_fails():
    x = torch.randn(100, generator=torch.Generator().manual_seed(0))
    with pytest.raises(AssertionError, match="budget of 256 eps"):
        assert_close_numerics(x * (1 + 1e-3), x)


def test_infinities_must_match():
    x = torch.tensor([0.5, float("-inf"), 2.0])
    assert_close_numerics(x, x.clone())
    with pytest.raises(AssertionError, match="non-finite"):
        assert_close_numerics(x, torch.tensor([0.5, 1.0, 2.0]))


def test_argmax_may_differ_only_at_a_near_tie():
    e = torch.tensor([[1.0, 3.0, 3.0 + 1e-6], [0.0, 1.0, 0.5]])
    a = torch.tensor([[1.0, 3.0 + 2e-6, 3.0], [0.0, 1.0, 0.5]])
    assert_argmax_agrees(a, e)  # row 0: 1e-6 apart, within rounding of 3.0
    with pytest.raises(AssertionError, match="not a near-tie"):
        assert_argmax_agrees(torch.tensor([[0.0, 1.0, 0.5], [0.0, 0.5, 1.0]]), e)
