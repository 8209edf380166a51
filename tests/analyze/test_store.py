"""Resumable result store: torn tails and half-written items are dropped, done items are skipped."""

from __future__ import annotations

import csv
import json

import pytest

from emollama.analyze.store import ResultStore


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_roundtrip_and_done_keys(tmp_path, suffix):
    path = tmp_path / f"out{suffix}"
    with ResultStore(path, "h1") as st:
        st.write_item("a", [{"kind": "face", "source": "a.jpg", "label": "happiness", "box": [1, 2, 3, 4]}])
        st.write_item("b", [{"kind": "face", "source": "b.jpg", "explanation": "two\nlines"},
                            {"kind": "face", "source": "b.jpg"}])
    st2 = ResultStore(path, "h1")
    assert st2.done == {"a", "b"}
    st2.close()
    if suffix == ".csv":
        rows = list(csv.DictReader(path.open()))
        assert len(rows) == 3 and rows[1]["explanation"] == "two lines" and rows[0]["box"] == "[1, 2, 3, 4]"
    else:
        rows = [json.loads(x) for x in path.read_text().splitlines()]
        assert [r["record_index"] for r in rows] == [0, 0, 1] and rows[1]["records_in_item"] == 2


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_torn_tail_and_incomplete_item_are_dropped(tmp_path, suffix):
    path = tmp_path / f"out{suffix}"
    with ResultStore(path, "h") as st:
        st.write_item("a", [{"kind": "face", "source": "a"}])
        st.write_item("b", [{"kind": "face", "source": "b"}, {"kind": "face", "source": "b"}])
    body = path.read_text().rstrip("\n")
    cut = body.rfind("\n") + 1
    path.write_text(body[:cut] + body[cut:][:5])  # drop b's second record but keep a torn piece of it
    st = ResultStore(path, "h")  # item b lost its 2nd record and has a torn tail
    assert st.done == {"a"}
    st.write_item("b", [{"kind": "face", "source": "b"}, {"kind": "face", "source": "b"}])
    st.close()
    again = ResultStore(path, "h")
    assert again.done == {"a", "b"}
    again.close()
    lines = [x for x in path.read_text().splitlines() if x]
    assert len(lines) == (4 if suffix == ".csv" else 3)  # csv: header + 3 rows; no duplicates


def test_other_options_refused(tmp_path):
    path = tmp_path / "o.jsonl"
    with ResultStore(path, "h1") as st:
        st.write_item("a", [{"kind": "face"}])
    with pytest.raises(ValueError, match="different analysis options.*--overwrite"):
        ResultStore(path, "h2")


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_labels_of_other_weights_are_refused_and_older_files_resume(tmp_path, suffix, caplog):
    path = tmp_path / f"m{suffix}"
    old, new = "emonet-fer2013 sha256:aaaaaaaaaaaa", "emonet-fer2013 sha256:bbbbbbbbbbbb"
    with ResultStore(path, "h", old) as st:
        st.write_item("a", [{"kind": "face", "label": "anger", "expression_model": old}])
        st.write_item("b", [{"kind": "no_face"}])
    with pytest.raises(ValueError, match=f"expression model {old}.*this run uses {new}.*--overwrite"):
        ResultStore(path, "h", new)
    with ResultStore(path, "h", old) as same:  # the same weights resume
        assert same.done == {"a", "b"}
    legacy = tmp_path / f"legacy{suffix}"  # written before records named their model
    with ResultStore(legacy, "h") as st:
        st.write_item("a", [{"kind": "face", "label": "anger"}])
    if suffix == ".csv":  # an older release's header, without the column
        rows = list(csv.DictReader(legacy.open()))
        cols = [c for c in rows[0] if c != "expression_model"]
        with legacy.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
    with ResultStore(legacy, "h", new) as resumed:
        assert resumed.done == {"a"}
    assert "written before records named their expression model" in caplog.text
    assert ("CSV header will drop the name" in caplog.text) == (suffix == ".csv")
