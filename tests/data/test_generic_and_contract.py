"""Generic csv/folder adapters, and invariants every registered adapter must satisfy."""

from __future__ import annotations

import fer_layouts as L
import pytest

from emollama.constants import CANONICAL_EMOTIONS
from emollama.data.benchmarks import BENCHMARKS, DatasetLayoutError, get_benchmark, to_canonical


@pytest.mark.parametrize("name", BENCHMARKS.names())
def test_adapter_declaration(name):
    b = get_benchmark(name)
    info = b.info()
    assert info.name == name and b.modality in ("image", "video", "mixed")
    assert len(info.classes) == len(info.canonical) == len(set(info.canonical))
    assert all(c in CANONICAL_EMOTIONS for c in info.canonical)
    assert all(to_canonical(c) == k for c, k in zip(info.classes, info.canonical, strict=True))
    assert not info.splits or info.test_split in info.splits


@pytest.mark.parametrize("name", BENCHMARKS.names())
def test_missing_root_is_a_clear_error(name, tmp_path):
    with pytest.raises(DatasetLayoutError, match="is not a directory"):
        get_benchmark(name).load(tmp_path / "nope", "train", 1)


def test_official_orders_match_datasets_md():
    assert get_benchmark("rafdb").info().canonical == ("surprise", "fear", "disgust", "happiness", "sadness", "anger",
                                                       "neutral")
    assert get_benchmark("dfew").info().classes == ("Happy", "Sad", "Neutral", "Angry", "Surprise", "Disgust", "Fear")
    assert get_benchmark("ferplus").info().canonical[:3] == ("neutral", "happiness", "surprise")
    assert get_benchmark("mafw").info().canonical[7:] == ("contempt", "anxiety", "helplessness", "disappointment")
    assert get_benchmark("affectnet8").info().test_split == "val"


def test_unknown_benchmark_suggests_a_name():
    with pytest.raises(KeyError, match="did you mean 'ferplus'"):
        get_benchmark("ferplsu")


def test_csv_adapter_synonyms_and_skips(tmp_path):
    root = tmp_path / "mine"
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        L.image(root / "imgs" / name)
    L.frames(root / "clips" / "d")
    L.text(root / "train.csv", ["path,label", "imgs/a.jpg,happy", "imgs/b.jpg,Angry", "clips/d,sad",
                                "imgs/c.jpg,bored", "imgs/zz.jpg,fear", "just-one-field"])
    res = get_benchmark("csv").load(root, "train")
    assert res.info.canonical == ("anger", "fear", "happiness", "sadness")  # canonical order of labels found
    assert [(s.id, s.label, s.is_video) for s in res.samples] == [
        ("imgs/a.jpg", "happiness", False), ("imgs/b.jpg", "anger", False), ("clips/d", "sadness", True)]
    assert dict(res.report.skipped) == {"unknown label": 1, "listed but missing media": 1, "malformed line": 1}
    assert "train.csv:7: expected 'path,label'" in res.report.examples["malformed line"][0]


def test_csv_adapter_classes_txt_sets_order_and_numeric_labels(tmp_path):
    root = tmp_path / "mine"
    L.image(root / "a.jpg")
    L.image(root / "b.jpg")
    L.text(root / "classes.txt", ["neutral", "joy", "surprised"])
    L.text(root / "test.csv", ["a.jpg,1", "b.jpg,surprised"])
    res = get_benchmark("csv").load(root, "test")
    assert res.info.classes == ("neutral", "joy", "surprised")
    assert [(s.label_index, s.label) for s in res.samples] == [(1, "happiness"), (2, "surprise")]


def test_folder_adapter(tmp_path):
    root = tmp_path / "f"
    L.image(root / "train" / "happy" / "1.jpg")
    L.image(root / "train" / "Sad" / "2.png")
    L.image(root / "train" / "weird" / "3.jpg")
    L.text(root / "train" / "happy" / "notes.txt", ["ignored"])
    L.image(root / "test" / "neutral" / "4.jpg")
    b = get_benchmark("folder")
    assert b.info(root).splits == ("train", "test") and b.info(root).canonical == ("happiness", "neutral", "sadness")
    res = b.load(root, "train")
    assert [(s.id, s.label) for s in res.samples] == [("train/Sad/2.png", "sadness"),
                                                      ("train/happy/1.jpg", "happiness")]
    assert dict(res.report.skipped) == {"unknown label": 1}
    flat = tmp_path / "flat"
    L.image(flat / "anger" / "x.jpg")
    assert [s.split for s in b.load(flat, "all").samples] == ["all"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetLayoutError, match=r"split folders .*contains \[\] \(empty\).*Fix: lay out"):
        b.load(tmp_path / "empty", "train")


@pytest.mark.parametrize(("name", "write", "remove", "split", "fold", "expect"), [
    ("rafdb", L.rafdb, "Image/aligned", "train", None, "expected the aligned images directory"),
    ("affectnet8", L.affectnet, "Manually_Annotated_Images", "train", None, "expected the images directory"),
    ("affectnet_kaggle8", L.affectnet_kaggle, "valid-sample-affectnet.csv", "valid", None, "--opt valid_csv="),
    ("ferplus", L.ferplus, "FER2013Train", "train", None, "expected the train images directory"),
    ("dfew", L.dfew, "Clip/clip_224x224", "train", 1, "expected the clip_224x224 media directory"),
    ("ferv39k", L.ferv39k, "2_ClipsforFaceCrop", "train", None, "expected the face-cropped frames directory"),
    ("mafw", L.mafw, "data/faces", "train", 1, "expected the faces media directory"),
])
def test_missing_folder_error_per_adapter(tmp_path, name, write, remove, split, fold, expect):
    import shutil

    root = write(tmp_path / name)
    target = root / remove
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(DatasetLayoutError) as err:
        get_benchmark(name).load(root, split, fold)
    msg = str(err.value)
    assert expect in msg and str(target) in msg and "contains [" in msg and "Fix:" in msg
