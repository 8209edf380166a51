"""Offline provider: golden file, determinism per seed, grounding in AU cues, every label passes the gates.

After a deliberate wording change (bump OFFLINE_VERSION), regenerate the golden file and review the diff:

    EMOLLAMA_UPDATE_GOLDENS=1 python -m pytest tests/instruct/test_offline_provider.py -k golden
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from emollama.constants import CANONICAL_EMOTIONS
from emollama.data.benchmarks import get_benchmark
from emollama.data.benchmarks.base import Sample
from emollama.faces.contract import AGRAttributes
from emollama.instruct.conversation import generate_conversations
from emollama.instruct.gates import GateConfig, label_problem, length_problem
from emollama.instruct.providers import Cues, GenerationRequest, build_provider

GOLDEN = Path(__file__).parents[1] / "fixtures" / "golden" / "conversation_offline.jsonl"
UPDATE = os.environ.get("EMOLLAMA_UPDATE_GOLDENS") == "1"


def _samples(name: str, rows: list[tuple[str, int]]) -> list[Sample]:
    info = get_benchmark(name).info()
    video = info.modality == "video"
    return [Sample(sid, Path("/data") / sid, f"media/{sid}", video, idx, info.canonical[idx], "train",
                    1 if info.folds else None) for sid, idx in rows]


RAFDB = _samples("rafdb", [("train_00001", 4), ("train_00002", 0), ("train_00003", 3)])
MAFW = _samples("mafw", [("00001", 0), ("00002", 9), ("00003", 10)])
CUES = {
    "train_00001": Cues(au={"AU15": 0.8, "AU1": 0.5, "AU12": 0.1}, agr=AGRAttributes("20-39", "female"),
                        prior_key="prior/abc123"),
    "train_00003": Cues(au={"AU12": 0.9, "AU6": 0.6}),
    "00002": Cues(caption="A man sits alone on a bench in the rain."),
}


def _generate(tmp_path: Path, seed: int = 0) -> str:
    provider = build_provider("offline")
    text = ""
    for name, samples in (("rafdb", RAFDB), ("mafw", MAFW)):
        out = tmp_path / f"{name}-{seed}.jsonl"
        rep = generate_conversations(samples, name, provider, out, seed=seed, cues=CUES)
        assert rep["generated"] == 3 and rep["n_rejected"] == 0 and rep["tokens"]["total"] == 0
        text += out.read_text()
    return text


def test_offline_golden(tmp_path):
    text = _generate(tmp_path)
    if UPDATE:
        GOLDEN.write_text(text)
    assert text == GOLDEN.read_text(), "offline wording changed: bump OFFLINE_VERSION and regenerate the golden"


def test_deterministic_per_seed(tmp_path):
    (tmp_path / "again").mkdir()
    assert _generate(tmp_path, 5) == _generate(tmp_path / "again", 5)
    assert _generate(tmp_path, 5) != _generate(tmp_path, 6)


def test_grounded_in_cues_and_agr(tmp_path):
    recs = [json.loads(line) for line in _generate(tmp_path).splitlines()]
    sad = recs[0]
    answer = sad["conversations"][1]["value"]
    assert "corners of the mouth are pulled down" in answer and "pulled up" not in answer  # AU15, never AU12
    assert sad["prior_key"] == "prior/abc123" and sad["extra"]["provider"] == "offline"
    mafw = recs[4]
    assert len(mafw["conversations"]) == 4 and mafw["video"] == "media/00002"
    follow = mafw["conversations"][3]["value"]
    assert "bench" in follow or "cause" in follow


@pytest.mark.parametrize("kind", ["image", "video"])
@pytest.mark.parametrize("label", CANONICAL_EMOTIONS)
def test_every_label_passes_the_gates(label, kind):
    provider = build_provider("offline")
    cue_sets = [{}, {f"AU{k}": 0.7 for k in (1, 2, 4, 5, 6, 7, 9, 10, 12, 15, 17, 20, 23, 26)}]
    for seed in range(12):
        for au in cue_sets:
            agr = AGRAttributes("20-39", ("female", "male", None)[seed % 3])
            req = GenerationRequest(f"x/{seed}", label, label, CANONICAL_EMOTIONS, kind, None, "What is it?", seed,
                                    Cues(au=au, agr=agr, caption="Someone walks into a room." if seed % 2 else None))
            turns = provider.generate(req).turns
            assert len(turns) == (2 if kind == "video" else 1)
            assert label_problem(turns, label, CANONICAL_EMOTIONS) is None, turns
            assert length_problem(turns, GateConfig()) is None, turns
            n_sentences = turns[0][1].count(". ") + 1
            assert 2 <= n_sentences <= 4, turns
