"""Category instructions: FERID wording, official option order, seeded shuffles/vocabularies, golden files.

Golden files live in tests/fixtures/golden/category_*.jsonl (3 samples per template and modality, fixed seed).
After a deliberate change to templates or the generator, regenerate them and review the diff:

    EMOLLAMA_UPDATE_GOLDENS=1 python -m pytest tests/instruct/test_category.py -k golden
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from emollama.data.benchmarks import get_benchmark
from emollama.data.benchmarks.base import Sample
from emollama.data.schema import write_jsonl
from emollama.instruct.category import generate
from emollama.instruct.templates import get_template, template_ids, vocabulary_names

GOLDEN = Path(__file__).parents[1] / "fixtures" / "golden"
UPDATE = os.environ.get("EMOLLAMA_UPDATE_GOLDENS") == "1"

FERID_RAFDB = ("<image>\nWhat is the facial expression of the person in the image? Choose one from the following "
               "options: {surprise, fear, disgust, happiness, sadness, anger, neutral}.")


def _samples(name: str, rows: list[tuple[str, int]], split: str = "train", fold: int | None = None) -> list[Sample]:
    info = get_benchmark(name).info()
    video = info.modality == "video"
    return [Sample(sid, Path("/data") / sid, f"media/{sid}", video, idx, info.canonical[idx], split, fold,
                   source="fixture", line=i + 1, raw_label=str(idx)) for i, (sid, idx) in enumerate(rows)]


RAFDB = _samples("rafdb", [("train_00001", 4), ("train_00002", 0), ("train_00003", 3)])
DFEW = _samples("dfew", [("00001", 0), ("00002", 2), ("00003", 6)], fold=1)
MAFW = _samples("mafw", [("00001", 0), ("00002", 9), ("00003", 10)], fold=1)


MIXED_TEMPLATES = ["category_v1/ferid", "category_v1/which", "category_v1/feel", "category_v1/classify"]
MIXED_VOCABS = ["canonical", "ferid_joy", "adjectives"]


def _dump(records) -> str:
    return "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in records)


def _golden_cases() -> dict[str, str]:
    cases = {}
    for tid in template_ids():
        name = tid.split("/", 1)[1]
        cases[f"category_{name}"] = _dump([*generate(RAFDB, "rafdb", [tid], seed=0),
                                           *generate(DFEW, "dfew", [tid], seed=0)])
    # pinned lists, so adding a template or vocabulary later does not move these draws
    kw = dict(template_ids=MIXED_TEMPLATES, seed=7, shuffle_options=True, vocabularies=MIXED_VOCABS)
    cases["category_mixed_shuffled"] = _dump([*generate(RAFDB, "rafdb", **kw), *generate(MAFW, "mafw", **kw)])
    return cases


@pytest.mark.parametrize("case", sorted(_golden_cases()))
def test_golden(case):
    text = _golden_cases()[case]
    path = GOLDEN / f"{case}.jsonl"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"no golden {path}; create it with EMOLLAMA_UPDATE_GOLDENS=1 (see module docstring)"
    assert text == path.read_text(encoding="utf-8"), (
        f"{path.name} changed; if deliberate, regenerate with EMOLLAMA_UPDATE_GOLDENS=1 and review the diff")


def test_ferid_wording_official_order_and_answer():
    recs = list(generate(RAFDB, "rafdb", ["ferid"], seed=0))
    assert recs[0].conversations[0].value == FERID_RAFDB
    assert [r.conversations[1].value for r in recs] == ["sadness", "surprise", "happiness"]
    assert recs[0].options == ["surprise", "fear", "disgust", "happiness", "sadness", "anger", "neutral"]
    assert recs[0].id == "rafdb/train_00001/category" and recs[0].image == "media/train_00001"
    assert recs[0].template_id == "category_v1/ferid" and recs[0].vocabulary == "canonical"
    vid = next(generate(DFEW, "dfew", ["ferid"], seed=0))
    assert vid.video == "media/00001" and vid.image is None and vid.fold == 1
    assert "person in the video? Choose one from the following options: {happiness, sadness, neutral, anger, " \
           "surprise, disgust, fear}." in vid.conversations[0].value


def test_deterministic_and_independent_of_other_samples():
    kw = dict(template_ids=template_ids(), seed=5, shuffle_options=True, vocabularies=vocabulary_names())
    full = [r.to_dict() for r in generate(MAFW, "mafw", **kw)]
    assert full == [r.to_dict() for r in generate(MAFW, "mafw", **kw)]
    assert [r.to_dict() for r in generate(MAFW[2:], "mafw", **kw)] == full[2:]
    other = [r.to_dict() for r in generate(MAFW, "mafw", **{**kw, "seed": 6})]
    assert other != full and all(r["seed"] == 6 for r in other)


def test_shuffle_and_vocabulary_are_recorded_and_consistent():
    for r in generate(MAFW, "mafw", ["ferid"], seed=1, shuffle_options=True, vocabularies=["ferid_joy"]):
        assert r.extra == {"shuffled": True} and r.vocabulary == "ferid_joy"
        assert sorted(r.options) == sorted(["joy" if c == "happiness" else c for c in get_benchmark("mafw").classes])
        assert "{" + ", ".join(r.options) + "}" in r.conversations[0].value
        assert r.conversations[1].value in r.options
    happy = _samples("rafdb", [("train_00009", 3)])
    r = next(generate(happy, "rafdb", ["ferid"], vocabularies=["adjectives"]))
    assert r.conversations[1].value == "happy" and "{surprised, fearful, disgusted, happy," in r.conversations[0].value
    assert r.label_name == "happiness" and r.to_dict()["label"] == {"index": 4, "name": "happiness", "dataset_index": 3}


def test_records_pass_schema_validation(tmp_path):
    recs = [*generate(RAFDB, "rafdb", template_ids()), *generate(DFEW, "dfew", template_ids())]
    assert write_jsonl(recs, tmp_path / "x.jsonl") == 6


def test_errors():
    with pytest.raises(KeyError, match="unknown category template 'category_v1/fered'"):
        list(generate(RAFDB, "rafdb", ["category_v1/fered"]))
    with pytest.raises(KeyError, match="unknown vocabulary 'joyful'"):
        list(generate(RAFDB, "rafdb", vocabularies=["joyful"]))
    with pytest.raises(ValueError, match="pass LoadResult.info"):
        list(generate(RAFDB, "csv"))
    with pytest.raises(ValueError, match="is not class 4 of"):
        list(generate(RAFDB, "dfew"))


def test_every_template_has_both_wordings():
    for tid in template_ids():
        t = get_template(tid)
        assert t.render(["a", "b"], False) != t.render(["a", "b"], True)
        assert "{a, b}" in t.render(["a", "b"], False)
    assert get_template("ferid").id == "category_v1/ferid"
