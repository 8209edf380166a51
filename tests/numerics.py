"""Tolerances derived from floating-point numerics, for tests that compare two orders of the same computation.

Equivalent computations (merged vs unmerged LoRA, batched vs alone, KV cache vs none, DDP vs one process, ours vs a
reference transcription) round differently, and by how much depends on the CPU's SIMD path (AVX2 vs AVX-512, Intel
vs AMD) and the thread count. Their difference is therefore bounded in units of the dtype's machine epsilon times
the magnitude of the values, never by a fixed absolute number. Comparisons of the *same* computation run twice
(save -> load, resume == clean run) stay exact (``torch.equal``); this module is not for those.
"""

from __future__ import annotations

import torch

# Default budget, in eps x max|value|. Two float32 evaluation orders of the tiny models differ by up to ~25 eps
# (measured on AMD EPYC: merged vs unmerged LoRA logits 24, SAM-style attention with std-0.3 weights ~300, which is
# why such parity tests run in float64). 256 eps is 3e-5 of the largest value in float32: 10x room for other SIMD
# paths and thread counts, and still far below what a real bug (a missing term, a wrong mask or scale) moves.
ULPS = 256.0


def _as_tensor(x) -> torch.Tensor:
    t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(x)
    return t if t.is_floating_point() else t.to(torch.get_default_dtype())


def tolerance(
    actual, expected, *, ulps: float = ULPS, scale: float | None = None, dtype: torch.dtype | None = None
) -> float:
    """Absolute tolerance ``ulps x eps(dtype) x scale``.

    Args:
        actual, expected: tensors or array-likes of the same shape.
        ulps: budget in machine epsilons of ``dtype``.
        scale: the magnitude the rounding errors are relative to; default max |value| over both inputs.
        dtype: the dtype the values were *computed* in; default the less precise of the two inputs' dtypes.
    """
    a, e = _as_tensor(actual), _as_tensor(expected)
    if dtype is None:
        dtype = min(a.dtype, e.dtype, key=lambda d: torch.finfo(d).bits)
    if scale is None:
        finite = [t[torch.isfinite(t)].abs() for t in (a, e)]
        scale = max((t.max().item() for t in finite if t.numel()), default=0.0)
    return ulps * torch.finfo(dtype).eps * scale


def assert_close_numerics(
    actual, expected, *, ulps: float = ULPS, scale: float | None = None, dtype: torch.dtype | None = None,
    msg: str = "",
) -> None:
    """``|actual - expected| <= tolerance(...)`` at finite values; infinities and NaNs must sit at the same places
    (masked logits are -inf in both orders)."""
    a, e = _as_tensor(actual), _as_tensor(expected)
    assert a.shape == e.shape, f"{msg} shape {tuple(a.shape)} != {tuple(e.shape)}"
    fin = torch.isfinite(a)
    assert torch.equal(fin, torch.isfinite(e)), f"{msg} non-finite values at different places"
    assert torch.equal(a[~fin].isnan(), e[~fin].isnan()) and torch.equal(a[~fin].nan_to_num(), e[~fin].nan_to_num())
    tol = tolerance(a, e, ulps=ulps, scale=scale, dtype=dtype)
    worst = (a[fin].double() - e[fin].double()).abs().max().item() if fin.any() else 0.0
    unit = tol / ulps if ulps else 0.0
    assert worst <= tol, (
        f"{msg} max |actual - expected| = {worst:.3g} > tolerance {tol:.3g} "
        f"({worst / unit if unit else float('inf'):.0f} of a budget of {ulps:.0f} eps x scale)"
    )


def near_tie(scores, i: int, j: int, *, ulps: float = ULPS, dtype: torch.dtype | None = None) -> bool:
    """Whether ``scores[i]`` and ``scores[j]`` (1-D) are within rounding of each other, so either may win argmax."""
    s = _as_tensor(scores)
    return abs(s[i].item() - s[j].item()) <= tolerance(s, s, ulps=ulps, dtype=dtype)


def assert_argmax_agrees(
    actual, expected, *, ulps: float = ULPS, dtype: torch.dtype | None = None, msg: str = ""
) -> None:
    """``argmax(actual) == argmax(expected)`` along the last dim, except at near-ties of ``expected``.

    Two evaluation orders can legitimately pick different winners only when the top scores are within rounding.
    """
    a, e = _as_tensor(actual), _as_tensor(expected)
    ia, ie = a.argmax(-1).reshape(-1), e.argmax(-1).reshape(-1)
    rows = e.reshape(-1, e.shape[-1])
    for r in torch.nonzero(ia != ie).flatten().tolist():
        assert near_tie(rows[r], int(ia[r]), int(ie[r]), ulps=ulps, dtype=dtype), (
            f"{msg} argmax differs at row {r}: {int(ia[r])} vs {int(ie[r])}, scores {rows[r][ia[r]].item():.6g} vs "
            f"{rows[r][ie[r]].item():.6g}: not a near-tie"
        )


def assert_same_greedy(
    a, b, row_a: int = 0, row_b: int = 0, *, eos: int | None = None, ulps: float = ULPS, msg: str = ""
) -> None:
    """Two greedy ``generate(..., output_logits=True, return_dict_in_generate=True)`` outputs agree.

    Step by step the logits must be close; the chosen tokens must be equal, except that the decodings may part at
    a near-tie (both tokens within rounding of the top score), after which the continuations are unrelated.
    A batched row keeps stepping after its ``eos``; the single decoding stops there.
    """
    n_a, n_b = len(a.logits), len(b.logits)
    toks_a, toks_b = a.sequences[row_a, -n_a:], b.sequences[row_b, -n_b:]
    for t in range(min(n_a, n_b)):
        la, lb = a.logits[t][row_a], b.logits[t][row_b]
        assert_close_numerics(la, lb, ulps=ulps, msg=f"{msg} step {t} logits:")
        if int(toks_a[t]) != int(toks_b[t]):
            assert near_tie(lb, int(toks_a[t]), int(toks_b[t]), ulps=ulps), (
                f"{msg} step {t}: token {int(toks_a[t])} vs {int(toks_b[t])} without a near-tie"
            )
            return
    if n_a != n_b:
        short = toks_a if n_a < n_b else toks_b
        assert eos is not None and int(short[-1]) == eos, f"{msg} {n_a} vs {n_b} steps, the shorter not ended by eos"
