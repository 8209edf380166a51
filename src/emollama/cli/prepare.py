"""`emollama prepare NAME ROOT --out CACHE`: face priors + aligned crops for every sample, into a resumable cache.

Rerunning (after kill -9, or with more splits) computes only what is missing or stale. Writes a manifest JSONL
(sample id -> prior key) for `gen-data`/training. Exit 0, or 3 when some samples failed (they are retried next run).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from emollama.cli.datasets import add_load_arguments, parse_opts

HELP = "extract face priors + crops for a dataset into a sharded, resumable cache (training/eval read it)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_load_arguments(p)
    p.add_argument("--out", required=True, metavar="CACHE", help="cache directory (created; reused across runs)")
    p.add_argument("--split", help="only this split (default: every split)")
    p.add_argument("--fold", type=int, help="only this fold, for DFEW/MAFW (default: every fold; clips shared "
                                            "between folds are extracted once)")
    p.add_argument("--extractor", default="mediapipe", metavar="NAME",
                   help="face-prior extractor: mediapipe (default) | synthetic (no models; tests) | facexformer")
    p.add_argument("--extractor-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="extractor option, e.g. attributes=false or max_faces=1 (mediapipe), seed=1 (synthetic), "
                        "checkpoint=PATH (facexformer); part of the cache key; repeatable")
    p.add_argument("--video-sampling", default="uniform:8", metavar="POLICY",
                   help="frames per clip: uniform:N | fps:F | all (default uniform:8; must match training's)")
    p.add_argument("--crop-size", type=int, default=224, help="stored face-crop side in pixels (default 224)")
    p.add_argument("--crop-margin", type=float, default=0.25, help="crop margin per side, x face size (default 0.25)")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                   help="extraction processes, each with its own extractor (default: min(2, CPUs))")
    p.add_argument("--limit", type=int, default=0, help="only the first N samples of each split (0 = all)")
    p.add_argument("--manifest", metavar="FILE.jsonl",
                   help="sample id -> prior key output "
                        "(default: CACHE/manifests/<name>_<split|all>[_fold<k>]_<extractor>.jsonl)")
    p.add_argument("--shard-mb", type=float, default=32.0,
                   help="shard size: results are made durable every this many MB or 30 s (default 32)")
    p.add_argument("--report", metavar="FILE.json", help="also write the run report as JSON")
    p.add_argument("--frames-for-model", metavar="SIZE|MODEL_DIR",
                   help="also store each sample's sampled frames resized + centre-cropped for the vision tower "
                        "(uint8), so `emollama eval --priors CACHE` decodes no media: a side in pixels (bicubic, no "
                        "padding) or a model directory (its processor.json preprocessing). Default: off")


def frame_preprocess(arg: str):
    """``--frames-for-model`` value -> `Preprocess`: an int side, or a model directory's processor.json."""
    from emollama.vision.towers import Preprocess

    if arg.isdigit():
        if int(arg) < 1:
            raise ValueError(f"--frames-for-model {arg!r}: the side must be >= 1")
        return Preprocess(int(arg))
    meta = Path(arg) / "processor.json"
    if not meta.is_file():
        raise ValueError(f"--frames-for-model {arg!r}: expected a side in pixels or a model directory with "
                         "processor.json")
    pp = json.loads(meta.read_text())["preprocess"]
    return Preprocess(pp["size"], tuple(pp["mean"]), tuple(pp["std"]), pp["resample"], pp["pad_to_square"])


def _value(text: str):
    import yaml

    try:
        return yaml.safe_load(text)  # 'false' -> False, '3' -> 3, '0.5' -> 0.5, paths stay strings
    except yaml.YAMLError:
        return text


def _samples(args: argparse.Namespace) -> list:
    from emollama.data.benchmarks import get_benchmark

    bench = get_benchmark(args.name, **parse_opts(args.opt))
    info = bench.info(args.root)
    splits = [args.split] if args.split else list(info.splits)
    folds = [args.fold] if args.fold is not None else list(info.folds) or [None]
    out = []
    for fold in folds:
        for split in splits:
            res = bench.load(args.root, split, fold, strict=args.strict, check_media=not args.no_media_check)
            out += res.samples[: args.limit] if args.limit > 0 else res.samples
            for line in res.report.lines():
                print(f"{split}{f' fold {fold}' if fold else ''}: {line}", file=sys.stderr)
    return out


def _progress(total: int):
    if not sys.stderr.isatty():
        return None, None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="sample", desc="prepare", dynamic_ncols=True)
    return bar, bar.update


def run(args: argparse.Namespace) -> int:
    from emollama.data.frame_cache import prepare_frames
    from emollama.data.prior_cache import PriorCache
    from emollama.data.prior_keys import ExtractorSpec
    from emollama.data.prior_prepare import prepare, write_manifest
    from emollama.faces.align import CropConfig
    from emollama.vision.sampling import parse_policy

    parse_policy(args.video_sampling)
    frames_pp = frame_preprocess(args.frames_for_model) if args.frames_for_model else None
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    opts = {k: _value(v) for k, v in parse_opts(args.extractor_opt).items()}
    spec = ExtractorSpec(args.extractor, opts, CropConfig(args.crop_margin, args.crop_size))
    samples = _samples(args)
    name = "_".join([args.name, args.split or "all", *([f"fold{args.fold}"] if args.fold is not None else []),
                     args.extractor])
    name = re.sub(r"[^\w.-]", "_", name)
    manifest = Path(args.manifest) if args.manifest else Path(args.out) / "manifests" / f"{name}.jsonl"
    bar, tick = _progress(len(samples))
    try:
        with PriorCache(args.out, writable=True, shard_mb=args.shard_mb) as cache:
            rep = prepare(samples, cache, spec, args.video_sampling, workers=args.workers, progress=tick)
            frames = prepare_frames(samples, cache, frames_pp, args.video_sampling) if frames_pp else None
            write_manifest(manifest, samples, rep.keys, cache)
            stats = cache.stats()
    finally:
        if bar is not None:
            bar.close()
    rep.manifest = str(manifest)
    print("\n".join(rep.lines()))
    if frames is not None:
        print(f"tower frames ({frames_pp.size} px): computed {frames['computed']}, cached already "
              f"{frames['cached']}, failed {frames['failed']} ({frames['seconds']:.1f} s)")
    print(f"cache {args.out}: {stats['entries']} entries in {stats['shards']} shard(s), "
          f"{stats['bytes'] / 2**20:.1f} MB; manifest {manifest}")
    if args.report:
        Path(args.report).write_text(json.dumps({**rep.to_dict(), "cache": stats, "extractor": args.extractor,
                                                 "policy": args.video_sampling, "frames": frames}, indent=2) + "\n")
    return 3 if rep.failed else 0
