"""Real faces through the real models (MediaPipe, BlazeFace, dlib/ONNX age-gender, mini-Xception).

Needs the face stack and the asset cache: `python scripts/install_faces.py` (or `make demo`). Skipped otherwise.
The analyzer is built once per session; every test takes well under a second once it is loaded.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PIL import Image

from emollama import assets
from emollama.faces.decide import LABELS
from emollama.faces.explain import LABEL_PHRASES

pytestmark = pytest.mark.media

FIX = "run `python scripts/install_faces.py` to install the face stack and fill the asset cache"


def media(name: str) -> Image.Image:
    try:
        path = assets.resolve(name, download=False)
    except assets.AssetError:
        pytest.skip(f"media asset {name!r} is not in the cache ({assets.cache_root()}): {FIX}")
    return Image.open(path)


@pytest.fixture(scope="session")
def analyzer():
    try:
        for name in ("face_landmarker", "blazeface_full_range", "blazeface_short_range", "age_v1", "gender_v1",
                     "shape_predictor_5", "emotion_tflite"):  # fmt: skip
            assets.resolve(name, download=False)
        from emollama.faces.analyzer import Analyzer

        an = Analyzer()
        an.load()
    except (ImportError, assets.AssetError) as err:
        pytest.skip(f"face stack unavailable ({err}); {FIX}")
    yield an
    an.close()


_ts = itertools.count(1000, 40)  # VIDEO mode needs increasing timestamps across the whole session


def test_astronaut_one_happy_face(analyzer):
    faces = analyzer.analyze_image(media("astronaut"))
    assert len(faces) == 1
    f = faces[0]
    assert f.label == "happiness" and f.probs["happiness"] > 0.9
    assert f.au["AU12"] > 0.6 and f.blendshapes["mouthSmileLeft"] > 0.6
    assert "happiness" in f.explanation and "(AU" in f.explanation
    assert f.landmarks.shape == (478, 3) and len(f.blendshapes) == 52 and len(f.pose) == 3
    x0, y0, x1, y1 = f.box.xyxy
    assert 150 < x0 < x1 < 300 and 40 < y0 < y1 < 220 and 0.5 <= f.score <= 1  # her face, upper middle
    assert f.attributes.gender == "female" and 20 <= f.attributes.age <= 50
    assert f.crop.shape == (224, 224, 3)
    assert {"detect", "crop", "attributes", "expression", "decide"} <= set(f.timings)
    assert set(f.probs) == set(LABELS) and sum(f.probs.values()) == pytest.approx(1.0)


@pytest.fixture(scope="session")
def labelled(analyzer):
    out = {}
    for name in ("feat_surprise", "feat_happy", "feat_anger", "feat_disgust"):
        faces = analyzer.analyze_image(media(name))
        assert len(faces) == 1, name
        out[name] = faces[0]
    return out


def test_labelled_photos_blendshape_cues_point_the_right_way(labelled):
    sur, hap, ang = labelled["feat_surprise"], labelled["feat_happy"], labelled["feat_anger"]
    # surprise: jaw drop + inner brow raise, far above the happy face's
    assert sur.blendshapes["jawOpen"] > 0.3 and sur.blendshapes["browInnerUp"] > 0.3
    assert sur.au["AU26"] > hap.au["AU26"] + 0.2 and sur.au["AU1"] > hap.au["AU1"] + 0.2
    # happiness: smile, far above the surprise face's
    assert hap.blendshapes["mouthSmileLeft"] > 0.5 and hap.blendshapes["mouthSmileRight"] > 0.5
    assert hap.au["AU12"] > sur.au["AU12"] + 0.4
    # anger: brow lowerer, above both
    assert ang.au["AU4"] > 0.3 and ang.au["AU4"] > max(sur.au["AU4"], hap.au["AU4"])
    assert labelled["feat_disgust"].has_mesh  # 45 degree yaw still gets a mesh


def test_labelled_photos_final_labels(labelled):
    assert labelled["feat_surprise"].label == "surprise"
    assert labelled["feat_happy"].label == "happiness"
    # the anger and disgust photos: see tests/faces/test_expression_model.py::test_sample_photos (known misses)
    for f in labelled.values():
        assert f.explanation.endswith(".") and LABEL_PHRASES[f.label] in f.explanation


def test_multi_face_finds_at_least_four(analyzer):
    faces = analyzer.analyze_image(media("feat_multi_face"))
    assert len(faces) >= 4
    assert sum(f.has_mesh for f in faces) >= 4  # small faces are landmarked on their BlazeFace crops
    for a, b in itertools.combinations(faces, 2):
        assert a.box.iou(b.box) < 0.3
    assert all(0 < f.score <= 1 and f.label in LABELS for f in faces)


def test_grayscale_photo_works(analyzer):
    img = media("feat_bw_human")
    assert img.mode == "L"
    faces = analyzer.analyze_image(img)  # PIL "L" converted to RGB before MediaPipe (which crashes on 1 channel)
    assert len(faces) >= 1  # the shouting soldier, found by the tiled short-range pass
    assert all(f.label in LABELS and f.explanation for f in faces)
    gray = np.asarray(img.reduce(4))
    assert gray.ndim == 2
    assert isinstance(analyzer.analyze_image(gray), list)  # (H, W) arrays too


def test_no_face_is_a_normal_result(analyzer):
    assert analyzer.analyze_image(np.full((240, 320, 3), 127, np.uint8)) == []
    rgba = np.zeros((200, 200, 4), np.uint8)
    assert analyzer.analyze_image(rgba) == []
    # --faces auto: a small image without a detection is taken as an already-cropped face (FER-style crops)
    small = analyzer.analyze_image(np.zeros((64, 64, 4), np.uint8))
    assert [f.box.source for f in small] == ["whole-image"]


def test_video_mode_frames(analyzer):
    rgb = np.asarray(media("astronaut").convert("RGB"))
    for i in range(3):
        faces = analyzer.analyze_frame(rgb, next(_ts), frame_index=i)
        assert len(faces) == 1 and faces[0].frame_index == i and faces[0].label == "happiness"
    with pytest.raises(ValueError, match="increasing"):
        analyzer.analyze_frame(rgb, 0)


def test_no_face_clip_gives_no_faces(analyzer):
    av = pytest.importorskip("av")
    path = assets.resolve("feat_no_face", download=False) if "feat_no_face" in assets.catalogue() else None
    if path is None or not path.exists():
        pytest.skip(FIX)
    with av.open(str(path)) as box:
        frames = [fr.to_ndarray(format="rgb24") for fr in itertools.islice(box.decode(video=0), 0, 30, 10)]
    assert frames
    assert all(analyzer.analyze_frame(fr, next(_ts)) == [] for fr in frames)


def test_mediapipe_priors_from_a_real_face(analyzer):
    from emollama.model.towers import Preprocess
    from emollama.priors.from_faces import build_prior_extractor

    ex = build_prior_extractor("mediapipe", analyzer=analyzer, preprocess=Preprocess(size=32))
    (p,) = ex.extract(media("astronaut"))
    assert p.landmarks.shape == (1, 478, 2) and p.valid.tolist() == [True]
    assert 0.0 <= p.landmarks.min() and p.landmarks.max() <= 1.0  # inside the face crop
    assert p.blendshapes.shape == (1, 52) and p.blendshapes.max() > 0.6
    assert p.gender_probs[0].argmax() == 0 and p.age_probs.sum() == pytest.approx(1.0, abs=1e-4)
    assert tuple(p.crops.shape) == (1, 3, 32, 32)


def test_facexformer_backend_on_detector_boxes(analyzer, tmp_path):
    import torch

    from emollama.faces.facexformer import FaceXFormer, FaceXFormerConfig
    from emollama.priors.from_faces import build_prior_extractor

    cfg = FaceXFormerConfig.tiny()
    torch.save({"state_dict_backbone": FaceXFormer(cfg).state_dict()}, tmp_path / "model.pt")  # released key layout
    ex = build_prior_extractor("facexformer", checkpoint=str(tmp_path / "model.pt"), config=cfg,
                               detector=analyzer.detector)  # fmt: skip
    (p,) = ex.extract(media("astronaut"))
    assert p.landmarks.shape == (1, 68, 2) and p.meta["backend"] == "facexformer"
