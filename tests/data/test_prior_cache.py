"""Face-prior cache: keys and staleness, put/get round trip, crash debris, failures, workers, real MediaPipe media."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import fer_layouts as F
import numpy as np
import pytest
from PIL import Image

from emollama.data.benchmarks import get_benchmark
from emollama.faces.align import CropConfig
from emollama.priors.cache import EntryInfo, PriorCache
from emollama.priors.extract import CropPriorExtractor
from emollama.priors.keys import ExtractorSpec
from emollama.priors.prepare import prepare, read_manifest, write_manifest

SYN = ExtractorSpec("synthetic", crop=CropConfig(size=16))
FIELDS = ("landmarks", "blendshapes", "pose", "age_probs", "gender_probs", "valid")


def folder(root: Path, n: int = 4, clip: bool = True) -> Path:
    """ROOT/train/<class>/<i>.png (+ one 3-frame clip folder)."""
    for i in range(n):
        F.image(root / "train" / ("happy", "sad")[i % 2] / f"{i}.png", 25 * i)
    if clip:
        F.frames(root / "train" / "happy" / "clip", 3)
    return root


def samples(root: Path) -> list:
    return get_benchmark("folder").load(root, "train").samples


def snapshot(cache: PriorCache) -> dict:
    """Logical contents: key -> (arrays..., crops)."""
    out = {}
    for key in cache:
        p = cache.get(key)
        crops, has = cache.get_crops(key)
        out[key] = [np.asarray(getattr(p, f)) for f in FIELDS] + [crops, has]
    return out


def assert_same(a: dict, b: dict) -> None:
    assert sorted(a) == sorted(b)
    for k in a:
        for x, y in zip(a[k], b[k], strict=True):
            np.testing.assert_array_equal(x, y)


def test_keys_change_with_media_extractor_policy_and_crop(tmp_path):
    root = folder(tmp_path / "ds")
    s = samples(root)
    img, clip = next(x for x in s if not x.is_video), next(x for x in s if x.is_video)
    with PriorCache(tmp_path / "c", writable=True) as c:
        k_img, k_clip = c.key_for(img, SYN, "uniform:8"), c.key_for(clip, SYN, "uniform:8")
        assert k_img.startswith("synthetic-") and k_img != k_clip
        assert c.key_for(img, "synthetic", "uniform:8") == c.key_for(img, ExtractorSpec("synthetic"), "uniform:8")
        assert c.key_for(img, SYN, "uniform:2") == k_img  # a video policy never touches images
        assert c.key_for(clip, SYN, "uniform:2") != k_clip
        assert c.key_for(img, dataclasses.replace(SYN, version="2"), "uniform:8") != k_img
        assert c.key_for(img, dataclasses.replace(SYN, options={"seed": 1}), "uniform:8") != k_img
        assert c.key_for(img, dataclasses.replace(SYN, crop=CropConfig(size=32)), "uniform:8") != k_img
        F.image(img.media, 200)  # new bytes at the same path
        (clip.media / "001.jpg").write_bytes((clip.media / "000.jpg").read_bytes())  # one frame of a folder
        assert c.key_for(img, SYN, "uniform:8") != k_img
        assert c.key_for(clip, SYN, "uniform:8") != k_clip


def test_put_get_round_trip_and_preprocess(tmp_path):
    from emollama.model.towers import Preprocess

    ext = CropPriorExtractor(SYN)
    root = folder(tmp_path / "ds", n=1)
    clip = next(x for x in samples(root) if x.is_video)
    res = ext(clip.media, True, "uniform:8")
    assert res.error is None and res.prior.num_frames == 3 and res.crops.shape == (3, 16, 16, 3)
    info = EntryInfo("synthetic-abc", "", "", 0, clip.media_rel)
    with PriorCache(tmp_path / "c", writable=True) as c:
        c.put(info, res.prior, res.crops, res.has_crop)
        assert c.has("synthetic-abc")  # visible while still buffered
    c = PriorCache(tmp_path / "c", preprocess=Preprocess(8))
    got = c.get("synthetic-abc", preprocess=None)
    for f in FIELDS:
        np.testing.assert_array_equal(np.asarray(getattr(got, f)), np.asarray(getattr(res.prior, f)))
    assert got.meta == res.prior.meta and got.valid.dtype == bool
    np.testing.assert_array_equal(c.get_crops("synthetic-abc")[0], res.crops)
    assert tuple(c.get("synthetic-abc").crops.shape) == (3, 3, 8, 8)  # the cache's default Preprocess
    assert c.info("synthetic-abc").status == "ok" and list(c) == ["synthetic-abc"] and len(c) == 1
    with pytest.raises(KeyError, match="emollama prepare"):
        c.get("synthetic-missing")
    with pytest.raises(PermissionError):
        c.put(info, res.prior)


def test_prepare_resume_stale_and_manifest(tmp_path):
    root = folder(tmp_path / "ds")
    s = samples(root)
    with PriorCache(tmp_path / "c", writable=True) as c:
        rep = prepare(s, c, SYN, "uniform:8")
        assert (rep.computed, rep.cached, sum(rep.failed.values())) == (5, 0, 0)
        write_manifest(tmp_path / "m.jsonl", s, rep.keys, c)
        assert prepare(s, c, SYN, "uniform:8").cached == 5  # resume: nothing recomputed
        F.image(s[0].media, 222)  # media changed: its old entry is stale
        rep2 = prepare(s, c, SYN, "uniform:8")
        assert (rep2.computed, rep2.cached) == (1, 4) and rep2.keys[s[0].id] != rep.keys[s[0].id]
        assert prepare(s, c, dataclasses.replace(SYN, version="2"), "uniform:8").computed == 5
    assert read_manifest(tmp_path / "m.jsonl") == rep.keys


def test_failures_and_no_face_are_counted_not_fatal(tmp_path):
    root = folder(tmp_path / "ds", n=2, clip=False)
    (root / "train" / "sad" / "broken.jpg").write_bytes(b"not a jpeg")
    s = samples(root)
    with PriorCache(tmp_path / "c", writable=True) as c:
        rep = prepare(s, c, SYN, "uniform:8")
        assert rep.computed == 2 and dict(rep.failed) == {"not a recognised image format": 1}
        broken = next(x.id for x in s if x.id.endswith("broken.jpg"))
        assert rep.keys[broken] is None and c.stats()["failures"] == {"not a recognised image format": 1}
        write_manifest(tmp_path / "m.jsonl", s, rep.keys, c)
        assert '"status": "failed", "reason": "not a recognised image format"' in (tmp_path / "m.jsonl").read_text()
        noface = dataclasses.replace(SYN, options={"faces_per_image": 0})
        rep = prepare(s, c, noface, "uniform:8")
        assert (rep.computed, rep.no_face) == (2, 2)
        key = next(k for k in rep.keys.values() if k)
        assert c.info(key).status == "no_face" and not c.get(key).valid.any()


def test_killed_run_debris_is_cleaned_by_the_next_writer(tmp_path):
    root = folder(tmp_path / "ds", n=2, clip=False)
    with PriorCache(tmp_path / "c", writable=True) as c:
        prepare(samples(root), c, SYN, "uniform:8")
        before = snapshot(c)
    shards = tmp_path / "c" / "shards"
    (shards / ".tmp-half-written.safetensors").write_bytes(b"\0" * 10)  # killed mid-write
    (shards / "orphan.safetensors").write_bytes(next(shards.glob("*.safetensors")).read_bytes())  # before commit
    PriorCache(tmp_path / "c")  # a reader never deletes: a writer may be between rename and commit
    assert (shards / "orphan.safetensors").exists()
    with PriorCache(tmp_path / "c", writable=True) as c:
        assert sorted(p.name for p in shards.iterdir()) == [c.info(next(iter(c))).shard]
        assert_same(snapshot(c), before)
        with pytest.raises(RuntimeError, match="another process"):
            PriorCache(tmp_path / "c", writable=True)


def test_two_workers_give_the_same_cache_as_one(tmp_path):
    root = folder(tmp_path / "ds", n=5)
    snaps = []
    for w in (1, 2):
        with PriorCache(tmp_path / f"c{w}", writable=True) as c:
            rep = prepare(samples(root), c, SYN, "uniform:8", workers=w, start_method="fork")
            assert rep.computed == 6 and rep.workers == w
            snaps.append(snapshot(c))
    assert_same(*snaps)


def test_a_worker_crash_is_retried_then_counted(tmp_path, monkeypatch):
    root = folder(tmp_path / "ds", n=4, clip=False)
    monkeypatch.setenv("EMOLLAMA_PREPARE_TEST_CRASH", "2.png")
    with PriorCache(tmp_path / "c", writable=True) as c:
        rep = prepare(samples(root), c, SYN, "uniform:8", workers=2, start_method="fork")
    assert rep.computed == 3 and dict(rep.failed) == {"worker crashed": 1}
    assert [k for sid, k in rep.keys.items() if k is None] == [None] and rep.keys["train/happy/2.png"] is None


def test_is_one_prior_source_for_training_and_eval(tmp_path):
    from emollama.priors.providers import CachePriorSource, ExtractorPriorSource
    from emollama.priors.source import PriorRequest, PriorSource, build_prior_source

    root = folder(tmp_path / "ds", n=1)
    with PriorCache(tmp_path / "c", writable=True) as c:
        rep = prepare(samples(root), c, SYN, "uniform:2")
    train = build_prior_source("cache:c", tmp_path)  # training: by the records' prior keys
    assert isinstance(train, PriorSource) and all(train.has(PriorRequest(k)) for k in rep.keys.values())
    assert train.describe() == {"source": "prior cache", "cache": str(tmp_path / "c")}
    cold = ExtractorPriorSource(SYN, "uniform:2")
    ev = CachePriorSource(PriorCache(tmp_path / "c"), SYN, "uniform:2", "c", fallback=cold)  # eval: by media
    for s in samples(root):
        req = PriorRequest.for_sample(s)
        assert ev.has(req) and not train.has(req)  # no prior key: training's source cannot look it up
        got, want, computed = ev.get(req), train.get(PriorRequest(rep.keys[s.id])), cold.get(req)
        for f in FIELDS:  # the cold extractor gives the cached prior, frame for frame
            np.testing.assert_array_equal(getattr(got, f), getattr(want, f))
            np.testing.assert_array_equal(getattr(computed, f), getattr(want, f))
    assert ev.stats["cache_hit"] == 2 and not ev.stats["cache_miss"] and cold.stats["computed"] == 2
    clip = PriorRequest.for_sample(next(s for s in samples(root) if s.is_video))
    with pytest.raises(KeyError, match="emollama prepare"):  # another video policy: a miss, and no fallback
        CachePriorSource(PriorCache(tmp_path / "c"), SYN, "uniform:3").get(clip)
    with pytest.raises(FileNotFoundError, match="emollama prepare"):
        PriorCache(tmp_path / "nothing")


REAL = {"feat_happy": "happy", "feat_anger": "angry", "astronaut": "happy"}


@pytest.mark.media
def test_mediapipe_on_real_photos(tmp_path):
    from emollama import assets

    try:
        for name in ("face_landmarker", "blazeface_full_range", "blazeface_short_range", "age_v1", "gender_v1",
                     "shape_predictor_5"):
            assets.resolve(name, download=False)
        paths = {n: assets.resolve(n, download=False) for n in REAL}
        import mediapipe  # noqa: F401
    except (ImportError, assets.AssetError) as err:
        pytest.skip(f"face stack or media not in the asset cache: {err}")
    for name, label in REAL.items():
        dst = tmp_path / "ds" / label / paths[name].name
        dst.parent.mkdir(parents=True, exist_ok=True)
        Image.open(paths[name]).convert("RGB").save(dst.with_suffix(".png"))
    spec = ExtractorSpec("mediapipe")
    with PriorCache(tmp_path / "c", writable=True) as c:
        rep = prepare(get_benchmark("folder").load(tmp_path / "ds", "all").samples, c, spec)
        assert (rep.computed, rep.no_face, sum(rep.failed.values())) == (3, 0, 0)
        for key in c:
            p, (crops, has) = c.get(key), c.get_crops(key)
            assert p.landmarks.shape == (1, 478, 2) and p.blendshapes.shape == (1, 52) and p.valid.all()
            assert crops.shape == (1, 224, 224, 3) and has.all() and crops.std() > 10  # a real face crop
            assert 0 <= p.landmarks.min() and p.landmarks.max() <= 1.05
