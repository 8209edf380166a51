"""emollama.api: Analyzer / EmoLlama predictions, records in the published schema, limits and errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from emollama.api import Analyzer, EmoLlama, MediaLimitError, MediaLimits, Prediction
from emollama.media.decode import MediaError

from .conftest import png_bytes

SCHEMA = Path(__file__).parents[2] / "docs" / "analyze.schema.json"


def test_public_names_are_lazy_exports():
    import emollama

    assert emollama.Analyzer is Analyzer and emollama.EmoLlama is EmoLlama


def test_synthetic_prediction_is_frozen_and_json_safe():
    preds = Analyzer("synthetic").predict(image=png_bytes())
    assert len(preds) == 1
    p = preds[0]
    assert isinstance(p, Prediction) and p.text == p.explanation and p.model == "emollama-analyzer"
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.label = "x"
    with pytest.raises(TypeError):
        p.probabilities["anger"] = 1.0  # read-only mapping
    d = json.loads(json.dumps(p.to_dict()))
    assert d["box"] == list(p.box) and d["record"]["kind"] == "face"


def test_inputs_and_errors():
    a = Analyzer("synthetic", limits=MediaLimits(max_pixels=1000))
    with pytest.raises(ValueError, match="exactly one"):
        a.predict()
    with pytest.raises(MediaError, match="not a recognised image format"):
        a.predict(image=b"this is not an image")
    with pytest.raises(MediaLimitError, match="too large"):
        a.predict(image=png_bytes(64, 48))
    assert a.predict(image=np.zeros((20, 20, 3), np.uint8)) == []  # uniform: the synthetic backend finds no face


@pytest.mark.media
def test_analyzer_on_astronaut_matches_analyze_schema(real_analyzer, astronaut_path):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SCHEMA.read_text())
    preds = real_analyzer.predict(image=astronaut_path, question="ignored without a model")
    assert [p.label for p in preds] == ["happiness"]
    p = preds[0]
    assert p.au["AU12"] > 0.5 and "AU12" in p.explanation and p.agr and p.track_id is None
    jsonschema.validate(dict(p.record), schema)
    recs = real_analyzer.analyze(image=astronaut_path.read_bytes(), source="upload.png")
    for r in recs:
        jsonschema.validate(r, schema)
    assert recs[0]["source"] == "upload.png" and recs[0]["item_key"].startswith("sha256:")


@pytest.mark.media
def test_video_tracks_and_limits(real_analyzer, astronaut_path, tmp_path):
    av = pytest.importorskip("av")
    from PIL import Image

    frame = np.asarray(Image.open(astronaut_path).convert("RGB").resize((256, 256)))
    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = 256, 256, "yuv420p"
        for _ in range(20):  # 2 s
            for pkt in s.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    preds = real_analyzer.predict(video=path.read_bytes())
    assert [(p.media, p.track_id, p.label) for p in preds] == [("video", 0, "happiness")]
    assert preds[0].record["frames_sampled"] == 4  # fps:2 over 2 s
    short = Analyzer(real_analyzer.backend, limits=MediaLimits(max_video_s=1.0))
    with pytest.raises(MediaLimitError, match="video too long"):
        short.predict(video=path)
    few = Analyzer(real_analyzer.backend, limits=MediaLimits(max_video_frames=2))
    assert few.predict(video=path)[0].record["frames_sampled"] == 2  # thinned to uniform:2
    with pytest.raises(MediaError, match="unreadable video"):
        real_analyzer.predict(video=b"\x00" * 1000)


@pytest.mark.media
def test_emollama_uses_analyzer_priors_and_agr(real_analyzer, tiny_mp_dir, astronaut_path):
    from emollama.faces.decide import LABELS

    model = EmoLlama.from_pretrained(tiny_mp_dir, analyzer=real_analyzer, max_new_tokens=4)
    assert model.name == f"emollama-mllm:{tiny_mp_dir.name}"
    preds = model.predict(image=astronaut_path, question="How does she feel?", faces="largest")
    assert len(preds) == 1
    p = preds[0]
    assert p.label in LABELS and abs(sum(p.probabilities.values()) - 1) < 1e-3
    assert isinstance(p.text, str) and p.explanation.startswith("The corners")  # random LM text, analyzer explanation
    assert p.agr == "The person appears to be an adult woman."
    again = model.predict(image=astronaut_path, question="How does she feel?",
                          history=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}])
    assert again[0].label in LABELS


def test_emollama_rejects_a_face_layout_the_analyzer_cannot_fill():
    from emollama.model.build import build_tiny

    with pytest.raises(ValueError, match="mediapipe478"):
        EmoLlama(*build_tiny(), analyzer=Analyzer("synthetic"))


class _TwoFaces:
    """The synthetic backend's face, plus a second one beside it: two faces per image or frame."""

    def __init__(self) -> None:
        from emollama.analyze.synthetic import SyntheticAnalyzer

        self.inner = SyntheticAnalyzer()

    def analyze_image(self, rgb):
        from emollama.faces.types import FaceBox

        faces = self.inner.analyze_image(rgb)
        if faces:
            b = faces[0].box
            faces.append(dataclasses.replace(faces[0], box=FaceBox(0, 0, b.x0 / 2, b.y0 / 2, 0.9, "synthetic")))
        return faces

    def analyze_frame(self, rgb, timestamp_ms, frame_index=None):
        faces = self.analyze_image(rgb)
        for f in faces:
            f.frame_index, f.timestamp_ms = frame_index, int(timestamp_ms)
        return faces


