"""`emollama predict` on a saved tiny model directory (synthetic face backend: no face stack needed)."""

from __future__ import annotations

import json

import pytest

from emollama.cli.__main__ import main
from emollama.data.synthetic import draw_face, synthetic_video
from emollama.model.build import build_tiny
from emollama.model.checkpoint import save_pretrained

MEDIAPIPE_SIZED = ["face_config.landmark_layout=mediapipe478", "face_config.num_landmarks=478",
                   "face_config.num_blendshapes=52"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "tiny478"
    save_pretrained(*build_tiny(MEDIAPIPE_SIZED), path)
    return path


def test_predict_photo_json(model_dir, tmp_path, capsys):
    img = tmp_path / "face.png"
    draw_face("happiness", 64)[0].save(img)
    assert main(["predict", str(img), "--model", str(model_dir), "--backend", "synthetic", "--max-new-tokens", "3",
                 "--json"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert len(rows) == 1 and rows[0]["label"] in rows[0]["probabilities"]
    assert abs(sum(rows[0]["probabilities"].values()) - 1) < 1e-3
    # --label-from question scores after the user's question: other probabilities, the same generated text
    assert main(["predict", str(img), "--model", str(model_dir), "--backend", "synthetic", "--max-new-tokens", "3",
                 "--json", "--label-from", "question"]) == 0
    own = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert own[0]["text"] == rows[0]["text"] and own[0]["probabilities"] != rows[0]["probabilities"]


def test_predict_video_text(model_dir, tmp_path, capsys):
    import av

    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width = s.height = 64
        s.pix_fmt = "yuv420p"
        for f in synthetic_video("surprise", 8, 64):
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    assert main(["predict", str(path), "--model", str(model_dir), "--backend", "synthetic", "--max-new-tokens",
                 "2", "--video-sampling", "uniform:4"]) == 0
    assert "track 0 at" in capsys.readouterr().out


def test_predict_errors(model_dir, tmp_path, capsys):
    assert main(["predict", str(tmp_path / "nope.jpg"), "--model", str(model_dir)]) == 1
    assert "no such file" in capsys.readouterr().err
    (tmp_path / "x.txt").write_text("hi")
    assert main(["predict", str(tmp_path / "x.txt"), "--model", str(model_dir)]) == 1
    assert main(["predict", str(tmp_path / "x.txt"), "--model", str(tmp_path / "missing")]) == 1
