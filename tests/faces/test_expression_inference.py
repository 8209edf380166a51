"""The learned expression network's inference path: BatchNorm folding + a frozen TorchScript trace must give the
training network's logits (tiny random configs; the shipped file when it is in the package)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emollama.faces._expression_torch import ExpressionNet, load_network, save_network, to_tensor
from emollama.faces.expression_net import DEFAULT_WEIGHTS, ExpressionNetConfig

TINY = ExpressionNetConfig(widths=(4, 8, 8, 16), blocks=(1, 1, 1, 1))


def _trained_like(cfg: ExpressionNetConfig, seed: int = 0) -> ExpressionNet:
    """A random network whose BatchNorms hold non-trivial running statistics, as after training."""
    torch.manual_seed(seed)
    net = ExpressionNet(cfg)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return net.eval()


def _crops(n: int, size: int = 48, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size), dtype=np.uint8)


@pytest.mark.parametrize("batch", [1, 3, 64])
@pytest.mark.parametrize("flip_tta", [True, False])
def test_traced_inference_matches_the_training_network(batch, flip_tta):
    cfg = ExpressionNetConfig(**{**TINY.__dict__, "flip_tta": flip_tta})
    ref_net = _trained_like(cfg)
    x = to_tensor(_crops(batch))
    with torch.inference_mode():
        ref = ref_net(x) if not flip_tta else (ref_net(x) + ref_net(x.flip(3))) / 2
        fast = _trained_like(cfg).fuse_for_inference()
        assert "_traced" in fast.__dict__, "the trace should succeed on a stock torch build"
        out = [fast.predict(x) for _ in range(3)][-1]  # past the profiling runs: the optimised plan
    assert out.shape == (batch, len(cfg.labels))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def _traced_then_eager(net: ExpressionNet, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`predict` face by face through the trace (only one face takes it), then the batch with the trace dropped
    (the eager path of the same fused network)."""
    assert "_traced" in net.__dict__
    with torch.inference_mode():
        traced = torch.cat([[net.predict(x[i : i + 1]) for _ in range(3)][-1] for i in range(len(x))])
        net.__dict__.pop("_traced")
        return traced, net.predict(x)


def test_the_trace_stays_out_of_the_state_dict_and_eager_predict_agrees():
    net = _trained_like(TINY).fuse_for_inference()
    assert not any(k.startswith("_traced") for k in net.state_dict())
    traced, eager = _traced_then_eager(net, to_tensor(_crops(5, seed=2)))
    torch.testing.assert_close(traced, eager, rtol=1e-4, atol=1e-5)


def test_loading_inside_inference_mode_still_traces(tmp_path):
    path = tmp_path / "tiny.safetensors"
    save_network(_trained_like(TINY), path, {"temperature": "1.0"}, fp16=False)
    with torch.inference_mode():  # a caller that loads lazily inside its own inference block
        net, _, _ = load_network(path)
        out = net.predict(to_tensor(_crops(2, seed=3)))
    assert "_traced" in net.__dict__ and torch.isfinite(out).all()
    batch_only, _, _ = load_network(path, trace=False)  # offline scoring compiles nothing
    assert "_traced" not in batch_only.__dict__
    torch.testing.assert_close(batch_only.predict(to_tensor(_crops(2, seed=3))).detach(), out, rtol=1e-4, atol=1e-5)


def test_a_failed_trace_falls_back_to_eager(monkeypatch, caplog):
    caplog.set_level("INFO", logger="emollama.faces._expression_torch")

    def broken(*a, **k):
        raise RuntimeError("no TorchScript here")

    monkeypatch.setattr(torch.jit, "trace", broken)
    net = _trained_like(TINY)
    ref = net.predict(to_tensor(_crops(2, seed=4)))
    fused = _trained_like(TINY).fuse_for_inference()
    assert "_traced" not in fused.__dict__ and "running eager" in caplog.text
    with torch.inference_mode():
        torch.testing.assert_close(fused.predict(to_tensor(_crops(2, seed=4))), ref.detach(), rtol=1e-4, atol=1e-5)


