"""Seeded, resumable training of the expression network on cached crops, then calibration and export.

Resume rule: a checkpoint is written atomically after every epoch, and each epoch draws its order, its
augmentation and its dropout from generators seeded by (seed, epoch). So a run killed at any point and resumed
with the same command ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from emollama.evaluation.metrics import compute_metrics
from emollama.faces._expression_torch import ExpressionNet, load_network, save_network, to_tensor
from emollama.faces.expression_net import ExpressionNetConfig
from emollama.training.expression.augment import AugmentConfig, augment
from emollama.training.expression.calibrate import ece, fit_temperature, softmax

log = logging.getLogger(__name__)


@dataclass
class LoopConfig:
    """Optimisation settings. Units: epochs over the training crops, learning rate per step."""

    # 52 for the 68.9 %-WAR model; 70 on that network alone: +0.7 WAR on PublicTest, 0 held out (not shipped)
    epochs: int = 70
    batch_size: int = 128
    lr: float = 0.1  # peak of the one-cycle schedule (SGD, Nesterov momentum 0.9)
    weight_decay: float = 5e-4
    label_smoothing: float = 0.1
    class_weight_power: float = 0.3  # loss weight of class k = (1 / frequency_k) ** power, mean 1: helps disgust
    # mixup's Beta(alpha, alpha) parameter: each batch is blended with a shuffled copy of itself and the loss with
    # its labels (0 = off, the shipped recipe). Regularises towards linear behaviour between faces
    mixup: float = 0.0
    seed: int = 0
    threads: int = 2
    # "bf16": autocast convolutions to bfloat16 (weights, optimiser and loss stay float32): 2.3x the images/s of
    # "fp32" on a CPU with native bf16 (AVX512-BF16 or AMX), which is what made 50 epochs affordable (28 in fp32;
    # measured wall times in docs/expression_model.md); "auto" = bf16 where the CPU has it natively, else fp32
    # (emulated bf16 is slower than fp32).
    precision: str = "auto"
    # "on": run the training forward/backward through torch.compile (Inductor fuses BatchNorm, ReLU and the
    # residual adds): on 2 Intel cores with AMX 1.06x the images/s of eager for the shipped network, 1.15x for the
    # previous one (bench/p11_expression_compile.py), under a minute to compile once per call. "auto" = on where a
    # C++ compiler is on PATH (Inductor needs one), else "off".
    compile: str = "auto"
    net: ExpressionNetConfig = field(default_factory=ExpressionNetConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)


def predict_logits(net: ExpressionNet, crops: np.ndarray, batch: int = 512, tta: bool = True) -> np.ndarray:
    """(N, S, S) uint8 -> (N, K) float32 logits, eval mode; ``tta``: the network's inference path (flip TTA as
    configured), else one plain forward pass."""
    net.eval()
    out = []
    with torch.inference_mode():
        for i in range(0, len(crops), batch):
            x = to_tensor(crops[i : i + batch])
            out.append((net.predict(x) if tta else net(x)).float().numpy())
    return np.concatenate(out) if out else np.zeros((0, len(net.cfg.labels)), np.float32)


def _eval(net: ExpressionNet, crops: np.ndarray, labels: np.ndarray) -> dict:
    pred = predict_logits(net, crops, tta=False).argmax(axis=1)  # epoch selection: one plain pass
    r = compute_metrics(labels, pred, len(net.cfg.labels))
    return {"war": round(r["war"], 4), "uar": round(r["uar"], 4)}


PRECISIONS = ("auto", "bf16", "fp32")


def resolve_precision(precision: str) -> str:
    """"auto" -> "bf16" when oneDNN runs bfloat16 natively on this CPU, else "fp32"; others are checked and kept."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if precision != "auto":
        return precision
    native = torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    return "bf16" if native else "fp32"


COMPILES = ("auto", "on", "off")


