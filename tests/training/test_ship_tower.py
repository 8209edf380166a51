"""`emollama export` and the frozen emonet tower of emollama-small: the export carries the tower the run was
trained on, and refuses to pair a run with a tower retrained after it."""

from __future__ import annotations

import json

import pytest

from emollama.faces.expression_net import DEFAULT_WEIGHTS
from emollama.training.checkpoint import FORMAT, META
from emollama.training.ship import TOWER, export_checkpoint, sha256_file, tower_record


def _ckpt(tmp_path, **extra):
    ckpt = tmp_path / "run" / "final"
    ckpt.mkdir(parents=True)
    meta = {"format": FORMAT, "stage": "instruct", "base": {"preset": "emollama-small"}, "lora": None, **extra}
    (ckpt / META).write_text(json.dumps(meta))
    return ckpt


def test_training_records_the_packaged_tower_and_export_copies_it(tmp_path):
    rec = tower_record({"base": {"preset": "emollama-small"}})
    assert rec == {"tower_sha256": sha256_file(DEFAULT_WEIGHTS)}
    assert tower_record({"base": {"preset": "tiny"}}) == {}  # other presets have no emonet tower
    out = export_checkpoint(_ckpt(tmp_path, **rec), tmp_path / "shipped")
    assert sha256_file(out / TOWER) == rec["tower_sha256"]
    assert json.loads((out / META).read_text())["tower_sha256"] == rec["tower_sha256"]


def test_export_refuses_a_tower_retrained_after_the_run(tmp_path):
    ckpt = _ckpt(tmp_path, tower_sha256="0" * 64)
    with pytest.raises(ValueError, match="retrained since"):
        export_checkpoint(ckpt, tmp_path / "shipped")
    assert not (tmp_path / "shipped").exists()  # nothing half-written
