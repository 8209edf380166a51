"""Torch half of `emollama.faces.expression_net` (kept apart so importing the analyzer never imports torch early)."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emollama.faces.expression_net import ExpressionNetConfig

log = logging.getLogger(__name__)


class _Block(nn.Module):
    """Basic residual block (two 3x3 convs); a 1x1 projection when the shape changes."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.proj = None
        if stride != 1 or cin != cout:
            self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + (x if self.proj is None else self.proj(x)))


class ExpressionNet(nn.Module):
    """(B, 1, S, S) grey in [0, 1] -> (B, n_labels) logits; each image is standardised first."""

    def __init__(self, cfg: ExpressionNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.widths
        self.stem = nn.Sequential(nn.Conv2d(1, w[0], 3, 1, 1, bias=False), nn.BatchNorm2d(w[0]), nn.ReLU())
        layers, cin = [], w[0]
        for i, (c, n) in enumerate(zip(w, cfg.blocks, strict=True)):
            for j in range(n):
                layers.append(_Block(cin, c, 2 if (i > 0 and j == 0) else 1))
                cin = c
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(cin, len(cfg.labels)))

    def fuse_for_inference(self, trace: bool = True) -> ExpressionNet:
        """Fold every BatchNorm into its convolution and switch to channels-last (eval only; the logits stay those of
        the training network, to the 1e-5 that tests/faces/test_expression_inference.py asserts). With ``trace``,
        `predict` then runs a frozen TorchScript trace of `forward` (`_trace`), until the module is changed
        (`_drop_trace`)."""
        from torch.nn.utils.fusion import fuse_conv_bn_eval

        self.eval()
        self.stem[0], self.stem[1] = fuse_conv_bn_eval(self.stem[0], self.stem[1]), nn.Identity()
        for b in self.body:
            b.conv1, b.bn1 = fuse_conv_bn_eval(b.conv1, b.bn1), nn.Identity()
            b.conv2, b.bn2 = fuse_conv_bn_eval(b.conv2, b.bn2), nn.Identity()
            if b.proj is not None:
                b.proj[0], b.proj[1] = fuse_conv_bn_eval(b.proj[0], b.proj[1]), nn.Identity()
        self.to(memory_format=torch.channels_last)
        if trace:
            self._trace()
        return self

    def _trace(self) -> None:
        """Compile the one-face input (the crop and its mirror image: batch 2; batch 1 without flip TTA) ahead of
        time for `predict`: a frozen TorchScript trace whose convolutions, adds and ReLUs oneDNN Graph fuses, on
        weights packed once (eager repacks them at every call); where that fails, the same trace
        with oneDNN's packed convolutions only. Bench P7 times it against eager, interleaved. Other batch sizes stay
        eager (offline scoring; a compiled plan is built per input shape).

        TorchScript is deprecated in torch 2.13 but the only ahead-of-time path without a C++ toolchain or a compile
        pause at load (`torch.compile`). A graph is adopted only if it matches eager to 1e-4 after its profiling
        runs; where both fail, `predict` stays eager: the same numbers, slower."""
        x = torch.rand(2 if self.cfg.flip_tta else 1, 1, self.cfg.size, self.cfg.size)
        x = x.contiguous(memory_format=torch.channels_last)
        for fuse in (True, False):
            try:
                traced = self._compiled(x, fuse)
            except Exception as e:  # noqa: BLE001 - any failure of an optional speed-up: the next way, or eager
                log.info("expression network: %s unavailable (%s)", "oneDNN Graph" if fuse else "TorchScript", e)
                continue
            object.__setattr__(self, "_traced", traced)  # not a submodule: stays out of state_dict and .to()
            return
        log.info("expression network: running eager")

    def _compiled(self, x: torch.Tensor, fuse: bool) -> torch.jit.ScriptModule:
        """The frozen trace of `forward` on ``x``'s shape, checked against eager; raises when it differs."""
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore", DeprecationWarning)  # users cannot act on it; the fallback can
            was = torch.jit.onednn_fusion_enabled()
            torch.jit.enable_onednn_fusion(fuse)  # process-wide: set only while this graph is profiled and compiled
            try:
                traced = torch.jit.freeze(torch.jit.trace(self, x))
                if not fuse:
                    traced = torch.jit.optimize_for_inference(traced)
                want = self(x)
                # the first calls profile the graph and the next run the compiled plan: all must equal eager
                worst = max(float((traced(x) - want).abs().max()) for _ in range(3))
            finally:
                torch.jit.enable_onednn_fusion(was)
        if not worst <= 1e-4:
            raise RuntimeError(f"the compiled graph differs from eager by {worst:.2g}")
        return traced

    def _drop_trace(self) -> None:
        """Forget the trace: it holds a frozen copy of the weights, so any change to the module must drop it."""
        self.__dict__.pop("_traced", None)

    def _apply(self, fn, recurse: bool = True):  # .to(), .half(), .double(), .cpu(): new tensors, a stale trace
        self._drop_trace()
        return super()._apply(fn, recurse)

    def train(self, mode: bool = True) -> ExpressionNet:  # training changes the weights in place
        if mode:
            self._drop_trace()
        return super().train(mode)

    def load_state_dict(self, *args, **kwargs):  # new weights: the frozen copy would be stale
        self._drop_trace()
        return super().load_state_dict(*args, **kwargs)

    def __getstate__(self) -> dict:
        """Pickle (and deepcopy) without the trace, which TorchScript cannot serialise; `__setstate__` retraces."""
        state = self.__dict__.copy()
        state["_retrace"] = state.pop("_traced", None) is not None
        return state

    def __setstate__(self, state: dict) -> None:
        retrace = state.pop("_retrace", False)
        super().__setstate__(state)
        if retrace:
            self._trace()

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Inference logits (B, n_labels): with ``cfg.flip_tta`` the mean over the crop and its mirror image."""
        x = x.contiguous(memory_format=torch.channels_last)
        views = torch.cat([x, x.flip(3)]) if self.cfg.flip_tta else x
        logits = self._one_face(views) if x.shape[0] == 1 else None
        logits = self(views) if logits is None else logits
        return logits.view(2, x.shape[0], -1).mean(0) if self.cfg.flip_tta else logits

    def _one_face(self, views: torch.Tensor) -> torch.Tensor | None:
        """Logits of one face's views through the trace; None without one. A trace that fails at run time (it
        passed at load) is dropped, with a warning, and the caller runs eager."""
        traced = self.__dict__.get("_traced")
        if traced is None or views.dtype != torch.float32:
            return None
        try:
            return traced(views)
        except RuntimeError as e:
            log.warning("expression network: the compiled graph failed (%s); running eager from now on", e)
            self._drop_trace()
            return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = x.std(dim=(1, 2, 3), keepdim=True).clamp_min(1e-2)  # near-blank crops stay finite
        h = self.body(self.stem((x - mean) / std))
        return self.head(h.mean(dim=(2, 3)))


def to_tensor(crops: np.ndarray) -> torch.Tensor:
    """(B, S, S) uint8 -> (B, 1, S, S) float32 in [0, 1]."""
    return torch.from_numpy(np.array(crops, dtype=np.uint8, copy=True)).float().div_(255.0).unsqueeze(1)


def predict_probs(net: ExpressionNet, crops: np.ndarray, temperature: float = 1.0,
                  threads: int | None = None) -> np.ndarray:
    """(B, S, S) uint8 crops -> (B, n_labels) float32 softmax(logits / temperature)."""
    old = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        with torch.inference_mode():
            logits = net.predict(to_tensor(crops))
        return torch.softmax(logits.double() / temperature, dim=1).float().numpy()
    finally:
        if threads:
            torch.set_num_threads(old)


def save_network(net: ExpressionNet, path: Path, metadata: dict[str, str], fp16: bool = True) -> None:
    """Weights (fp16 by default) + config and ``metadata`` (strings) as one safetensors file, written atomically."""
    from safetensors.torch import save_file

    tensors = {k: (v.half() if fp16 and v.is_floating_point() else v).contiguous()
               for k, v in net.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata={**metadata, "config": net.cfg.to_json()})
    tmp.replace(path)


def read_header(path: Path) -> tuple[ExpressionNetConfig, dict[str, str]]:
    """(the network's stored config, the file's metadata), without reading the tensors.

    Every file `save_network` wrote carries its config; one without it is not an emonet file, and guessing a
    shape (the defaults change with the recipe) would only fail later with a size mismatch."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = dict(f.metadata() or {})
    if "config" not in meta:
        raise ValueError(f"{path} has no network config in its metadata, so it was not written by `emollama "
                         f"train-expression`; pass a file that was, or omit the path for the packaged weights")
    return ExpressionNetConfig.from_json(meta["config"]), meta


def load_network(path: Path, trace: bool = True) -> tuple[ExpressionNet, ExpressionNetConfig, dict[str, str]]:
    """(network in eval mode, float32, its config, the file's metadata) from a safetensors file; ``trace=False``
    for callers that only score batches, which never take the compiled one-face path (`ExpressionNet._trace`)."""
    from safetensors.torch import load_file

    cfg, meta = read_header(path)
    net = ExpressionNet(cfg)
    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()}
    net.load_state_dict(state)
    return net.fuse_for_inference(trace), cfg, meta
