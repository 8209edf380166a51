"""`emollama eval --priors CACHE`: cached priors give the same predictions as cold ones; misses are explicit."""

from __future__ import annotations

import json

from tests.evaluation.eval_fixtures import rafdb_items, rafdb_root

from emollama.cli.__main__ import main


def _prepare(root, cache_dir, limit=None, frames=False):
    from emollama.data.benchmarks import get_benchmark
    from emollama.model.build import build_tiny
    from emollama.priors.cache import PriorCache
    from emollama.priors.frames import prepare_frames
    from emollama.priors.prepare import prepare
    from emollama.priors.source import model_prior_spec

    _, proc = build_tiny()
    samples = get_benchmark("rafdb").load(root, "test").samples[:limit]
    with PriorCache(cache_dir, writable=True) as cache:
        rep = prepare(samples, cache, model_prior_spec(proc), proc.config.frame_sampling)
        if frames:
            frames = prepare_frames(samples, cache, proc.preprocess, proc.config.frame_sampling)
            assert frames["computed"] == len(samples)
    return rep


def _eval(root, out, *extra):
    args = ["eval", "--model", "tiny", "--dataset", "rafdb", "--root", str(root), "--out", str(out), "--limit", "2",
            "--mode", "both", "--n-boot", "20", "--max-new-tokens", "4", "--no-progress", *extra]
    assert main(args) == 0
    return {m: json.loads((out / f"{m}.json").read_text()) for m in ("score", "generate")}


def _results(rep):
    return [(r["id"], r["answer"], r["pred"], r["groups"]) for r in rep["records"]]


def test_cached_priors_equal_cold_priors(tmp_path, capsys):
    root = rafdb_root(tmp_path)
    rep = _prepare(root, tmp_path / "cache", limit=2)
    assert rep.computed == 2
    cold = _eval(root, tmp_path / "cold")
    warm = _eval(root, tmp_path / "warm", "--priors", str(tmp_path / "cache"))
    for m in ("score", "generate"):
        assert _results(cold[m]) == _results(warm[m])
    assert warm["score"]["provenance"]["priors"]["source"] == "prior cache"
    assert cold["score"]["provenance"]["priors"]["source"].startswith("computed")
    capsys.readouterr()


def test_cache_miss_is_an_error_unless_fallback(tmp_path, capsys):
    root = rafdb_root(tmp_path)
    _prepare(root, tmp_path / "cache", limit=1)
    args = ["eval", "--model", "tiny", "--dataset", "rafdb", "--root", str(root), "--limit", "3", "--n-boot", "0",
            "--no-progress", "--priors", str(tmp_path / "cache")]
    assert main([*args, "--out", str(tmp_path / "a")]) == 1
    assert "emollama prepare" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "b"), "--prior-fallback"]) == 0
    capsys.readouterr()


def test_no_priors_means_no_face_tokens(tmp_path):
    from tests.evaluation.eval_fixtures import tiny_backend

    from emollama.evaluation.backends import model_messages
    from emollama.priors.source import PriorRequest

    _, items = rafdb_items(rafdb_root(tmp_path), limit=1)
    backend = tiny_backend(priors=False)
    req = PriorRequest.for_sample(items[0].sample)
    assert backend.priors.get(req) is None and not backend.priors.has(req)
    assert "<face>" not in model_messages(items[0], False)[0]["content"]
    assert backend.describe()["priors"] == {"source": "none"}


def test_prior_opt_needs_key_value(tmp_path, capsys):
    root = rafdb_root(tmp_path)
    args = ["eval", "--model", "tiny", "--dataset", "rafdb", "--root", str(root), "--out", str(tmp_path / "o"),
            "--prior-opt", "x"]
    assert main(args) == 1
    assert "KEY=VALUE" in capsys.readouterr().err


def _logliks(out):
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    return sorted((r["key"], r["loglik"]) for r in rows if "loglik" in r)