def _clip(path: Path, n: int = 6) -> Path:
    av = pytest.importorskip("av")
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=5)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        for i in range(n):
            arr = (np.random.default_rng(i).random((48, 64, 3)) * 255).astype(np.uint8)
            for pkt in s.encode(av.VideoFrame.from_ndarray(arr, format="rgb24")):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


@pytest.mark.parametrize("media", ["image", "video"])
@pytest.mark.parametrize("label_from", ["question", "category"])
def test_emollama_predict_prefills_per_face(media, label_from, tmp_path):
    """label_from='question': scoring and generation share one prefill (one tower pass + one LM prefill per face);
    'category' (default) adds exactly one prefill per face, for the closed-set question the label is scored on."""
    from tests.model.test_inference import count_passes

    from emollama.model.build import build_tiny

    from .conftest import MP_TINY

    model, processor = build_tiny(MP_TINY)
    llm = EmoLlama(model, processor, Analyzer(_TwoFaces(), video_sampling="all"), max_new_tokens=3)
    kw = {"image": png_bytes()} if media == "image" else {"video": _clip(tmp_path / "clip.mp4")}
    counts, hooks = count_passes(model)
    try:
        preds = llm.predict(**kw, label_from=label_from)
    finally:
        for h in hooks:
            h.remove()
    assert [p.media for p in preds] == [media, media]
    if media == "video":
        assert [p.track_id for p in preds] == [0, 1] and preds[0].record["frames_with_face"] == 6
    per_pass = 1 + model.config.face_config.use_crop_features  # the media frames, then the face crops
    prefills = 1 if label_from == "question" else 2
    assert dict(counts) == {"tower": 2 * per_pass * prefills, "prefill": 2 * prefills}
    for p in preds:
        assert p.label in p.probabilities and abs(sum(p.probabilities.values()) - 1) < 1e-3 and p.model == llm.name


def test_emollama_label_is_scored_on_the_category_question():
    """The default label equals `score_classes` after FERID's closed-set question (what `emollama eval` measures);
    label_from='question' equals the scores after the user's own question; the text is the same either way."""
    import torch

    from emollama.api.mllm import category_question, conversation
    from emollama.evaluation.scoring import score_classes
    from emollama.faces.decide import LABELS
    from emollama.model.build import build_tiny
    from emollama.model.inference import answer

    from .conftest import MP_TINY

    model, processor = build_tiny(MP_TINY)
    llm = EmoLlama(model, processor, Analyzer("synthetic"), max_new_tokens=3)
    q = category_question(False)
    assert q.startswith("What is the facial expression of the person in the image?")
    assert "{anger, disgust, fear, happiness, sadness, surprise, neutral}" in q
    img = png_bytes()
    cat = llm.predict(image=img, question="How does she feel?")[0]
    own = llm.predict(image=img, question="How does she feel?", label_from="question")[0]
    a = llm.analyzer.analysis(img, None, keep_frames=True)
    (_, face), = a.select("all")
    media, prior = llm._inputs(a, face)
    agr = face.attributes.to_agr() if face.attributes is not None else None
    with torch.inference_mode():
        want_cat = score_classes(model, processor, conversation("image", q, []), list(LABELS), media=[media],
                                 faces=[prior], agr=agr)
        want_own = answer(model, processor, conversation("image", "How does she feel?", []), list(LABELS),
                          media=[media], faces=[prior], agr=agr, max_new_tokens=3)
    for pred, want in ((cat, want_cat), (own, want_own.scores)):
        got = torch.tensor([pred.probabilities[k] for k in LABELS])
        assert torch.allclose(got, want.probs.float(), atol=2e-4), (got, want.probs)
        assert pred.label == LABELS[want.index]
    assert cat.text == own.text == want_own.text
    assert not torch.allclose(want_cat.probs, want_own.scores.probs, atol=1e-3)  # the two questions differ
    # asking the category question itself: one prompt, one prefill, the same scores
    from tests.model.test_inference import count_passes

    counts, hooks = count_passes(model)
    try:
        same = llm.predict(image=img, question=q)[0]
    finally:
        for h in hooks:
            h.remove()
    assert counts["prefill"] == 1 and same.label == cat.label
    assert same.probabilities == pytest.approx(dict(cat.probabilities), abs=2e-4)
    with pytest.raises(ValueError, match="label_from='why'.*category, question"):
        llm.predict(image=img, label_from="why")
