"""Report: JSON round trip, Markdown/CSV/PNG outputs, fold-mean headline and side-by-side comparison."""

from __future__ import annotations

import csv
import json

import pytest

from emollama.evaluation.report import Report, SampleRecord, build_report, compare

CLASSES = ["anger", "happiness", "neutral"]


def _records(folds: bool = True) -> list[SampleRecord]:
    rows = [  # (truth, pred, status)
        (0, 0, "ok"), (0, 1, "ok"), (1, 1, "ok"), (2, -1, "ambiguous"),
        (1, 1, "ok"), (2, 2, "ok"), (0, -1, "empty"), (2, 2, "ok"),
    ]
    return [SampleRecord(id=f"x{i}", truth=t, answer=f"answer {i} | with pipe", pred=p, status=s,
                         matched=None if p < 0 else CLASSES[p], fold=str(1 + i // 4) if folds else None,
                         groups={"gender": "f" if i % 2 else "m"})
            for i, (t, p, s) in enumerate(rows)]


@pytest.fixture
def report() -> Report:
    return build_report(dataset="toy", classes=CLASSES, policy="strict", records=_records(), n_boot=50, seed=1,
                        provenance={"prompt_template": "category/v1", "prompt_seed": 3})


def test_fold_mean_headline_and_pooled(report):
    # fold 1: 2/4 right; fold 2: 3/4 right -> fold mean 0.625 == pooled 5/8 for WAR (equal fold sizes)
    assert report.metrics["war"]["value"] == pytest.approx(0.625)
    assert report.pooled["war"] == pytest.approx(0.625)
    assert report.metrics["convention"].startswith("fold_mean over 2 folds (1, 2)")
    assert list(report.folds) == ["1", "2"]
    lo, hi = report.metrics["war"]["ci"]
    assert lo <= 0.625 <= hi
    assert [r.id for r in report.unparseable] == ["x3", "x6"]
    assert report.confusion[2][3] == 1 and report.confusion[0][3] == 1  # the "none" column
    assert report.provenance["prompt_template"] == "category/v1" and report.provenance["bootstrap_seed"] == 1


def test_single_split_has_no_pooled_section():
    r = build_report(dataset="toy", classes=CLASSES, policy="first", records=_records(folds=False), n_boot=20)
    assert r.pooled is None and r.folds is None and r.metrics["convention"] == "single split"


def test_mixed_fold_presence_is_an_error():
    recs = _records()
    recs[0].fold = None
    with pytest.raises(ValueError, match="'x0' has no fold"):
        build_report(dataset="toy", classes=CLASSES, policy="strict", records=recs, n_boot=0)


def test_ok_status_without_prediction_is_an_error():
    recs = _records()
    recs[3].status = "ok"
    with pytest.raises(ValueError, match="status 'ok' but no prediction"):
        build_report(dataset="toy", classes=CLASSES, policy="strict", records=recs, n_boot=0)


def test_json_round_trip(report, tmp_path):
    path = report.save_json(tmp_path / "r.json")
    loaded = Report.load_json(path)
    assert loaded == report
    raw = json.loads(path.read_text())
    assert raw["unparseable"] == {"count": 2, "ids": ["x3", "x6"], "by_status": {"ambiguous": 1, "empty": 1, "ok": 6}}
    assert "NaN" not in path.read_text()


def test_load_rejects_other_json(tmp_path):
    (tmp_path / "x.json").write_text('{"format_version": "something-else"}')
    with pytest.raises(ValueError, match="is not 'emollama-report/1'"):
        Report.load_json(tmp_path / "x.json")


def test_save_writes_png(report, tmp_path):
    pytest.importorskip("matplotlib")
    paths = report.save(tmp_path / "out")
    assert sorted(paths) == ["csv", "json", "md", "png"]
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths["png"].stat().st_size > 5000


def test_save_writes_markdown_and_csv(report, tmp_path):
    paths = report.save(tmp_path / "out")
    md = paths["md"].read_text()
    assert "| WAR | 62.50 |" in md and "pooled (not the headline)" in md and "## By gender" in md
    assert "Unparseable: **2 / 8**" in md and "answer 3 \\| with pipe" in md
    rows = list(csv.DictReader(paths["csv"].open()))
    assert len(rows) == 8 and rows[3]["status"] == "ambiguous" and rows[3]["pred_label"] == ""
    assert rows[0]["correct"] == "1" and rows[0]["gender"] == "m"


def test_compare_side_by_side(report):
    other = build_report(dataset="toy", classes=CLASSES, policy="first", records=_records()[:6], n_boot=10)
    table = compare([report, other], names=["A", "B"])
    assert table.splitlines()[0] == "| | A | B |"
    assert "| WAR (95% CI) | 62.50 [" in table
    assert "| recall: happiness |" in table
    assert "different sample sets" in table
    assert "Warning" not in compare([report, report])
