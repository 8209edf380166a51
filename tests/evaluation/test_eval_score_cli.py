"""`emollama score` / `emollama report` on fixture CSVs: hand-computed numbers, error messages, docs example."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emollama.cli.__main__ import main
from emollama.evaluation.report import Report

HERE = Path(__file__).parent
FIXTURE = HERE / "fixtures" / "dfew_toy_2fold.csv"
DOCS = HERE.parents[1] / "docs" / "examples"


def _score(tmp_path, *extra: str, csv_path: Path = FIXTURE) -> Report:
    assert main(["score", str(csv_path), "--out", str(tmp_path), "--n-boot", "100", *extra]) == 0
    return Report.load_json(tmp_path / "report.json")


def test_score_fixture_hand_computed_strict(tmp_path, capsys):
    r = _score(tmp_path, "--dataset", "dfew", "--group-column", "gender")
    # fold 1: preds hap, hap, neu (truth sad), ang, none (truth neu) -> WAR 3/5; recalls hap 1, sad 0, ang 1, neu 0
    # fold 2: sur, fear (truth sur), fear, none (ambiguous, truth dis), hap -> WAR 3/5;
    #         recalls sur 1/2, fear 1, dis 0, hap 1
    assert r.folds["1"]["war"] == pytest.approx(0.6) and r.folds["1"]["uar"] == pytest.approx(0.5)
    assert r.folds["2"]["war"] == pytest.approx(0.6) and r.folds["2"]["uar"] == pytest.approx(0.625)
    assert r.folds["1"]["macro_f1"] == pytest.approx(0.5) and r.folds["2"]["macro_f1"] == pytest.approx(7 / 12)
    assert r.metrics["war"]["value"] == pytest.approx(0.6)
    assert r.metrics["uar"]["value"] == pytest.approx(0.5625)
    assert r.metrics["macro_f1"]["value"] == pytest.approx((0.5 + 7 / 12) / 2)
    # pooled: recalls hap 3/3, sad 0, neu 0, ang 1, sur 1/2, dis 0, fear 1 -> UAR 3.5/7
    assert r.pooled["war"] == pytest.approx(0.6) and r.pooled["uar"] == pytest.approx(0.5)
    assert r.pooled["macro_f1"] == pytest.approx(10 / 21)
    assert [(s.id, s.status) for s in r.unparseable] == [("s05", "unparseable"), ("s09", "ambiguous")]
    assert r.breakdowns["gender"]["f"]["war"] == pytest.approx(0.2) and r.breakdowns["gender"]["m"]["war"] == 1.0
    assert r.provenance["source"] == "dfew_toy_2fold.csv" and len(r.provenance["synonyms_sha256"]) == 64
    out = capsys.readouterr().out
    assert "| UAR | 56.25 |" in out and "Unparseable: **2 / 10**" in out
    assert {"report.csv", "report.json", "report.md"} <= {p.name for p in tmp_path.iterdir()}


def test_score_fixture_first_policy(tmp_path):
    r = _score(tmp_path, "--dataset", "dfew", "--policy", "first")
    # "disgusted and angry" now counts as disgust: fold 2 WAR 4/5, UAR (.5 + 1 + 1 + 1)/4
    assert r.folds["2"]["war"] == pytest.approx(0.8) and r.folds["2"]["uar"] == pytest.approx(0.875)
    assert r.metrics["war"]["value"] == pytest.approx(0.7) and r.metrics["uar"]["value"] == pytest.approx(0.6875)


def test_score_single_fold_and_explicit_classes(tmp_path):
    csv_path = tmp_path / "p.csv"
    csv_path.write_text("sample_id,gt,response\na,1,happy\nb,2,sad\nc,2,no idea\nd,1,sad\n")
    r = _score(tmp_path / "o", "--dataset", "mine", "--classes", "sadness,happiness", "--one-based",
               csv_path=csv_path)
    # 1-based ids: 1 -> sadness (0), 2 -> happiness (1); only d ("sad", truth sadness) is right
    assert [s.truth for s in r.records] == [0, 1, 1, 0]
    assert r.metrics["war"]["value"] == pytest.approx(0.25) and r.metrics["convention"] == "single split"
    assert r.provenance["class_source"] == "explicit"


@pytest.mark.parametrize(("content", "message"), [
    ("id,label,answer\na,happy,happy\nb,joyx,sad\n", "bad.csv:3: column 'label': label 'joyx' is not one of"),
    ("id,label,answer\na,happy,happy\na,sad,sad\n", "bad.csv:3: duplicate sample id 'a' (first on line 2)"),
    ("id,answer\na,happy\n", "bad.csv: no truth column"),
    ("id,label,answer\na,7,happy\n", "bad.csv:2: column 'label': label id 7 is outside 0..6; ids look 1-based"),
    ("id,label,answer\n", "bad.csv: no data rows"),
])
def test_score_errors_name_file_line_and_value(tmp_path, capsys, content, message):
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    assert main(["score", str(bad), "--dataset", "rafdb", "--out", str(tmp_path / "o")]) == 1
    assert message in capsys.readouterr().err


def test_unknown_dataset_lists_known_ones(tmp_path, capsys):
    assert main(["score", str(FIXTURE), "--dataset", "dfew5", "--out", str(tmp_path)]) == 1
    assert "built-in class lists" in capsys.readouterr().err


def test_report_command_compares(tmp_path, capsys):
    a = _score(tmp_path / "a", "--dataset", "dfew")
    _score(tmp_path / "b", "--dataset", "dfew", "--policy", "first")
    capsys.readouterr()
    assert a.policy == "strict"
    assert main(["report", str(tmp_path / "a" / "report.json"), str(tmp_path / "b" / "report.json"),
                 "--names", "strict,first"]) == 0
    out = capsys.readouterr().out
    assert "| | strict | first |" in out and "| WAR (95% CI) | 60.00 [" in out and "| 70.00 [" in out


def test_docs_example_report_is_up_to_date(tmp_path):
    """docs/evaluation.md shows this report; regenerate with the command in that doc if this fails."""
    csv_path = DOCS / "synthetic_dfew_answers.csv"
    shipped = json.loads((DOCS / "synthetic_dfew_answers_report" / "report.json").read_text())
    assert main(["score", str(csv_path), "--dataset", "dfew", "--out", str(tmp_path)]) == 0
    fresh = json.loads((tmp_path / "report.json").read_text())
    for key in ("metrics", "pooled", "folds", "records", "confusion", "classes"):
        assert fresh[key] == shipped[key], key
