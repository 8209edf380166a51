"""FER2013 adapter: both layouts on tiny fixtures, errors naming the line, and the real shared folder."""

from __future__ import annotations

import tarfile

import numpy as np
import pytest
from PIL import Image

from emollama.data.benchmarks import DatasetFormatError, DatasetLayoutError, get_benchmark
from emollama.data.benchmarks.fer2013 import CANONICAL, FOLDER_NAMES


def _img(path, value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((48, 48), value, np.uint8), "L").save(path)


def _folders(root):
    _img(root / "train" / "angry" / "Training_1.jpg")
    _img(root / "train" / "happy" / "Training_2.jpg")
    _img(root / "train" / "surprise" / "Training_3.jpg")
    _img(root / "test" / "sad" / "PublicTest_4.jpg")
    _img(root / "test" / "neutral" / "PrivateTest_5.jpg")
    _img(root / "test" / "disgust" / "PublicTest_6.jpg")
    return root


def test_image_folder_splits_by_file_prefix(tmp_path):
    root = _folders(tmp_path / "fer2013")
    b = get_benchmark("fer2013")
    train = b.load(root, "train").samples
    assert [(s.id, s.label) for s in train] == [("angry/Training_1", "anger"), ("happy/Training_2", "happiness"),
                                                ("surprise/Training_3", "surprise")]
    assert [s.id for s in b.load(root, "publictest").samples] == ["disgust/PublicTest_6", "sad/PublicTest_4"]
    assert [(s.id, s.label) for s in b.load(root, "privatetest").samples] == [("neutral/PrivateTest_5", "neutral")]
    assert len(b.load(root, "test").samples) == 3
    # official order (fer2013.csv ids): Angry Disgust Fear Happy Sad Surprise Neutral
    assert [s.label_index for s in train] == [0, 3, 5]
    assert b.info().canonical == CANONICAL and len(FOLDER_NAMES) == 7


def test_unknown_class_folder_is_counted_and_missing_folder_named(tmp_path):
    root = _folders(tmp_path / "fer2013")
    _img(root / "train" / "contempt" / "Training_9.jpg")
    res = get_benchmark("fer2013").load(root, "train")
    assert len(res.samples) == 3 and res.report.skipped["unknown label"] == 1
    assert "contempt" in res.report.examples["unknown label"][0]
    with pytest.raises(DatasetLayoutError, match="train/"):
        get_benchmark("fer2013").load(tmp_path / "fer2013" / "test", "train")


def test_archive_is_unpacked_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOLLAMA_CACHE", str(tmp_path / "cache"))
    _folders(tmp_path / "src" / "fer2013")
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    with tarfile.open(shelf / "fer2013.tar.gz", "w:gz") as tf:
        tf.add(tmp_path / "src" / "fer2013", arcname="fer2013")
    a = get_benchmark("fer2013").load(shelf, "train").samples
    b = get_benchmark("fer2013").load(shelf, "train").samples
    assert [s.media for s in a] == [s.media for s in b] and str(tmp_path / "cache") in str(a[0].media)
    assert len(list((tmp_path / "cache" / "datasets").iterdir())) == 1


