"""The per-image face cap (issue #10 item 3): a parameter everywhere, large by default, and reported when it bites.

The real group photos are in tests/faces/test_group_photos.py (media tier).
"""

from __future__ import annotations

import json

import pytest

from emollama.analyze.records import face_record
from emollama.analyze.runner import AnalyzeOptions
from emollama.cli.__main__ import main
from emollama.faces.detect import DEFAULT_MAX_FACES, DetectorConfig
from emollama.faces.types import FaceBox, FaceResult


def test_default_cap_fits_group_photos_and_is_shared():
    from emollama.api import Analyzer
    from emollama.cli.analyze import Options

    # one constant: the detector's, the records' options, the CLI's and the API's default
    assert DetectorConfig().max_faces == DEFAULT_MAX_FACES >= 32  # it was 10
    assert AnalyzeOptions().max_faces == Options(paths=["x"]).max_faces == Analyzer().max_faces == DEFAULT_MAX_FACES


def test_options_that_change_records_change_the_hash():
    # files written by the mini-Xception analyzer (hash b145ab0bd466) hold other labels: they must not resume
    # into a file of the learned model; another cap, face mode or model is another hash
    d = AnalyzeOptions().digest()
    assert d != "b145ab0bd466"
    for other in (AnalyzeOptions(max_faces=10), AnalyzeOptions(faces="detect"),
                  AnalyzeOptions(expression="mini-xception")):
        assert other.digest() != d


def test_max_faces_reaches_the_detector():  # models load lazily: nothing heavy runs here
    from emollama.analyze.runner import AnalyzeOptions, build_face_analyzer
    from emollama.api import Analyzer

    assert build_face_analyzer(AnalyzeOptions(max_faces=7)).detector.cfg.max_faces == 7
    api = Analyzer(max_faces=7)
    assert api.backend.detector.cfg.max_faces == api.options.max_faces == 7
    assert api.spawn().backend.detector.cfg.max_faces == 7
    assert Analyzer().backend.detector.cfg.max_faces == DEFAULT_MAX_FACES


def test_max_faces_flag(tmp_path, capsys):
    img = tmp_path / "blank.png"
    from PIL import Image

    Image.new("RGB", (32, 32)).save(img)
    out = tmp_path / "o.jsonl"
    with pytest.raises(SystemExit):
        main(["analyze", str(img), "--max-faces", "0", "--out", str(out)])
    assert "at least 1" in capsys.readouterr().err
    assert main(["analyze", str(img), "--backend", "synthetic", "--max-faces", "3", "--out", str(out),
                 "--no-progress"]) == 0
    assert json.loads(out.read_text())["options_hash"] == AnalyzeOptions(backend="synthetic", max_faces=3).digest()


def _face(**meta) -> FaceResult:
    return FaceResult(box=FaceBox(0, 0, 10, 10, 0.9, "fake"), probs={"neutral": 1.0}, label="neutral", meta=meta)


def test_capped_photo_records_say_so():
    plain = face_record(_face(), source="a.jpg", media="image", face_index=0, image_size=(10, 10))
    assert not {"warnings", "faces_truncated", "faces_found"} & set(plain)  # clean records are unchanged
    capped = face_record(_face(faces_found=20), source="a.jpg", media="image", face_index=0, image_size=(10, 10))
    assert capped["faces_truncated"] is True and capped["faces_found"] == 20
    assert "20 faces found" in capped["warnings"][0] and "--max-faces" in capped["warnings"][0]