def test_cached_frames_give_identical_predictions(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    root = rafdb_root(tmp_path)
    for i, path in enumerate(sorted(root.glob("Image/*/test_*"))):  # non-square noise photos
        rgb = np.random.default_rng(i).integers(0, 256, (50 + 7 * i, 41, 3), dtype=np.uint8)
        Image.fromarray(rgb).save(path)
    _prepare(root, tmp_path / "cache", limit=2, frames=True)
    cold = _eval(root, tmp_path / "cold")
    warm = _eval(root, tmp_path / "warm", "--priors", str(tmp_path / "cache"))
    for m in ("score", "generate"):
        assert _results(cold[m]) == _results(warm[m])
    assert _logliks(tmp_path / "cold") == _logliks(tmp_path / "warm") and _logliks(tmp_path / "cold")
    timing = warm["score"]["provenance"]["timing"]
    assert timing["media"]["frames_hit"] == 4 and "decoded" not in timing["media"]  # 2 samples x 2 modes
    assert cold["score"]["provenance"]["timing"]["media"]["decoded"] == 4
    capsys.readouterr()


def test_ablation_scores_four_variants_and_face_tokens_really_change(tmp_path, capsys):
    """`--ablation`: AGR x face-token variants in one run; the variant rows equal separate --no-agr / --priors none
    style runs, so the numbers come from really different prompts."""
    root = rafdb_root(tmp_path)
    args = ["eval", "--model", "tiny", "--dataset", "rafdb", "--root", str(root), "--limit", "3", "--n-boot", "0",
            "--no-progress", "--mode", "score"]
    assert main([*args, "--out", str(tmp_path / "abl"), "--ablation"]) == 0
    doc = json.loads((tmp_path / "abl" / "ablation.json").read_text())
    assert [(v["agr"], v["face_tokens"]) for v in doc["variants"]] == [(True, True), (False, True), (True, False),
                                                                       (False, False)]
    assert all(v["n"] == 3 for v in doc["variants"])
    def logliks(log):
        rows = [json.loads(x) for x in log.read_text().splitlines() if x.strip()]
        return [r["loglik"] for r in sorted(rows, key=lambda r: r.get("key", "")) if "loglik" in r]

    loglik = {k: logliks(tmp_path / "abl" / (f"ablation/{k}" if k else "") / "predictions.jsonl")
              for k in (0, 1, 2, 3)}
    assert all(len(v) == 3 for v in loglik.values()), loglik
    assert loglik[0] != loglik[2] and loglik[0] != loglik[1]  # <face> tokens and the AGR sentence both matter
    # the no-AGR variant is exactly what --no-agr scores
    assert main([*args, "--out", str(tmp_path / "noagr"), "--no-agr"]) == 0
    assert logliks(tmp_path / "noagr" / "predictions.jsonl") == loglik[1]
    assert "AGR / face-token ablation" in (tmp_path / "abl" / "ablation.md").read_text()
    capsys.readouterr()


def test_face_view_models_decode_photos_but_read_clips_from_the_frame_cache(tmp_path, monkeypatch):
    """`visual_input: face` cuts the face crop from the photo itself, so its stored whole-image frame is not used;
    a clip's stored frames still are (`build_media`)."""
    from types import SimpleNamespace

    import numpy as np
    from PIL import Image

    from emollama.evaluation.inputs import CachedMedia, build_media
    from emollama.model.build import build_tiny
    from emollama.priors import frames as frames_mod

    stored = np.zeros((2, 8, 8, 3), np.uint8)
    monkeypatch.setattr(frames_mod, "frames_key_for", lambda cache, sample, policy, pp: "k")
    monkeypatch.setattr(frames_mod, "get_frames", lambda cache, key: (stored, None))
    monkeypatch.setattr("emollama.priors.cache.PriorCache", lambda root: SimpleNamespace(has=lambda key: True,
                                                                                          root=root))
    _, proc = build_tiny()
    proc.config.visual_input = "face"
    media = build_media(str(tmp_path / "cache"), proc)
    assert isinstance(media, CachedMedia) and not media.images
    photo = tmp_path / "p.png"
    Image.fromarray(np.full((30, 20, 3), 7, np.uint8)).save(photo)
    got = media.load(SimpleNamespace(media=str(photo), is_video=False), "uniform:8")
    assert got.shape == (30, 20, 3) and media.stats["decoded"] == 1 and media.stats["frames_hit"] == 0
    clip = media.load(SimpleNamespace(media="clip.mp4", is_video=True), "uniform:8")
    assert clip is stored and media.stats["frames_hit"] == 1
    proc.config.visual_input = "frame"
    assert build_media(str(tmp_path / "cache"), proc).images