def test_original_csv_layout_with_bad_lines(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOLLAMA_CACHE", str(tmp_path / "cache"))
    px = " ".join(["7"] * 2304)
    rows = ["emotion,pixels,Usage", f"3,{px},Training", f"6,{px},PublicTest", f"9,{px},Training",
            "0,1 2 3,Training", f"1,{px},PrivateTest", f"2,{px},Elsewhere"]
    (tmp_path / "fer2013.csv").write_text("\n".join(rows) + "\n")
    b = get_benchmark("fer2013")
    res = b.load(tmp_path, "train")
    assert [(s.label, s.line) for s in res.samples] == [("happiness", 2)]
    assert np.asarray(Image.open(res.samples[0].media)).shape == (48, 48)
    assert res.report.skipped == {"unknown label": 1, "malformed line": 2}
    assert any("fer2013.csv:4" in e and "emotion '9'" in e for e in res.report.examples["unknown label"])
    assert any("fer2013.csv:5" in e and "2304" in e for e in res.report.examples["malformed line"])
    assert [s.label for s in b.load(tmp_path, "test").samples] == ["neutral", "disgust"]
    with pytest.raises(DatasetFormatError, match="fer2013.csv:4"):
        b.load(tmp_path, "train", strict=True)


def test_csv_without_the_official_columns_is_refused(tmp_path):
    (tmp_path / "fer2013.csv").write_text("label,image\n1,x\n")
    with pytest.raises(DatasetFormatError, match="emotion"):
        get_benchmark("fer2013").load(tmp_path, "train")


def test_real_fer2013_counts(fer2013_root):
    b = get_benchmark("fer2013")
    train = b.load(fer2013_root, "train")
    public = b.load(fer2013_root, "publictest")
    # 28,709 files; two file names sit in two class folders each (a known FER2013 quirk): keyed by folder and
    # name, all of them are samples
    assert len(train.samples) == 28709 and "duplicate id" not in train.report.skipped
    assert len(public.samples) == 3589
    counts = dict(zip(*np.unique([s.label for s in public.samples], return_counts=True), strict=True))
    assert counts == {"anger": 467, "disgust": 56, "fear": 496, "happiness": 895, "neutral": 607,
                      "sadness": 653, "surprise": 415}


def test_a_file_that_is_not_an_archive_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOLLAMA_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "fer2013.tar.gz"
    bad.write_bytes(b"not a tar")
    with pytest.raises(DatasetLayoutError, match="not a readable .tar.gz"):
        get_benchmark("fer2013").load(tmp_path, "train")
    assert not any((tmp_path / "cache" / "datasets").glob("*.tmp*"))  # nothing half-unpacked is left behind


def test_same_file_name_in_two_class_folders_is_two_samples(tmp_path):
    """The Kaggle folder release reuses two names (e.g. Training_8475486) across class folders: both images count."""
    root = _folders(tmp_path / "fer2013")
    _img(root / "train" / "sad" / "Training_1.jpg", 200)
    res = get_benchmark("fer2013").load(root, "train")
    assert sorted(s.id for s in res.samples) == ["angry/Training_1", "happy/Training_2", "sad/Training_1",
                                                 "surprise/Training_3"]
    assert "duplicate id" not in res.report.skipped


def test_a_file_without_a_split_prefix_is_counted_not_dropped(tmp_path):
    root = _folders(tmp_path / "fer2013")
    _img(root / "train" / "happy" / "my_face.jpg")
    _img(root / "train" / "sad" / "PublicTest_7.jpg")  # a test image in train/: misplaced
    (root / "train" / "happy" / "Thumbs.db").write_bytes(b"\0")  # not an image: ignored, even under strict
    res = get_benchmark("fer2013").load(root, "train")
    reason = "file name without its folder's split prefix"
    assert len(res.samples) == 3 and res.report.skipped == {reason: 2}
    assert any("my_face.jpg" in e for e in res.report.examples[reason])
    # the shared test/ folder holds both test splits: another split's files are the protocol, not skips
    assert get_benchmark("fer2013").load(root, "publictest").report.skipped == {}
    _img(root / "test" / "sad" / "Training_8.jpg")
    assert get_benchmark("fer2013").load(root, "publictest").report.skipped == {reason: 1}


def test_a_cut_archive_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOLLAMA_CACHE", str(tmp_path / "cache"))
    _folders(tmp_path / "src" / "fer2013")
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    whole = tmp_path / "whole.tar.gz"
    with tarfile.open(whole, "w:gz") as tf:
        tf.add(tmp_path / "src" / "fer2013", arcname="fer2013")
    data = whole.read_bytes()
    (shelf / "fer2013.tar.gz").write_bytes(data[: len(data) * 2 // 3])  # an unfinished download
    with pytest.raises(DatasetLayoutError, match="not a readable"):
        get_benchmark("fer2013").load(shelf, "train")
    assert list((tmp_path / "cache" / "datasets").iterdir()) == []
    (shelf / "fer2013.tar.gz").write_bytes(data)  # the finished download, a different size: unpacked now
    assert len(get_benchmark("fer2013").load(shelf, "train").samples) == 3
