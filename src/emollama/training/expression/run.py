"""The whole `emollama train-expression` recipe: data -> crops -> training -> calibration -> weights + summary."""

from __future__ import annotations

import json
import logging
import platform
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from emollama.faces.expression_net import ExpressionNetConfig
from emollama.training.callbacks import git_sha
from emollama.training.expression.loop import (
    LoopConfig,
    calibrate_and_export,
    config_dict,
    resolve_compile,
    resolve_precision,
    train_loop,
)

log = logging.getLogger(__name__)

WEIGHTS_NAME = "emonet_fer2013.safetensors"


def crop_cache_dir(out: Path, net: ExpressionNetConfig) -> Path:
    """The crop cache of a run folder for ``net``'s crop definition: ``crops``, or ``crops_masked`` (`--context
    mask`), so the two never refuse each other's cache."""
    return out / ("crops_masked" if net.mask_context else "crops")


@dataclass
class ExpressionRecipe:
    """Where the data is, where the run goes, and how to train. Defaults are the shipped recipe."""

    root: Path  # FER2013: image folders, fer2013.csv, or the folder with the .tar.gz
    out: Path = Path("runs/expression_fer2013")
    val_fraction: float = 0.05  # of train, stratified: selects the epoch and fits the temperature (1,437 images)
    workers: int = 2  # processes for the cropping pass
    export: Path | None = None  # also copy the weights here (e.g. the package's resources/expression/)
    command: str = ""  # recorded in the weights' metadata and the summary
    loop: LoopConfig = field(default_factory=LoopConfig)
    # also score PublicTest after every epoch (metrics.jsonl only; never used to choose). Off by default: it adds
    # ~10 s an epoch (~8 min of a 50-epoch run) and the weights are the same either way (no RNG, eval mode)
    test_every_epoch: bool = False


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory in the process instead of returning it to the kernel; True if it took.

    Why: every training step allocates and frees the same large activation buffers, and glibc's defaults give them
    back (heap trim, munmap), so each step page-faults them in again. Measured on 3 epochs of the shipped recipe
    (2 cores, crops cached): 26 M -> 6.7 M minor faults, 54 s -> 14 s system time, 328 s -> 286 s wall, peak RSS
    1.6 -> 1.7 GB, and bit-identical weights (the allocator never changes arithmetic). Over 10 epochs the system
    time stayed ~1.7 s a minute (the shipped run: ~10) while the epochs, compute-bound, stayed ~92 s. A no-op on
    other C libraries.
    """
    import ctypes
    import ctypes.util

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = [libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1),  # the largest int: never trim the heap top
              libc.mallopt(_M_TOP_PAD, 256 << 20),  # grow the heap in 256 MB steps
              libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)]  # glibc's maximum: buffers below it come from the heap
    except (OSError, AttributeError):
        return False
    return all(r == 1 for r in ok)


def split_val(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit indices, val indices): a stratified, seeded split of ``labels`` (N,)."""
    rng = np.random.default_rng(seed)
    val = []
    for k in np.unique(labels):
        idx = np.flatnonzero(labels == k)
        rng.shuffle(idx)
        val.extend(idx[: int(round(len(idx) * fraction))].tolist())
    val_idx = np.array(sorted(val), dtype=np.int64)
    fit_idx = np.setdiff1d(np.arange(len(labels)), val_idx)
    return fit_idx, val_idx


def run_recipe(r: ExpressionRecipe, progress: bool = True) -> dict:
    """Run (or resume) the recipe; returns the summary also written to ``out/summary.json``."""
    from emollama.data.benchmarks import DatasetLayoutError, get_benchmark
    from emollama.training.expression.crops import build_crops

    t0 = time.perf_counter()
    log.debug("glibc keeps freed memory: %s", keep_freed_memory())
    requested = r.loop.precision
    r = replace(r, loop=replace(r.loop, precision=resolve_precision(r.loop.precision),  # the summary names them
                                compile=resolve_compile(r.loop.compile)))
    if requested == "auto" and r.loop.precision == "fp32":
        log.warning("this CPU has no native bfloat16 (AVX512-BF16 or AMX), so training runs in fp32: about 2.3x "
                    "the time of a bf16 run, and other weights than the shipped ones. Fewer --epochs shorten it; "
                    "the time left is shown after the first epoch")
    bench = get_benchmark("fer2013")
    train = bench.load(r.root, "train").samples
    try:  # PublicTest is only reported, never used to choose: a copy without test/ still trains
        test = bench.load(r.root, "publictest").samples
    except DatasetLayoutError as err:
        log.warning("no PublicTest to report on: %s", err)
        test = []
    if not train:
        raise ValueError(f"FER2013 at {r.root} has no train images; see docs/expression_model.md")
    cache = crop_cache_dir(r.out, r.loop.net)
    crops_train = build_crops(train, cache / "train", workers=r.workers, net=r.loop.net, progress=progress)
    crops_test = build_crops(test, cache / "publictest", workers=r.workers, net=r.loop.net,
                             progress=progress) if test else None
    fit_idx, val_idx = split_val(crops_train.labels, r.val_fraction, r.loop.seed)
    fit = (crops_train.crops[fit_idx], crops_train.labels[fit_idx])
    val = (crops_train.crops[val_idx], crops_train.labels[val_idx])
    test_xy = (crops_test.crops, crops_test.labels) if crops_test is not None else None
    t_crops = time.perf_counter() - t0
    net = train_loop(r.loop, r.out, fit, val, test_xy if r.test_every_epoch else None, progress=progress)
    sha = git_sha() or "unknown"  # '+dirty' when the checkout has uncommitted changes
    meta = {"data": "FER2013 train (Kaggle image-folder release), "
                    f"{len(fit_idx)} fit / {len(val_idx)} held-out val images",
            "licence": "trained on FER2013 (ICML 2013 challenge; research use, image copyright with owners)",
            "command": r.command, "git_sha": sha, "seed": str(r.loop.seed)}
    weights = r.out / WEIGHTS_NAME
    reports = {"publictest": test_xy} if test_xy is not None else {}
    metrics = calibrate_and_export(net, weights, val, reports, meta)
    if r.export is not None:
        r.export.parent.mkdir(parents=True, exist_ok=True)
        r.export.write_bytes(weights.read_bytes())
    summary = {"metrics": metrics, "weights": str(weights), "export": str(r.export) if r.export else None,
               "git_sha": sha, "command": r.command, "config": config_dict(r.loop), "val_fraction": r.val_fraction,
               "crop_sources": {"train": _counts(crops_train.sources),
                                "publictest": _counts(crops_test.sources) if crops_test is not None else {}},
               "seconds": {"crops_this_call": round(t_crops, 1), "this_call": round(time.perf_counter() - t0, 1),
                           "training_all_epochs": round(_epoch_seconds(r.out / "metrics.jsonl"), 1)},
               "machine": {"cpu": platform.processor() or platform.machine(), "threads": r.loop.threads}}
    (r.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def _epoch_seconds(metrics: Path) -> float:
    """Training seconds summed over every epoch's line (so a resumed run reports the whole run's time)."""
    if not metrics.is_file():
        return 0.0
    return sum(json.loads(x).get("seconds", 0.0) for x in metrics.read_text().splitlines() if x.strip())


def _counts(sources: np.ndarray) -> dict[str, int]:
    u, c = np.unique(sources, return_counts=True)
    return {str(k): int(v) for k, v in zip(u, c, strict=True)}
