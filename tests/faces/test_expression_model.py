"""The shipped expression model through the analyzer: FER2013 PublicTest slice, sample photos, face modes.

Needs the face stack (`python scripts/install_faces.py`) and, for the accuracy test, ../shared/data/fer2013.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emollama import assets
from emollama.data.benchmarks import get_benchmark
from emollama.faces.decide import PROTOTYPES
from emollama.faces.expression_net import DEFAULT_WEIGHTS, LearnedExpression

pytestmark = pytest.mark.media
FIX = "run `python scripts/install_faces.py` to install the face stack and fill the asset cache"
SLICE = 350
GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "golden" / "emonet_publictest_slice.json"


@pytest.fixture(scope="module")
def analyzer():
    try:
        for name in ("face_landmarker", "blazeface_full_range", "blazeface_short_range", "age_v1", "gender_v1"):
            assets.resolve(name, download=False)
        from emollama.faces.analyzer import Analyzer, AnalyzerConfig

        an = Analyzer(AnalyzerConfig(attributes=False))
        an.load()
    except (ImportError, assets.AssetError) as err:
        pytest.skip(f"face stack unavailable ({err}); {FIX}")
    yield an
    an.close()


def stratified_slice(samples: list, n: int) -> list:
    """``n`` samples, each class in proportion to its share (largest remainders), evenly spaced by id."""
    by = {}
    for s in sorted(samples, key=lambda s: s.id):
        by.setdefault(s.label, []).append(s)
    quota = {k: n * len(v) / len(samples) for k, v in by.items()}
    take = {k: int(q) for k, q in quota.items()}
    for k in sorted(quota, key=lambda k: quota[k] - take[k], reverse=True)[: n - sum(take.values())]:
        take[k] += 1
    out = []
    for k, v in sorted(by.items()):
        idx = np.linspace(0, len(v) - 1, take[k]).round().astype(int)
        out.extend(v[i] for i in idx)
    return out


def test_shipped_weights_are_small_and_documented():
    assert DEFAULT_WEIGHTS.is_file(), "the learned expression model must ship inside the package"
    assert DEFAULT_WEIGHTS.stat().st_size <= 10 * 2**20
    m = LearnedExpression()
    m.load()
    assert m.metadata["command"].startswith("emollama train-expression")
    assert len(m.metadata["git_sha"]) == 40, "ship weights exported from a clean commit (no +dirty)"
    assert 0.3 < m.temperature < 5
    assert m.labels == ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")


def test_models_name_their_weights(analyzer, tmp_path):
    from emollama.analyze.runner import AnalyzeOptions, image_records
    from emollama.faces.expression import MiniXception, model_identity
    from emollama.faces.pipeline import analyze_media
    from emollama.media.video import Frame

    sha = hashlib.sha256(DEFAULT_WEIGHTS.read_bytes()).hexdigest()
    assert LearnedExpression().identity == f"emonet-fer2013 sha256:{sha[:12]}" == analyzer.expression_identity
    assert LearnedExpression(tmp_path / "absent.safetensors").identity == "emonet-fer2013"
    other = tmp_path / "other.bin"
    other.write_bytes(b"other weights")
    assert model_identity("x", other) == f"x sha256:{hashlib.sha256(b'other weights').hexdigest()[:12]}"
    assert MiniXception(model_path=other).identity == model_identity("mini-xception-fer2013", other)
    # the pinned asset's hash, which loading verifies: right even before the TFLite file is installed
    assert MiniXception().identity == "mini-xception-fer2013 sha256:65e3961bb68f"
    photo = np.asarray(Image.open(assets.resolve("astronaut", download=False)).convert("RGB"))
    faces = analyze_media([Frame(0, 0.0, photo)], analyzer, video=False)
    rec = image_records(faces, "astronaut.png", AnalyzeOptions(), analyzer.expression_identity)[0]
    assert rec["expression_model"] == analyzer.expression_identity and rec["label"] == "happiness"
    keys = list(rec)
    assert keys.index("expression_model") == keys.index("probabilities") + 1


def test_analyzer_on_a_fixed_publictest_slice(analyzer, fer2013_root):
    samples = stratified_slice(get_benchmark("fer2013").load(fer2013_root, "publictest").samples, SLICE)
    assert len(samples) == SLICE and len({s.id for s in samples}) == SLICE
    right = no_face = 0
    predicted = {}
    for s in samples:
        faces = analyzer.analyze_image(Image.open(s.media))
        no_face += not faces
        right += bool(faces) and faces[0].label == s.label
        predicted[s.id] = faces[0].label if faces else None
    assert no_face == 0  # --faces auto: every 48x48 crop is analysed
    # the labels this exact model gave when it shipped: a drift in cropping, grey conversion or resizing changes
    # many of them long before it moves the accuracy; near-ties may flip between CPUs, hence 97 %, not 100 %
    golden = json.loads(GOLDEN.read_text())
    digest = hashlib.sha256(DEFAULT_WEIGHTS.read_bytes()).hexdigest()
    assert golden["weights_sha256"] == digest, (
        f"the shipped weights changed: regenerate {GOLDEN.name} with `python {__file__} --write-golden`")
    same = sum(golden["labels"][k] == v for k, v in predicted.items())
    assert same / SLICE >= 0.97, f"{SLICE - same} of {SLICE} labels differ from the ones the model shipped with"
    # the shipped model's golden labels score 69.7 % here (244 of 350; 70.6 % on all of PublicTest); a broken crop,
    # colour conversion or normalisation drops it far below the 65 % issue #12 asks for. With >= 97 % of the golden
    # labels kept (at most 10 flips on another CPU) it stays >= 66.9 %
    assert right / SLICE >= 0.65, f"WAR {right / SLICE:.3f} on the {SLICE}-image slice"


def test_faces_auto_detect_and_whole_image(analyzer, fer2013_root):
    from emollama.faces.analyzer import Analyzer, AnalyzerConfig

    # a PublicTest crop on which the detectors find nothing (found by scanning the split once)
    samples = get_benchmark("fer2013").load(fer2013_root, "publictest").samples
    missed = next(s for s in samples[:400]
                  if not analyzer.detector.detect(np.asarray(Image.open(s.media).convert("RGB"))))
    img = Image.open(missed.media)
    auto = analyzer.analyze_image(img)
    assert len(auto) == 1 and auto[0].box.source == "whole-image" and auto[0].box.xyxy == (0, 0, 48, 48)
    assert auto[0].label is not None
    detect = Analyzer(AnalyzerConfig(attributes=False, faces="detect"), detector=analyzer.detector,
                      expression=analyzer.expression)
    assert detect.analyze_image(img) == []
    whole = Analyzer(AnalyzerConfig(attributes=False, faces="whole-image"), detector=analyzer.detector,
                     expression=analyzer.expression)
    photo = Image.open(assets.resolve("astronaut", download=False))
    assert [f.box.source for f in whole.analyze_image(photo)] == ["whole-image"]
    big_blank = np.full((400, 400, 3), 127, np.uint8)  # a larger image without a face stays without one
    assert analyzer.analyze_image(big_blank) == []


# issue #12 asks for the disgust photo too; the shipped model (b03609c recipe, margin fill 0.25) calls the posed
# anger photo fear (0.44; sadness 0.32, anger 0.15) and the disgust photo neutral (0.37; sadness 0.31, anger 0.20),
# as the 463d7cb one did (fear 0.45, neutral 0.35); the 97c7961 model called them fear and sadness, older ones
# sadness twice; the old mini-Xception + rules: anger right, disgust neutral. Strict: a model that gets them right
# makes these xfails fail, so the expectation is updated with it.
_MISSED = pytest.mark.xfail(strict=True, reason="known miss of the shipped FER2013 model on posed colour photos")


@pytest.mark.parametrize("name,label", [("astronaut", "happiness"), ("feat_surprise", "surprise"),
                                        ("feat_happy", "happiness"),
                                        pytest.param("feat_anger", "anger", marks=_MISSED),
                                        pytest.param("feat_disgust", "disgust", marks=_MISSED)])
def test_sample_photos(analyzer, name, label):
    try:
        path = assets.resolve(name, download=False)
    except assets.AssetError:
        pytest.skip(f"{name} not in the asset cache: {FIX}")
    faces = analyzer.analyze_image(Image.open(path))
    assert len(faces) == 1 and faces[0].label == label, (faces[0].label, faces[0].probs)


def test_explanations_cite_only_cues_of_the_label(analyzer, fer2013_root):
    samples = stratified_slice(get_benchmark("fer2013").load(fer2013_root, "publictest").samples, 70)
    for s in samples:
        for f in analyzer.analyze_image(Image.open(s.media)):
            cited = [w.strip("(),.") for w in f.explanation.split() if w.startswith("(AU")]
            for group in cited:
                for au in group.split("+"):
                    assert au in PROTOTYPES.get(f.label, {}), (f.label, f.explanation)
            if f.au and f.label != "neutral" and not cited:
                assert "weak" in f.explanation, f.explanation


def _write_golden() -> None:
    """Record the shipped model's labels on the slice (run after shipping new weights)."""
    from emollama.data.benchmarks.fer2013 import resolve_root
    from emollama.faces.analyzer import Analyzer, AnalyzerConfig

    root = resolve_root(Path(__file__).resolve().parents[3] / "shared" / "data" / "fer2013")
    an = Analyzer(AnalyzerConfig(attributes=False))
    labels = {}
    for s in stratified_slice(get_benchmark("fer2013").load(root, "publictest").samples, SLICE):
        faces = an.analyze_image(Image.open(s.media))
        labels[s.id] = faces[0].label if faces else None
    digest = hashlib.sha256(DEFAULT_WEIGHTS.read_bytes()).hexdigest()
    GOLDEN.write_text(json.dumps({"weights_sha256": digest, "labels": labels}, indent=0, sort_keys=True) + "\n")


if __name__ == "__main__" and "--write-golden" in sys.argv:
    _write_golden()