def resolve_compile(mode: str) -> str:
    """"auto" -> "on" when a C++ compiler (``$CXX``, g++, c++ or clang++) is on PATH, else "off"; others checked."""
    import os
    import shutil

    if mode not in COMPILES:
        raise ValueError(f"compile {mode!r}: use one of {', '.join(COMPILES)}")
    if mode != "auto":
        return mode
    names = [os.environ.get("CXX", ""), "g++", "c++", "clang++"]
    return "on" if any(n and shutil.which(n) for n in names) else "off"


def _class_weights(labels: np.ndarray, k: int, power: float) -> torch.Tensor:
    freq = np.bincount(labels, minlength=k).astype(np.float64) / len(labels)
    w = (1.0 / np.clip(freq, 1e-6, None)) ** power
    return torch.tensor(w / w.mean(), dtype=torch.float32)


def _forward(fwd, x: torch.Tensor, compiled: bool) -> torch.Tensor:
    """``fwd(x)``; a failure inside torch.compile's machinery becomes an error that says how to train without it."""
    try:
        return fwd(x)
    except Exception as err:  # Inductor's own messages (no compiler, missing headers) are long and say no fix
        if compiled and type(err).__module__.startswith("torch._"):
            raise RuntimeError(f"torch.compile failed ({type(err).__name__}: see above); train without it: add "
                               "--compile off (a new --out: a run started with it must finish with it)") from err
        raise


def _atomic_save(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def _check_settings(saved: str | None, current: str, ckpt: Path) -> None:
    """Refuse to resume a checkpoint written with other settings (it would mix two runs' schedules)."""
    if saved is None:  # a checkpoint from before settings were recorded
        return
    old, new = _with_later_defaults(json.loads(saved)), json.loads(current)
    if old == new:
        return
    diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    raise ValueError(f"{ckpt} was written with other settings ({', '.join(diff)}: {[old.get(k) for k in diff]} "
                     f"then, {[new.get(k) for k in diff]} now); rerun with the same options to resume, or use "
                     f"another --out for a new run")


def _truncate_metrics(path: Path, start_epoch: int) -> None:
    """Drop metric lines of epochs >= start_epoch (written before a kill), so a resume leaves no duplicates."""
    if not path.is_file():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln).get("epoch", -1) < start_epoch]
    path.write_text("".join(ln + "\n" for ln in keep))


