"""RAF-DB, AffectNet-7/8, the Kaggle AffectNet subset and FERPlus on tiny official-format fixtures."""

from __future__ import annotations

import fer_layouts as L
import pytest

from emollama.data.benchmarks import DatasetFormatError, DatasetLayoutError, get_benchmark
from emollama.faces.contract import AGRAttributes


def test_rafdb_splits_labels_and_agr(tmp_path):
    root = L.rafdb(tmp_path / "basic")
    train = get_benchmark("rafdb").load(root, "train")
    assert [s.id for s in train.samples] == ["train_00001", "train_00002", "train_00003"]
    # ids are 1-based in the file: 5 = Sadness, 1 = Surprise, 4 = Happiness
    assert [(s.label_index, s.label) for s in train.samples] == [(4, "sadness"), (0, "surprise"), (3, "happiness")]
    s = train.samples[0]
    assert s.media_rel == "Image/aligned/train_00001_aligned.jpg" and s.media.is_file() and not s.is_video
    assert (s.line, s.raw_label) == (1, "5")
    # line i of the fixture writes gender=race=i%3, age=i%5
    assert s.agr == AGRAttributes(age_group="0-3", gender="male", race="Caucasian")
    assert train.samples[2].agr == AGRAttributes(age_group="20-39", gender=None, race="Asian")  # 2 = unsure
    test = get_benchmark("rafdb", image="original").load(root, "test")
    assert [(s.id, s.label) for s in test.samples] == [("test_0001", "neutral"), ("test_0002", "anger")]
    assert test.samples[0].media_rel == "Image/original/test_0001.jpg"
    assert train.report.n_skipped == 0


def test_rafdb_bad_lines_are_counted_with_line_numbers(tmp_path):
    lines = [*L.RAFDB_LINES[:3], "train_00004.jpg", "train_00005.jpg 9", "train_00006.jpg 2"]
    root = L.rafdb(tmp_path / "basic", lines, missing=frozenset({"train_00006.jpg"}))
    res = get_benchmark("rafdb").load(root, "train")
    assert len(res.samples) == 3
    assert dict(res.report.skipped) == {"malformed line": 1, "unknown label": 1, "listed but missing media": 1}
    ex = res.report.examples
    assert ex["malformed line"][0].endswith("list_patition_label.txt:4: expected '<train|test>_<digits>.jpg <id>', "
                                            "got 'train_00004.jpg'")
    assert ":5: label id 9 for train_00005.jpg; RAF-DB basic ids are 1..7" in ex["unknown label"][0]
    assert ":6: train_00006.jpg is listed but" in ex["listed but missing media"][0]
    with pytest.raises(DatasetFormatError, match=r"malformed line: .*:4: .*strict mode"):
        get_benchmark("rafdb").load(root, "train", strict=True)


def test_rafdb_zero_based_copy_is_an_error(tmp_path):
    lines = ["train_00001.jpg 0", "train_00002.jpg 3", "test_0001.jpg 6"]
    root = L.rafdb(tmp_path / "basic", lines)
    with pytest.raises(DatasetFormatError, match=r"label ids run 0\.\.6 but official ids are 1\.\.7 \(1-based\)"):
        get_benchmark("rafdb").load(root, "train")


def test_rafdb_missing_folder_names_path_found_and_fix(tmp_path):
    (tmp_path / "RAF-DB" / "basic" / "EmoLabel").mkdir(parents=True)
    with pytest.raises(DatasetLayoutError) as err:
        get_benchmark("rafdb").load(tmp_path / "RAF-DB", "train")
    msg = str(err.value)
    assert "EmoLabel/list_patition_label.txt" in msg and "not found" in msg
    assert "contains ['basic/']" in msg and "Fix: pass the RAF-DB 'basic/' folder" in msg


def test_affectnet7_and_8_protocol_exclusions(tmp_path):
    root = L.affectnet(tmp_path / "an")
    r7 = get_benchmark("affectnet7").load(root, "train")
    assert [(s.label_index, s.label) for s in r7.samples] == [(0, "neutral"), (1, "happiness"), (6, "anger")]
    assert dict(r7.report.excluded) == {"code 7 (Contempt) not in affectnet7": 1,
                                        "code 8 (None) not in affectnet7": 1, "code 10 (No-Face) not in affectnet7": 1}
    r8 = get_benchmark("affectnet8").load(root, "train")
    assert [s.label for s in r8.samples][-1] == "contempt" and len(r8.samples) == 4
    assert r8.samples[0].media_rel == "Manually_Annotated_Images/0/img0.jpg"
    val = get_benchmark("affectnet8").load(root, "val")
    assert [s.label for s in val.samples] == ["surprise", "contempt"]
    assert "label ids 0..10 (official 0..10)" in next(iter(r8.report.files.values()))


