"""Instruction record schema: round trip, and errors that name the line, the record id and the field."""

from __future__ import annotations

import copy
import json

import pytest

from emollama.data.schema import InstructionRecord, RecordError, Turn, read_jsonl, validate_dict, write_jsonl


def _record(**kw) -> InstructionRecord:
    base = dict(id="rafdb/train_00001/category", dataset="rafdb", split="train", label_name="sadness",
                dataset_index=4, kind="category", template_id="category_v1/ferid", generator="emollama.category@1",
                seed=0, image="Image/aligned/train_00001_aligned.jpg", options=["surprise", "sadness"],
                vocabulary="canonical",
                conversations=[Turn("human", "<image>\nWhat is it? {surprise, sadness}."), Turn("gpt", "sadness")])
    base.update(kw)
    return InstructionRecord(**base)


def test_round_trip_and_llava_shape(tmp_path):
    path = tmp_path / "out.jsonl"
    recs = [_record(), _record(id="dfew/00001/category", image=None, video="Clip/clip_224x224/00001", fold=1)]
    assert write_jsonl(recs, path) == 2
    first = json.loads(path.read_text().splitlines()[0])
    assert list(first)[:3] == ["id", "image", "conversations"]
    assert first["conversations"][0] == {"from": "human", "value": "<image>\nWhat is it? {surprise, sadness}."}
    assert first["label"] == {"index": 6, "name": "sadness", "dataset_index": 4} and first["schema_version"] == 1
    back = list(read_jsonl(path))
    assert back == recs
    assert not (tmp_path / "out.jsonl.tmp").exists()


def _bad(mutate) -> dict:
    d = copy.deepcopy(_record().to_dict())
    mutate(d)
    return d


@pytest.mark.parametrize(("mutate", "field", "text"), [
    (lambda d: d.pop("dataset"), "dataset", "missing"),
    (lambda d: d.update(video="x.mp4"), "image/video", "exactly one"),
    (lambda d: d["conversations"].reverse(), "conversations[0].from", "expected 'human'"),
    (lambda d: d["conversations"].pop(), "conversations", "at least one human and one gpt"),
    (lambda d: d["conversations"][0].update(value="What? <image>"), "conversations[0].value", "must start with"),
    (lambda d: d["label"].update(index=2), "label.index", "does not match name 'sadness'"),
    (lambda d: d["label"].update(name="sad"), "label", "canonical name"),
    (lambda d: d.update(kind="chat"), "kind", "not in ['category', 'conversation']"),
    (lambda d: d.update(schema_version=9), "schema_version", "reads version 1"),
    (lambda d: d["conversations"][1].update(value=" "), "conversations[1].value", "is empty"),
])
def test_validation_names_record_and_field(mutate, field, text):
    with pytest.raises(RecordError) as err:
        validate_dict(_bad(mutate), "f.jsonl:3")
    msg = str(err.value)
    assert msg.startswith("f.jsonl:3: record 'rafdb/train_00001/category': ") or "missing" in msg
    assert f"field {field!r}" in msg and text in msg


def test_read_reports_line_numbers(tmp_path):
    path = tmp_path / "in.jsonl"
    good = json.dumps(_record().to_dict())
    path.write_text(good + "\n\n{not json\n")
    with pytest.raises(RecordError, match=r"in\.jsonl:3: not valid JSON"):
        list(read_jsonl(path))
    path.write_text(good + "\n" + json.dumps(_bad(lambda d: d.update(split=""))) + "\n")
    with pytest.raises(RecordError, match=r"in\.jsonl:2: record 'rafdb/train_00001/category': field 'split'"):
        list(read_jsonl(path))


def test_write_rejects_invalid_and_keeps_old_file(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text("old\n")
    with pytest.raises(RecordError, match=r"\(record 2\): record 'x': field 'conversations\[0\].from'"):
        write_jsonl([_record(), _record(id="x", conversations=[Turn("gpt", "a"), Turn("human", "b")])], path)
    assert path.read_text() == "old\n"
    assert not (tmp_path / "out.jsonl.tmp").exists()