def test_a_graph_that_differs_from_eager_is_not_adopted(monkeypatch, caplog):
    caplog.set_level("INFO", logger="emollama.faces._expression_torch")
    real = torch.jit.freeze

    def drifting(mod):
        frozen = real(mod)

        class Off(torch.nn.Module):  # what a miscompiled graph would do
            def forward(self, x):
                return frozen(x) + 1e-2

        return Off()

    monkeypatch.setattr(torch.jit, "freeze", drifting)
    net = _trained_like(TINY).fuse_for_inference()
    assert "_traced" not in net.__dict__ and "differs from eager" in caplog.text
    assert not torch.jit.onednn_fusion_enabled()  # the process-wide switch is back as it was


def test_without_onednn_graph_the_packed_trace_is_used(monkeypatch, caplog):
    caplog.set_level("INFO", logger="emollama.faces._expression_torch")
    real = torch.jit.enable_onednn_fusion

    def picky(on: bool) -> None:
        if on:
            raise RuntimeError("no oneDNN Graph on this CPU")
        real(on)

    monkeypatch.setattr(torch.jit, "enable_onednn_fusion", picky)
    net = _trained_like(TINY).fuse_for_inference()
    assert "oneDNN Graph unavailable" in caplog.text and "running eager" not in caplog.text
    traced, eager = _traced_then_eager(net, to_tensor(_crops(4, seed=9)))
    torch.testing.assert_close(traced, eager, rtol=1e-4, atol=1e-5)


def test_only_one_face_goes_through_the_trace_and_a_failing_trace_is_dropped(caplog):
    net = _trained_like(TINY).fuse_for_inference()
    calls = []

    def broken(views):
        calls.append(views.shape[0])
        raise RuntimeError("oneDNN says no")

    object.__setattr__(net, "_traced", broken)
    x = to_tensor(_crops(3, seed=8))
    with torch.inference_mode():
        many = net.predict(x)  # a batch of faces: eager, the trace is not called
        assert calls == [] and "_traced" in net.__dict__
        one = net.predict(x[:1])  # one face: the trace fails, is dropped, eager answers
    assert calls == [2] and "_traced" not in net.__dict__ and "running eager" in caplog.text
    torch.testing.assert_close(one, many[:1], rtol=1e-4, atol=1e-5)


def test_changing_the_module_drops_the_stale_trace():
    x = to_tensor(_crops(2, seed=6))
    net = _trained_like(TINY).fuse_for_inference()
    zeros = {k: torch.zeros_like(v) for k, v in net.state_dict().items()}
    net.load_state_dict(zeros)
    assert "_traced" not in net.__dict__
    with torch.inference_mode():
        assert torch.equal(net.predict(x), torch.zeros(2, len(TINY.labels)))  # the new weights, not the frozen ones
    for change in (lambda n: n.double(), lambda n: n.to(torch.float32), lambda n: n.train()):
        fused = _trained_like(TINY).fuse_for_inference()
        change(fused)
        assert "_traced" not in fused.__dict__
    fused = _trained_like(TINY).fuse_for_inference().double()
    with torch.inference_mode():
        assert fused.predict(x.double()).dtype == torch.float64


def test_a_traced_network_pickles_deepcopies_and_retraces():
    import copy
    import io
    import pickle

    net = _trained_like(TINY).fuse_for_inference()
    x = to_tensor(_crops(3, seed=7))
    with torch.inference_mode():
        want = net.predict(x)
    torch.save(net, io.BytesIO())  # whole-module saving pickles too (loading it back needs weights_only=False)
    for other in (pickle.loads(pickle.dumps(net)), copy.deepcopy(net)):
        assert "_traced" in other.__dict__ and "_retrace" not in other.__dict__
        with torch.inference_mode():
            torch.testing.assert_close(other.predict(x), want, rtol=1e-4, atol=1e-5)
    assert "_traced" in net.__dict__  # pickling left the original as it was


@pytest.mark.skipif(not DEFAULT_WEIGHTS.is_file(), reason="the shipped expression weights are not in the package")
def test_the_shipped_network_traced_and_eager_agree():
    net, _, _ = load_network(DEFAULT_WEIGHTS)
    traced, eager = _traced_then_eager(net, to_tensor(_crops(16, seed=5)))
    torch.testing.assert_close(traced, eager, rtol=1e-4, atol=1e-5)
    assert (traced.argmax(1) == eager.argmax(1)).all()
