"""`emollama analyze` hardening (issue #10): odd names, missing paths, output names, --json on resume, vanishing
files. Every case runs on the bad-input corpus of make_corpus.py with the synthetic backend."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest


def analyze(*args: str | Path) -> int:
    """`emollama analyze ARGS --backend synthetic --no-progress` in-process; returns the exit code."""
    from emollama.cli.__main__ import main

    return main(["analyze", *(str(a) for a in args), "--backend", "synthetic", "--no-progress"])


def records(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def as_text(path: Path) -> str:
    """How a path appears in records: undecodable bytes as \\xNN."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


# --- item 1: a non-UTF-8 file name never stops the batch ---------------------------------------------------------
def test_non_utf8_names_survive_records_csv_and_output_names(bad_corpus, tmp_path, capsys):
    items = [bad_corpus["non_utf8_image"], bad_corpus["non_utf8_video"], bad_corpus["utf8_image"]]
    out, ann = tmp_path / "r.jsonl", tmp_path / "ann"
    assert analyze(*items, "--out", out, "--annotate", ann) == 0
    recs = records(out)
    assert [r["source"] for r in recs] == [as_text(p) for p in items]
    assert as_text(items[0]).endswith("x_\\xe9t\\xe9.jpg") and recs[2]["source"].endswith("café.png")
    assert [r["kind"] for r in recs] == ["face", "track", "face"]
    assert "x_\\xe9t\\xe9.jpg" in capsys.readouterr().out  # the table names the file
    names = os.listdir(os.fsencode(ann))
    assert len(names) == 3 and all(n.decode("utf-8") for n in names)  # valid UTF-8 output names
    assert analyze(*items, "--out", out) == 0  # a rerun resumes instead of crashing
    assert "3 already done" in capsys.readouterr().out
    csv_out = tmp_path / "r.csv"
    assert analyze(*items, "--out", csv_out) == 0
    assert "x_\\xe9t\\xe9.jpg" in csv_out.read_text(encoding="utf-8")
    capsys.readouterr()
    assert analyze(bad_corpus["non_utf8_image"], "--out", tmp_path / "j.jsonl", "--json") == 0
    assert json.loads(capsys.readouterr().out)["source"] == as_text(items[0])


# --- item 5: every input named on the command line gets a record ------------------------------------------------
def test_missing_paths_and_symlink_loops_get_error_records(bad_corpus, tmp_path):
    named = {"missing": "file not found", "dangling": "file not found", "symlink_loop": "symlink loop",
             "self_loop": "symlink loop"}
    pattern = str(bad_corpus.root / "links" / "*.zzz")
    out = tmp_path / "r.jsonl"
    rc = analyze(bad_corpus["utf8_image"], *(bad_corpus[n] for n in named), pattern, "--out", out)
    assert rc == 3  # some inputs failed
    by_src = {r["source"]: r for r in records(out)}
    assert by_src[str(bad_corpus["utf8_image"])]["kind"] == "face"
    for name, reason in named.items():
        rec = by_src[str(bad_corpus[name])]
        assert rec["kind"] == "error" and rec["error"]["reason"] == reason and rec["error"]["fix"], name
    assert by_src[pattern]["error"]["reason"] == "no file matches the pattern"
    n = len(records(out))
    analyze(bad_corpus["utf8_image"], *(bad_corpus[n] for n in named), pattern, "--out", out)
    assert len(records(out)) == n  # resuming does not repeat them


def test_only_missing_inputs_is_a_failure_naming_them(bad_corpus, tmp_path, capsys):
    assert analyze(bad_corpus["missing"], "--out", tmp_path / "r.jsonl") != 0
    assert str(bad_corpus["missing"]) in capsys.readouterr().err


# --- item 6: --annotate / --save-crops names are unique per input and stable ------------------------------------
class TwoOrThreeFaces:
    """Synthetic faces with crops: 2, 2 then 3 faces (7 in all) for the three same-stem photos."""

    def __init__(self) -> None:
        from emollama.analyze.synthetic import SyntheticAnalyzer

        self.base, self.calls = SyntheticAnalyzer(), 0

    def analyze_image(self, rgb):
        self.calls += 1
        face = self.base.analyze_image(rgb)[0]
        face.crop = rgb[:16, :16].copy()
        return [face] * (3 if self.calls % 3 == 0 else 2)