def train_loop(cfg: LoopConfig, out: Path, fit: tuple[np.ndarray, np.ndarray], val: tuple[np.ndarray, np.ndarray],
               test: tuple[np.ndarray, np.ndarray] | None = None, progress: bool = True,
               build: Callable[[ExpressionNetConfig], torch.nn.Module] = ExpressionNet) -> ExpressionNet:
    """Train on ``fit`` = ((N, S, S) uint8 crops, (N,) labels); select the epoch with the best ``val`` WAR.

    ``test`` is only evaluated and logged (never used to choose anything). Returns the selected network.
    ``build(cfg.net)`` makes the network: `ExpressionNet` in the recipe; a benchmark may pass another module with
    the same interface (``cfg``, ``forward`` and ``predict`` on (B, 1, S, S) grey in [0, 1]), e.g. a pretrained
    backbone (bench/p14_expression_pretrained.py).
    """
    from tqdm.auto import tqdm

    torch.set_num_threads(cfg.threads)
    # recorded resolved: a resume must match them (compiled kernels round differently from eager ones)
    cfg = replace(cfg, precision=resolve_precision(cfg.precision), compile=resolve_compile(cfg.compile))
    log.info("training precision: %s, torch.compile: %s", cfg.precision, cfg.compile)
    out.mkdir(parents=True, exist_ok=True)
    ckpt, best_path, metrics = out / "checkpoint.pt", out / "best.pt", out / "metrics.jsonl"
    torch.manual_seed(cfg.seed)
    net = build(cfg.net).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)
    steps = (len(fit[0]) + cfg.batch_size - 1) // cfg.batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps, pct_start=0.15)
    start, best = 0, -1.0
    settings = resume_settings(cfg, len(fit[1]), len(val[1]))
    if ckpt.is_file():
        state = torch.load(ckpt, weights_only=True)
        _check_settings(state.get("settings"), settings, ckpt)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start, best = int(state["epoch"]) + 1, float(state["best"])
        log.info("resuming after epoch %d (best val WAR %.4f)", start - 1, best)
    _truncate_metrics(metrics, start)
    weights = _class_weights(fit[1], len(cfg.net.labels), cfg.class_weight_power)
    x_all, y_all = torch.from_numpy(fit[0]), torch.from_numpy(fit[1])
    train_fwd = torch.compile(net) if cfg.compile == "on" else net  # shares net's parameters; eval stays eager
    # the whole run's bar (its ETA is the one a user waits on); each epoch's steps get a bar below it
    run_bar = tqdm(total=cfg.epochs, initial=start, desc="training", unit="epoch", disable=not progress, position=0)
    call_seconds: list[float] = []  # this call's epochs, held-out pass included: a resumed run's ETA uses its own
    for epoch in range(start, cfg.epochs):
        t_epoch = time.perf_counter()
        g = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
        torch.manual_seed(cfg.seed * 100_003 + epoch)  # dropout
        order = torch.randperm(len(y_all), generator=g)
        mix_rng = np.random.default_rng([cfg.seed, epoch]) if cfg.mixup > 0 else None  # blend weights, seeded
        net.train()
        t0, seen, loss_sum = time.perf_counter(), 0, 0.0
        bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="step", disable=not progress,
                   leave=False, position=1)
        for s in bar:
            idx = order[s * cfg.batch_size : (s + 1) * cfg.batch_size]
            x = augment(x_all[idx].float().div_(255.0).unsqueeze(1), g, cfg.augment)
            partner = None
            if cfg.mixup > 0:
                lam, partner = float(mix_rng.beta(cfg.mixup, cfg.mixup)), torch.randperm(len(idx), generator=g)
                x = lam * x + (1.0 - lam) * x[partner]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
                logits = _forward(train_fwd, x.contiguous(memory_format=torch.channels_last), cfg.compile == "on")
            loss = F.cross_entropy(logits.float(), y_all[idx], weight=weights, label_smoothing=cfg.label_smoothing)
            if partner is not None:  # mixup: the loss is blended like the images
                loss = lam * loss + (1.0 - lam) * F.cross_entropy(logits.float(), y_all[idx][partner],
                                                                  weight=weights, label_smoothing=cfg.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            seen += len(idx)
            loss_sum += loss.item() * len(idx)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}")
        bar.close()
        dt = time.perf_counter() - t0
        row = {"epoch": epoch, "loss": round(loss_sum / seen, 4), "lr": sched.get_last_lr()[0],
               "seconds": round(dt, 1), "samples_per_s": round(seen / dt, 1), "val": _eval(net, *val)}
        if test is not None:
            row["publictest"] = _eval(net, *test)
        if row["val"]["war"] > best:
            best = row["val"]["war"]
            _atomic_save({"model": net.state_dict(), "epoch": epoch}, best_path)
        row["best_val_war"] = best
        with metrics.open("a") as f:
            f.write(json.dumps(row) + "\n")
        _atomic_save({"model": net.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                      "epoch": epoch, "best": best, "settings": settings}, ckpt)
        call_seconds.append(time.perf_counter() - t_epoch)
        left = eta_seconds(call_seconds, cfg.epochs - epoch - 1)
        log.info("%s", epoch_line(row, cfg.epochs, left))
        log.debug("epoch %d: %s", epoch + 1, row)
        run_bar.set_postfix(val_war=f"{row['val']['war']:.4f}", best=f"{best:.4f}")
        run_bar.update(1)
    run_bar.close()
    selected = build(cfg.net)
    selected.load_state_dict(torch.load(best_path, weights_only=True)["model"])
    return selected.eval()


