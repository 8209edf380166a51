"""Behaviour pins for refactors: `emollama analyze` records and `emollama eval` on the tiny model must not change.

The goldens were written by the code before the renovation (#11), and the renovated code reproduced them byte for
byte; `analyze_records.json` (the default expression model) is rewritten on purpose whenever retrained weights ship
(#12; last for the `b03609c`-recipe weights, sha256 15d27d65…), the mini-Xception one and the eval one are still
the pre-renovation files, except that both analyze goldens gained one key per face and track record,
`expression_model` (the weights' name and sha256 prefix), inserted by a script, every other value untouched.
Strings, integers, booleans and the structure must be identical; floats may differ only by what another x86-64
CPU's kernels give (a few float32 ulps on the tiny model, one unit of the last printed digit in the analyzer's
rounded records).
Regenerate only on purpose: `python tests/golden/analyze_golden.py tests/fixtures/golden/analyze_records.json`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from tests.golden import analyze_golden, eval_golden

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden"


def last_digit(x: float) -> float:
    """One unit of the last printed decimal of a rounded value (0.499 -> 0.001, 95.3 -> 0.1)."""
    text = repr(x)
    return 10.0 ** -(len(text.split(".")[1]) if "." in text and "e" not in text else 0)


def assert_same(got: object, want: object, rel: float, abs_: float | None, where: str = "") -> None:
    """Recursive equality; floats within rel/abs (abs None: 1.5 units of the golden's last printed digit),
    everything else exact."""
    if isinstance(want, float) and isinstance(got, (int, float)) and not isinstance(got, bool):
        tol = 1.5 * last_digit(want) if abs_ is None else abs_
        assert math.isclose(got, want, rel_tol=rel, abs_tol=tol), f"{where}: {got} != {want}"
    elif isinstance(want, dict):
        assert isinstance(got, dict) and got.keys() == want.keys(), f"{where}: keys {sorted(got)} != {sorted(want)}"
        for k in want:
            assert_same(got[k], want[k], rel, abs_, f"{where}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: length {len(got)} != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, rel, abs_, f"{where}[{i}]")
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


def _analyze_or_skip(extra: list[str]) -> dict:
    try:
        analyze_golden.media_paths()
    except Exception as err:  # noqa: BLE001 - any missing asset means the sample media are not installed
        pytest.skip(f"sample media not in the asset cache ({err}); `make test` installs them")
    return analyze_golden.run(extra)


@pytest.mark.media
@pytest.mark.parametrize("model,fixture", [("emonet", "analyze_records.json"),
                                           ("mini-xception", "analyze_records_mini_xception.json")])
def test_analyze_records_match_the_golden(model, fixture):
    pytest.importorskip("mediapipe")
    got = _analyze_or_skip([] if model == "emonet" else ["--expression", model])
    # records are rounded (0.1 px boxes, 3-4 decimal scores): one unit of the last digit is the cross-CPU allowance
    assert_same(got, json.loads((GOLDEN / fixture).read_text()), rel=0.0, abs_=None)


def test_eval_on_the_tiny_model_matches_the_golden():
    got = json.loads(json.dumps(eval_golden.run()))  # the same float formatting as the file
    assert_same(got, json.loads((GOLDEN / "eval_tiny.json").read_text()), rel=1e-4, abs_=1e-6)
