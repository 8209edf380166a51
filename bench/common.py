"""Shared helpers for the bench/p*.py scripts: machine info, timing, peak-RSS measurement, child processes, JSON.

Each measured variant runs in its own subprocess so its peak RSS is not polluted by another variant.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
FER2013 = ROOT.parent / "shared" / "data" / "fer2013"  # the default --root of the FER2013 benchmarks


def fer2013_missing(root: str, bench: str) -> bool:
    """True (after saying why ``bench`` skips) when FER2013 is not at ``root``: the FER2013 benches skip, not fail."""
    if Path(root).exists():
        return False
    print(f"{bench} skipped: needs FER2013 at {root} (pass --root; the layouts: docs/expression_model.md)")
    return True


def parse_candidates(specs: list[str], taken: tuple[str, ...], bench: str) -> dict[str, str]:
    """``--candidate`` values ``["FILE"]`` or ``["NAME=FILE", ...]`` -> {name: file}; a bare FILE is named
    ``candidate``. Exits with a message naming ``bench`` for a name in ``taken`` or twice, or a missing file."""
    out: dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        name, path = (name, path) if sep else ("candidate", spec)
        if name in out or name in taken:
            raise SystemExit(f"{bench}: candidate name {name!r} is taken; give each --candidate its own NAME=FILE")
        if not Path(path).is_file():
            raise SystemExit(f"{bench}: candidate weights {path} not found")
        out[name] = path
    return out


def add_publictest_args(ap) -> None:
    """--root, --candidate and --limit: the options of the benches that score weights files on PublicTest."""
    ap.add_argument("--root", default=str(FER2013), help="FER2013 folder")
    ap.add_argument("--candidate", metavar="[NAME=]FILE", action="append", default=[],
                    help="also score this emonet weights file (repeatable, each as NAME=FILE)")
    ap.add_argument("--limit", type=int, default=0, help="first N images of a seeded shuffle (default 0: all)")


def publictest_in_seeded_order(root: str, limit: int) -> tuple[list, list[int]]:
    """FER2013 PublicTest's samples and the indices to score: a seed-0 shuffle, its first ``limit`` (0 = all), so a
    --limit run scores a fixed subset."""
    import numpy as np

    from emollama.data.benchmarks import get_benchmark

    samples = get_benchmark("fer2013").load(root, "publictest").samples
    order = np.random.default_rng(0).permutation(len(samples)).tolist()
    return samples, order[:limit] if limit > 0 else order


def score_views(samples: list, order: list[int], models: dict, views: Callable, desc: str) -> dict:
    """Each model's label for every view of every PublicTest image in ``order``, through the analyzer's own face
    finder (``--faces auto``) and each model's own crop definition (`expression_input` with its ``cfg``).

    ``models``: {name: loaded `LearnedExpression`}; ``views(rgb, i)`` yields (key, (H, W, 3) uint8 image) for image
    index ``i`` in a fixed key order. Returns ``truth`` (N,), ``pred`` {(name, key): (N,) label index, -1 where the
    view has no face} and ``no_face`` {key: count}."""
    import numpy as np
    from tqdm.auto import tqdm

    from emollama.faces.detect import DetectorConfig, FaceDetector
    from emollama.faces.expression_net import expression_input
    from emollama.faces.find import FaceFinder
    from emollama.media.decode import load_image

    finder = FaceFinder(FaceDetector(DetectorConfig()), "auto", landmarks=False)
    labels = next(iter(models.values())).labels
    truth = np.array([labels.index(samples[i].label) for i in order])
    pred: dict = {}
    no_face: dict = {}
    for j, i in enumerate(tqdm(order, unit="img", desc=desc, mininterval=5)):
        for key, img in views(load_image(samples[i].media), int(i)):
            faces = finder.find(img)
            no_face[key] = no_face.get(key, 0) + (not faces)
            for name, m in models.items():
                row = pred.setdefault((name, key), np.full(len(order), -1))
                if faces:
                    row[j] = int(m.predict_batch(expression_input(img, faces[0].box, m.cfg)[None])[0].argmax())
    return {"truth": truth, "pred": pred, "no_face": no_face}


def metrics_rows(run_dir: Path) -> list[dict]:
    """The per-epoch rows of a training run's ``metrics.jsonl`` (expression loop or Trainer), in order."""
    return [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x.strip()]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_sha() -> str | None:
    res = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    return res.stdout.strip() or None