def test_annotate_and_crop_names_are_unique_and_stable(bad_corpus, tmp_path, monkeypatch):
    import emollama.cli.analyze as cli

    monkeypatch.setattr(cli, "build_face_analyzer", lambda *a, **k: TwoOrThreeFaces())
    stems = [bad_corpus[f"same_stem_{x}"] for x in "abc"]
    listing = []
    for run in range(2):
        ann, crops = tmp_path / f"ann{run}", tmp_path / f"crops{run}"
        analyze(*stems, "--out", tmp_path / f"r{run}.jsonl", "--annotate", ann, "--save-crops", crops)
        listing.append((sorted(os.listdir(ann)), sorted(os.listdir(crops))))
    annotated, crop_files = listing[0]
    assert len(annotated) == 3 and len(crop_files) == 7
    assert all(n.startswith("face_") for n in annotated + crop_files)  # '<stem>_annotated-<tag>.jpg' ...
    assert len({n.rsplit("-", 1)[1].split(".")[0] for n in annotated}) == 3  # one tag per input
    assert listing[1] == listing[0]  # stable: the same inputs give the same names


# --- item 7: --json after a resume prints only valid JSON -------------------------------------------------------
def test_json_after_resume_of_a_torn_file(bad_corpus, tmp_path, capsys):
    out = tmp_path / "r.jsonl"
    assert analyze(bad_corpus["same_stem_a"], bad_corpus["same_stem_b"], "--out", out) == 0
    with open(out, "a", encoding="utf-8") as fh:
        fh.write('{"schema_version": 1, "kind": "face", "source": "half-writ')  # kill -9 mid-write
    capsys.readouterr()
    assert analyze(bad_corpus["same_stem_a"], bad_corpus["same_stem_b"], bad_corpus["same_stem_c"],
                   "--out", out, "--json") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(x)["source"] for x in lines] == [str(bad_corpus["same_stem_c"])]


@pytest.mark.parametrize("name", ["r.csv", "r.CSV"])
def test_json_with_a_csv_out_is_refused_before_any_work(bad_corpus, tmp_path, capsys, name):
    out = tmp_path / name
    assert analyze(bad_corpus["same_stem_a"], "--out", out, "--json") == 1
    err = capsys.readouterr().err
    assert "--json" in err and str(out.with_suffix(".jsonl")) in err and not out.exists()


# --- item 8: a video that vanishes mid-run is "file not found", like an image ------------------------------------
class DeletesOnReset:
    """Synthetic analyzer that deletes the clip when its analysis starts (after the probe, before decoding)."""

    def __init__(self, victim: Path) -> None:
        from emollama.analyze.synthetic import SyntheticAnalyzer

        self.base, self.victim = SyntheticAnalyzer(), victim

    def reset_video(self) -> None:
        self.victim.unlink()

    def analyze_image(self, rgb):
        return self.base.analyze_image(rgb)

    def analyze_frame(self, rgb, timestamp_ms, frame_index=None):
        return self.base.analyze_frame(rgb, timestamp_ms, frame_index)


@pytest.mark.parametrize("when", ["before_probe", "after_probe"])
def test_vanished_video_says_file_not_found(bad_corpus, tmp_path, when):
    from emollama.analyze.inputs import Item
    from emollama.analyze.runner import AnalyzeOptions, Runner

    clip = Path(shutil.copy(bad_corpus["clip_ok"], tmp_path / "clip.mp4"))
    photo = Path(shutil.copy(bad_corpus["utf8_image"], tmp_path / "photo.png"))
    runner = Runner(DeletesOnReset(clip), AnalyzeOptions(backend="synthetic"))
    if when == "before_probe":
        clip.unlink()
    photo.unlink()
    video_err = runner.analyze_item(Item(clip, "video"))[0]["error"]
    image_err = runner.analyze_item(Item(photo, "image"))[0]["error"]
    assert video_err["reason"] == image_err["reason"] == "file not found"
    assert video_err["fix"] == image_err["fix"] and "report" not in video_err["fix"]