def test_affectnet_malformed_unknown_missing(tmp_path):
    rows = [L.affectnet_row("0/a.jpg", 0), '0/b.jpg,1,2,3,4,"1;2",x,0,0', L.affectnet_row("0/c.jpg", 11),
            L.affectnet_row("0/d.jpg", 2), "0/e.jpg,1,2"]
    root = L.affectnet(tmp_path / "an", rows, missing=frozenset({"0/d.jpg"}))
    res = get_benchmark("affectnet8").load(root, "train")
    assert [s.id for s in res.samples] == ["0/a.jpg"]
    assert dict(res.report.skipped) == {"malformed line": 2, "unknown label": 1, "listed but missing media": 1}
    assert "training.csv:3: cannot read row" in res.report.examples["malformed line"][0]
    assert "training.csv:6: cannot read row: 3 fields, header has 9" in res.report.examples["malformed line"][1]


def test_affectnet_rejects_kaggle_csv(tmp_path):
    root = tmp_path / "an"
    L.text(root / "Manually_Annotated_file_lists" / "training.csv", ["image,emotion", "a.jpg,1"])
    (root / "Manually_Annotated_Images").mkdir()
    with pytest.raises(DatasetFormatError, match=r"missing \['subDirectory_filePath', 'expression'\]"):
        get_benchmark("affectnet8").load(root, "train")


def test_affectnet_kaggle_is_one_based_and_separate(tmp_path):
    root = L.affectnet_kaggle(tmp_path / "kaggle")
    res = get_benchmark("affectnet_kaggle8").load(root, "train")
    assert [(s.label_index, s.label) for s in res.samples] == [(0, "neutral"), (7, "contempt"), (1, "happiness")]
    zero = L.affectnet_kaggle(tmp_path / "k0", ["train/a.jpg,0", "train/b.jpg,7"])
    with pytest.raises(DatasetFormatError, match=r"ids run 0\.\.7 but official ids are 1\.\.8"):
        get_benchmark("affectnet_kaggle8").load(zero, "train")
    with pytest.raises(DatasetLayoutError, match="Manually_Annotated_file_lists"):
        get_benchmark("affectnet8").load(root, "train")


@pytest.mark.parametrize("layout", ["label_csv", "fer2013new"])
def test_ferplus_majority_vote(tmp_path, layout):
    root = L.ferplus(tmp_path / "ferplus", layout=layout)
    res = get_benchmark("ferplus").load(root, "train")
    assert [(s.id, s.label) for s in res.samples] == [("fer0000000", "neutral"), ("fer0000001", "happiness"),
                                                      ("fer0000004", "contempt")]
    assert dict(res.report.excluded) == {
        "no clear majority (top class has at most half the votes; includes ties)": 1, "majority is NF": 1}
    assert res.samples[0].raw_label == "6,0,1,1,0,0,0,0,2,0"
    if layout == "fer2013new":  # the PublicTest row with an empty name is an exclusion
        assert dict(get_benchmark("ferplus").load(root, "valid").report.excluded) == {
            "no image name (removed by FERPlus)": 1}


def test_ferplus_bad_rows_and_missing_images(tmp_path):
    rows = [*L.FERPLUS_ROWS[:2], ("fer0000009.png", "1,2,3"), ("fer0000010.png", "0,9,0,0,0,0,0,0,0,1")]
    root = L.ferplus(tmp_path / "f", rows, missing=frozenset({"fer0000010.png"}))
    res = get_benchmark("ferplus").load(root, "train")
    assert len(res.samples) == 2
    assert dict(res.report.skipped) == {"malformed line": 1, "listed but missing media": 1}
    assert "label.csv:3: expected image name + 10 vote counts" in res.report.examples["malformed line"][0]


def test_shared_label_file_bad_line_counts_once_across_splits(tmp_path):
    from emollama.data.benchmarks import SkipReport

    root = L.rafdb(tmp_path / "basic", [*L.RAFDB_LINES, "garbage"])
    total = SkipReport()
    for split in ("train", "test"):
        res = get_benchmark("rafdb").load(root, split)
        assert res.report.skipped["malformed line"] == 1  # each split's own report shows the file's bad line
        total.merge(res.report)
    assert total.skipped["malformed line"] == 1 and len(total.examples["malformed line"]) == 1
