"""`emollama datasets list|check` and `emollama gen-data` end to end, in-process, on tiny fixtures."""

from __future__ import annotations

import fer_layouts as L

from emollama.cli.__main__ import main
from emollama.data.schema import read_jsonl


def test_datasets_list(capsys):
    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    assert "rafdb  [image]" in out and "0=Surprise, 1=Fear" in out and "ids 1-7 (1-based)" in out
    assert "splits: train, test (test: test); folds 1, 2, 3, 4, 5" in out
    assert "--opt image=...  aligned" in out


def test_datasets_check_table_and_exit_codes(tmp_path, capsys):
    root = L.rafdb(tmp_path / "basic")
    assert main(["datasets", "check", "rafdb", str(root)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[1].split() == ["id", "class", "canonical", "train", "test"]
    assert lines[3].split() == ["0", "Surprise", "surprise", "1", "0"]
    assert ["total", "3", "2"] in [line.split() for line in lines]
    assert "label ids 1..7 (official 1..7)" in out and "no skipped or excluded samples" in out
    bad = L.rafdb(tmp_path / "bad", [*L.RAFDB_LINES, "train_00009.jpg 8"])
    assert main(["datasets", "check", "rafdb", str(bad)]) == 3
    out = capsys.readouterr().out
    assert "skipped: 1" in out and "unknown label: 1" in out and "list_patition_label.txt:6" in out
    assert main(["datasets", "check", "rafdb", str(bad), "--strict"]) == 1
    assert "strict mode" in capsys.readouterr().err


def test_datasets_check_folds_and_layout_error(tmp_path, capsys):
    root = L.dfew(tmp_path / "DFEW")
    assert main(["datasets", "check", "dfew", str(root), "--fold", "1"]) == 0
    assert "f1/train  f1/test" in capsys.readouterr().out
    assert main(["datasets", "check", "dfew", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "expected the label folder directory" in err and "Fix:" in err


def test_gen_data_category(tmp_path, capsys):
    root = L.mafw(tmp_path / "MAFW")
    out = tmp_path / "mafw.jsonl"
    assert main(["gen-data", "mafw", str(root), "--kind", "category", "--out", str(out), "--seed", "3",
                 "--media-prefix", "MAFW"]) == 0
    stdout = capsys.readouterr()
    assert "wrote 3 category records" in stdout.out and "using fold 1" in stdout.err
    recs = list(read_jsonl(out))
    assert [r.video for r in recs] == ["MAFW/data/faces/00001", "MAFW/data/faces/00002", "MAFW/data/faces/00003"]
    assert recs[1].conversations[1].value == "helplessness" and recs[1].fold == 1 and recs[1].seed == 3
    assert "person in the video" in recs[0].conversations[0].value


def test_gen_data_conversation_offline(tmp_path, capsys):
    root = L.mafw(tmp_path / "MAFW")
    out = tmp_path / "x.jsonl"
    code = main(["gen-data", "mafw", str(root), "--kind", "conversation", "--provider", "offline",
                 "--out", str(out), "--seed", "1"])
    assert code == 0
    assert "conversation records" in capsys.readouterr().out
    recs = list(read_jsonl(out))
    assert recs and all(r.kind == "conversation" for r in recs)
    from emollama.instruct.gates import label_problem

    classes = ["anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise", "contempt", "anxiety",
               "helplessness", "disappointment"]
    for r in recs:  # every written answer passed the label-consistency gate: names its class and no other
        c = r.conversations
        turns = [(c[i].value, c[i + 1].value) for i in range(0, len(c) - 1, 2)]
        assert label_problem(turns, r.label_name, classes) is None, r.id


def test_gen_data_conversation_needs_provider(tmp_path, capsys):
    root = L.mafw(tmp_path / "MAFW")
    code = main(["gen-data", "mafw", str(root), "--kind", "conversation", "--out", str(tmp_path / "x.jsonl")])
    assert code == 1 and "needs --provider" in capsys.readouterr().err
