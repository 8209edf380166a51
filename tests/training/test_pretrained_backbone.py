"""bench/imagenet_backbone.py (P14's pretrained network): torchvision's parameter names, and the grey stem."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from emollama.faces.expression_net import ExpressionNetConfig  # noqa: E402
from imagenet_backbone import MobileNetV2, PretrainedExpressionNet, load_imagenet  # noqa: E402


def _weights(tmp_path):
    torch.manual_seed(0)
    net = MobileNetV2().eval()
    for m in net.modules():  # non-trivial BatchNorm statistics, so folding has something to fold
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    path = tmp_path / "mnv2.pth"
    torch.save(net.state_dict(), path)
    return net, path


def test_layout_matches_torchvision_names_and_shapes(tmp_path):
    net, path = _weights(tmp_path)
    sd = net.state_dict()
    # a few of torchvision's own keys and shapes (mobilenet_v2-b0353104.pth): 314 tensors in all
    assert sd["features.0.0.weight"].shape == (32, 3, 3, 3)
    assert sd["features.1.conv.1.weight"].shape == (16, 32, 1, 1)
    assert sd["features.17.conv.3.running_var"].shape == (320,)
    assert sd["features.18.0.weight"].shape == (1280, 320, 1, 1)
    assert sd["classifier.1.weight"].shape == (1000, 1280)
    assert len(sd) == 314
    assert torch.equal(load_imagenet(path).features[5].conv[1][0].weight, net.features[5].conv[1][0].weight)


def test_grey_stem_equals_the_rgb_network_on_a_grey_image(tmp_path):
    net, path = _weights(tmp_path)
    cfg = ExpressionNetConfig()
    expr = PretrainedExpressionNet(cfg, path, stem_stride=2, cut=14).eval()
    x = torch.rand(2, 1, 48, 48)
    z = (x - x.mean(dim=(1, 2, 3), keepdim=True)) / x.std(dim=(1, 2, 3), keepdim=True)
    with torch.no_grad():
        ref = net.features[:14](z.expand(-1, 3, -1, -1)).mean(dim=(2, 3))
        got = expr.features(z).mean(dim=(2, 3))
        torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-5)
        logits = expr.predict(x)
        assert logits.shape == (2, len(cfg.labels))
        torch.testing.assert_close(expr.fuse_for_inference().predict(x), logits, rtol=1e-4, atol=1e-5)
