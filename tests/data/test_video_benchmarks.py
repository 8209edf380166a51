"""DFEW, FERV39k and MAFW on tiny official-format fixtures (frame folders as media)."""

from __future__ import annotations

import fer_layouts as L
import pytest

from emollama.data.benchmarks import DatasetFormatError, DatasetLayoutError, get_benchmark


def test_dfew_fold_one_based_frames(tmp_path):
    root = L.dfew(tmp_path / "DFEW")
    res = get_benchmark("dfew").load(root, "train", 1)
    assert [(s.id, s.label_index, s.label) for s in res.samples] == [
        ("00001", 0, "happiness"), ("00002", 2, "neutral"), ("00003", 6, "fear"), ("00010", 3, "anger")]
    s = res.samples[0]
    assert s.is_video and s.fold == 1 and s.media.is_dir() and s.media_rel == "Clip/clip_224x224/00001"
    assert [x.label for x in get_benchmark("dfew").load(root, "test", 1).samples] == ["sadness"]


def test_dfew_needs_a_fold_and_reports_missing_fold_file(tmp_path):
    root = L.dfew(tmp_path / "DFEW")
    with pytest.raises(ValueError, match=r"choose a fold with --fold \(one of \[1, 2, 3, 4, 5\]\)"):
        get_benchmark("dfew").load(root, "train")
    with pytest.raises(DatasetLayoutError, match=r"train\(single-labeled\)/set_2\.csv.*contains \['set_1\.csv'\]"):
        get_benchmark("dfew").load(root, "train", 2)


def test_dfew_zero_based_third_party_copy(tmp_path):
    root = L.dfew(tmp_path / "DFEW", ["video_name,label", "1,0", "2,6", "3,3"])
    with pytest.raises(DatasetFormatError, match=r"set_1\.csv: label ids run 0\.\.6 but official ids are 1\.\.7"):
        get_benchmark("dfew").load(root, "train", 1)


def test_dfew_skips_bad_rows_and_empty_frame_folders(tmp_path):
    root = L.dfew(tmp_path / "DFEW", ["video_name,label", "1,1", "abc,2", "2,8", "3,5"], missing=frozenset({"00003"}))
    (root / "Clip" / "clip_224x224" / "00003").mkdir()  # present but empty
    res = get_benchmark("dfew").load(root, "train", 1)
    assert [s.id for s in res.samples] == ["00001"]
    assert dict(res.report.skipped) == {"malformed line": 1, "unknown label": 1, "listed but missing media": 1}
    assert "set_1.csv:3:" in res.report.examples["malformed line"][0]
    assert "set_1.csv:5: clip 00003 is listed" in res.report.examples["listed but missing media"][0]


def test_dfew_duplicate_rows_are_skipped(tmp_path):
    root = L.dfew(tmp_path / "DFEW", ["video_name,label", "1,1", "1,1"])
    res = get_benchmark("dfew").load(root, "train", 1)
    assert len(res.samples) == 1 and dict(res.report.skipped) == {"duplicate id": 1}


def test_ferv39k_string_labels(tmp_path):
    root = L.ferv39k(tmp_path / "FERV39k")
    res = get_benchmark("ferv39k").load(root, "train")
    assert [(s.id, s.label) for s in res.samples] == [("Crime/Angry/0063", "anger"), ("Daily/Happy/0001", "happiness"),
                                                      ("Daily/Sad/0002", "sadness")]
    assert res.samples[0].media_rel == "2_ClipsforFaceCrop/Crime/Angry/0063"
    bad = L.ferv39k(tmp_path / "bad", ["Crime/Angry/0063 Angry", "Crime/Calm/0001 Calm", "only-one-field",
                                       "Daily/Happy/0009 Happy"], missing=frozenset({"Daily/Happy/0009"}))
    res = get_benchmark("ferv39k").load(bad, "train")
    assert dict(res.report.skipped) == {"unknown label": 1, "malformed line": 1, "listed but missing media": 1}
    assert "train_All.csv:2: label 'Calm' not in" in res.report.examples["unknown label"][0]


def test_ferv39k_numeric_labels_are_rejected(tmp_path):
    root = L.ferv39k(tmp_path / "F", ["Crime/Angry/0063 3"])
    with pytest.raises(DatasetFormatError, match=r"train_All\.csv:1: numeric label '3'; official files use strings"):
        get_benchmark("ferv39k").load(root, "train")


def test_mafw_single_label_folds(tmp_path):
    root = L.mafw(tmp_path / "MAFW")
    res = get_benchmark("mafw").load(root, "train", 1)
    assert [(s.id, s.label_index, s.label) for s in res.samples] == [
        ("00001", 0, "anger"), ("00002", 9, "helplessness"), ("00003", 10, "disappointment")]
    assert res.samples[0].media_rel == "data/faces/00001" and res.samples[0].fold == 1
    assert [s.label for s in get_benchmark("mafw").load(root, "test", 1).samples] == ["contempt"]
    with pytest.raises(DatasetLayoutError, match=r"set_3/train\.txt"):
        get_benchmark("mafw").load(root, "train", 3)


def test_mafw_unknown_and_compound_labels(tmp_path):
    root = L.mafw(tmp_path / "MAFW", ["00001.mp4 anger", "00002.mp4 anger,fear", "00003.mp4 boredom"])
    res = get_benchmark("mafw").load(root, "train", 1)
    assert len(res.samples) == 1 and res.report.skipped["unknown label"] == 2
    assert "not the single-label protocol" in res.report.examples["unknown label"][0]


def test_mafw_media_option_and_missing_media_folder(tmp_path):
    root = L.mafw(tmp_path / "MAFW")
    with pytest.raises(DatasetLayoutError, match=r"data/clips.*Fix: .*--opt media=faces\|frames\|clips"):
        get_benchmark("mafw", media="clips").load(root, "train", 1)
    with pytest.raises(KeyError, match=r"unknown option\(s\) \['frames'\]; available: \['media'\]"):
        get_benchmark("mafw", frames="x")


def test_mafw_numeric_labels_are_rejected(tmp_path):
    root = L.mafw(tmp_path / "M", ["00001.mp4 0"])
    with pytest.raises(DatasetFormatError, match=r"train\.txt:1: numeric label '0'"):
        get_benchmark("mafw").load(root, "train", 1)


def test_dfew_original_clips_option(tmp_path):
    root = L.dfew(tmp_path / "DFEW", ["video_name,label", "1,1", "2,2"])
    (root / "Clip" / "original").mkdir(parents=True)
    (root / "Clip" / "original" / "00001.mp4").write_bytes(b"\x00")
    res = get_benchmark("dfew", media="original").load(root, "train", 1)
    assert [s.media_rel for s in res.samples] == ["Clip/original/00001.mp4"]
    assert dict(res.report.skipped) == {"listed but missing media": 1}