def _git_dirty() -> bool | None:
    """True when tracked files differ from HEAD: then ``git_sha`` alone does not reproduce the result."""
    res = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                         capture_output=True, text=True, check=False)
    return bool(res.stdout.strip()) if res.returncode == 0 else None


def machine_info() -> dict:
    """CPU, RAM, OS, Python and library versions, torch threads, UTC date, git sha and whether the tree was dirty."""
    import peft
    import torch
    import transformers

    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem_kb = next((int(x.split()[1]) for x in meminfo if x.startswith("MemTotal")), 0)
    return {
        "date_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "ram_gb": round(mem_kb / 2**20, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "torch_threads": torch.get_num_threads(),
        "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],  # > cores: other jobs shared the CPU
        "git_sha": _git_sha(),
        "git_dirty": _git_dirty(),
    }


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def rss_mb() -> float:
    """Current resident set size of this process (MB)."""
    return _status_kb("VmRSS") / 1024


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) to the current RSS; False if unsupported (then the peak
    includes model loading)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak RSS since the last `reset_peak_rss` (or since process start) in MB."""
    try:
        return _status_kb("VmHWM") / 1024
    except (OSError, KeyError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def settle() -> None:
    """Collect garbage so RSS baselines are comparable."""
    gc.collect()


def time_it(fn: Callable[[], object], warmup: int, repeats: int) -> dict:
    """Wall-clock seconds of ``fn`` after ``warmup`` untimed calls: median, min, max and every run.

    Also the process CPU seconds per run (all threads): less sensitive than wall time to other jobs sharing the
    cores, and the 1-minute load average before and after, so contended runs can be recognised.
    """
    for _ in range(warmup):
        fn()
    runs, cpu = [], []
    load_before = os.getloadavg()[0]
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        runs.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {
        "median_s": statistics.median(runs),
        "min_s": min(runs),
        "max_s": max(runs),
        "runs_s": [round(r, 4) for r in runs],
        "cpu_median_s": statistics.median(cpu),
        "loadavg_1min_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def wait_for_quiet(max_load: float, timeout_s: float, poll_s: float = 10.0) -> dict:
    """Wait (at most ``timeout_s``) until the 1-min load average is below ``max_load``; shared CI/dev machines run
    other jobs, and wall-clock timings of short workloads degrade far more than long ones under contention."""
    t0 = time.monotonic()
    while os.getloadavg()[0] >= max_load and time.monotonic() - t0 < timeout_s:
        time.sleep(poll_s)
    load = os.getloadavg()[0]
    return {"waited_s": round(time.monotonic() - t0, 1), "loadavg_1min": round(load, 2), "quiet": load < max_load}


def run_child(script: Path, args: list[str], timeout: float = 1800) -> dict:
    """Run ``script`` in a fresh interpreter with ``--child-out FILE`` and return the JSON it wrote."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "child.json"
        cmd = [sys.executable, str(script), *args, "--child-out", str(out)]
        print("  $", " ".join(cmd[1:]), flush=True)
        res = subprocess.run(cmd, timeout=timeout, check=False)
        if res.returncode or not out.exists():
            raise RuntimeError(f"child {' '.join(cmd)} failed with exit code {res.returncode}")
        return json.loads(out.read_text())


def write_json(path: Path, data: dict) -> Path:
    """Write ``data`` as indented JSON, creating the parent directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path