def calibrate_and_export(net: ExpressionNet, path: Path, val: tuple[np.ndarray, np.ndarray],
                         reports: dict[str, tuple[np.ndarray, np.ndarray]], metadata: dict[str, str]) -> dict:
    """Fit the temperature on ``val``, write fp16 weights to ``path``, then measure the file itself.

    Metrics (WAR, UAR, per-class recall, NLL-free ECE before/after scaling) come from the exported fp16 weights
    reloaded from disk, i.e. exactly what ships. Returns {split: metrics} plus the temperature.
    """
    temperature = fit_temperature(predict_logits(net, val[0]), val[1])
    save_network(net, path, {**metadata, "temperature": f"{temperature:.6f}"})
    shipped, _, _ = load_network(path, trace=False)  # batches only: the one-face compiled path is unused
    result: dict = {"temperature": round(temperature, 4)}
    for name, (crops, labels) in {"val": val, **reports}.items():
        logits = predict_logits(shipped, crops)
        r = compute_metrics(labels, logits.argmax(axis=1), len(net.cfg.labels))
        result[name] = {"war": round(r["war"], 4), "uar": round(r["uar"], 4), "macro_f1": round(r["macro_f1"], 4),
                        "recall": [round(x, 4) for x in r["per_class_recall"]],
                        "ece_raw": round(ece(softmax(logits), labels), 4),
                        "ece": round(ece(softmax(logits, temperature), labels), 4), "n": int(len(labels))}
    return result


def eta_seconds(epoch_seconds: list[float], remaining: int) -> float:
    """Seconds left for ``remaining`` epochs at the median pace of ``epoch_seconds`` (this call's epochs, in s).

    The median, since the first epoch of a call also compiles the network (66 s vs 44-52 s in the 463d7cb run)."""
    return float(np.median(epoch_seconds)) * remaining if epoch_seconds and remaining > 0 else 0.0


def epoch_line(row: dict, epochs: int, seconds_left: float) -> str:
    """One line a user reads per epoch (the log's, and the whole story under --no-progress)."""
    left = f"about {seconds_left / 60:.0f} min left" if seconds_left >= 60 else (
        f"about {seconds_left:.0f} s left" if seconds_left > 0 else "last epoch")
    test = f", PublicTest WAR {row['publictest']['war']:.4f}" if "publictest" in row else ""
    return (f"epoch {row['epoch'] + 1}/{epochs}: loss {row['loss']:.3f}, held-out WAR {row['val']['war']:.4f} "
            f"UAR {row['val']['uar']:.4f} (best WAR {row['best_val_war']:.4f}){test}; {row['seconds']:.0f} s, "
            f"{row['samples_per_s']:.0f} images/s; {left}")


def resume_settings(cfg: LoopConfig, n_fit: int, n_val: int) -> str:
    """What a checkpoint must match to be resumed, as JSON. Threads change only speed, so they are left out; the
    number of fit / val images catches another --val-fraction or dataset."""
    d = {k: v for k, v in config_dict(cfg).items() if k != "threads"}
    return json.dumps({**d, "n_fit": n_fit, "n_val": n_val}, sort_keys=True)


# what a run did before each later option existed (fill's default is no longer that: the recipe now fills 25 %)
_BEFORE_OPTIONS = LoopConfig(mixup=0.0, augment=AugmentConfig(fill=0.0, yaw_deg=0.0),
                             net=ExpressionNetConfig(mask_context=False))


def _with_later_defaults(saved: dict) -> dict:
    """A checkpoint's recorded settings with the options added since (mixup, the net's mask_context, the margin
    fill, the head turn) filled in as they behaved before the option, so such a run resumes as it began."""
    base = json.loads(resume_settings(_BEFORE_OPTIONS, 0, 0))
    out = {**base, **saved}
    for k, v in base.items():
        if isinstance(v, dict) and isinstance(saved.get(k), dict):
            out[k] = {**v, **saved[k]}
    return out


def config_dict(cfg: LoopConfig) -> dict:
    return asdict(cfg)
