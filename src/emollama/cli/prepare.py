"""`emollama prepare NAME ROOT --out CACHE`: face priors + aligned crops for every sample, into a resumable cache.

Rerunning (after kill -9, or with more splits) computes only what is missing or stale. Writes a manifest JSONL
(sample id -> prior key) for `gen-data`/training. Exit 0, or 3 when some samples failed (they are retried next run).
"""

from __future__ import annotations

import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from emollama.cli.datasets import LoadOptions, parse_opts
from emollama.cli.options import arg
from emollama.faces.align import CropConfig
from emollama.media.sampling import DEFAULT_POLICY

HELP = "extract face priors + crops for a dataset into a sharded, resumable cache (training/eval read it)"
_CROP = CropConfig()  # the face-crop defaults the analyzer and the MLLM's face branch use


def _default_workers() -> int:
    return min(2, os.cpu_count() or 1)


@dataclass(kw_only=True)
class Options(LoadOptions):
    """`emollama prepare` options."""

    out: str = arg(metavar="CACHE", help="cache directory (created; reused across runs)")
    split: str | None = arg(None, help="only this split (default: every split)")
    fold: int | None = arg(None, help="only this fold, for DFEW/MAFW (default: every fold; clips shared between "
                                      "folds are extracted once)")
    extractor: str = arg("mediapipe", metavar="NAME",
                         help="face-prior extractor: mediapipe (default) | synthetic (no models; tests) | facexformer")
    extractor_opt: list[str] = arg(default_factory=list, metavar="KEY=VALUE",
                                   help="extractor option, e.g. attributes=false or max_faces=1 (mediapipe), seed=1 "
                                        "(synthetic), checkpoint=PATH (facexformer); part of the cache key; "
                                        "repeatable")
    video_sampling: str = arg(DEFAULT_POLICY, metavar="POLICY",
                              help="frames per clip: uniform:N | fps:F | all (default {default}; must match "
                                   "training's)")
    crop_size: int = arg(_CROP.size, help="stored face-crop side in pixels (default {default})")
    crop_margin: float = arg(_CROP.margin, help="crop margin per side, x face size (default {default})")
    workers: int = arg(default_factory=_default_workers,
                       help="extraction processes, each with its own extractor (default: min(2, CPUs))")
    limit: int = arg(0, help="only the first N samples of each split (0 = all)")
    manifest: str | None = arg(None, metavar="FILE.jsonl",
                               help="sample id -> prior key output "
                                    "(default: CACHE/manifests/<name>_<split|all>[_fold<k>]_<extractor>.jsonl)")
    shard_mb: float = arg(32.0, help="shard size: results are made durable every this many MB or 30 s "
                                     "(default {default:g})")
    report: str | None = arg(None, metavar="FILE.json", help="also write the run report as JSON")
    frames_for_model: str | None = arg(None, metavar="SIZE|MODEL_DIR",
                                       help="also store each sample's sampled frames resized + centre-cropped for "
                                            "the vision tower (uint8), so `emollama eval --priors CACHE` decodes no "
                                            "media: a side in pixels (bicubic, no padding) or a model directory "
                                            "(its processor.json preprocessing). Default: off")


def frame_preprocess(arg: str):
    """``--frames-for-model`` value -> `Preprocess`: an int side, or a model directory's processor.json."""
    from emollama.model.towers import Preprocess

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


def _samples(opts: Options) -> list:
    from emollama.data.benchmarks import get_benchmark

    bench = get_benchmark(opts.name, **parse_opts(opts.opt))
    info = bench.info(opts.root)
    splits = [opts.split] if opts.split else list(info.splits)
    folds = [opts.fold] if opts.fold is not None else list(info.folds) or [None]
    out = []
    for fold in folds:
        for split in splits:
            res = bench.load(opts.root, split, fold, strict=opts.strict, check_media=not opts.no_media_check)
            out += res.samples[: opts.limit] if opts.limit > 0 else res.samples
            for line in res.report.lines():
                print(f"{split}{f' fold {fold}' if fold else ''}: {line}", file=sys.stderr)
    return out


def _progress(total: int):
    if not sys.stderr.isatty():
        return None, None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="sample", desc="prepare", dynamic_ncols=True)
    return bar, bar.update


def run(opts: Options) -> int:
    """Extract what the cache lacks and write the manifest; 0, or 3 when some samples failed."""
    from emollama.media.sampling import parse_policy
    from emollama.priors.cache import PriorCache
    from emollama.priors.frames import prepare_frames
    from emollama.priors.keys import ExtractorSpec
    from emollama.priors.prepare import prepare, write_manifest

    parse_policy(opts.video_sampling)
    frames_pp = frame_preprocess(opts.frames_for_model) if opts.frames_for_model else None
    if opts.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {opts.workers}")
    ext_opts = {k: _value(v) for k, v in parse_opts(opts.extractor_opt).items()}
    spec = ExtractorSpec(opts.extractor, ext_opts, CropConfig(opts.crop_margin, opts.crop_size))
    samples = _samples(opts)
    name = "_".join([opts.name, opts.split or "all", *([f"fold{opts.fold}"] if opts.fold is not None else []),
                     opts.extractor])
    name = re.sub(r"[^\w.-]", "_", name)
    manifest = Path(opts.manifest) if opts.manifest else Path(opts.out) / "manifests" / f"{name}.jsonl"
    bar, tick = _progress(len(samples))
    try:
        with PriorCache(opts.out, writable=True, shard_mb=opts.shard_mb) as cache:
            rep = prepare(samples, cache, spec, opts.video_sampling, workers=opts.workers, progress=tick)
            frames = prepare_frames(samples, cache, frames_pp, opts.video_sampling) if frames_pp else None
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
    print(f"cache {opts.out}: {stats['entries']} entries in {stats['shards']} shard(s), "
          f"{stats['bytes'] / 2**20:.1f} MB; manifest {manifest}")
    if opts.report:
        Path(opts.report).write_text(json.dumps({**rep.to_dict(), "cache": stats, "extractor": opts.extractor,
                                                 "policy": opts.video_sampling, "frames": frames}, indent=2) + "\n")
    return 3 if rep.failed else 0
