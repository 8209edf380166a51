"""The head-turn (yaw) augmentation: the cylinder map, its place in the geometry, and the option's plumbing."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from emollama.training.expression import loop as L
from emollama.training.expression.augment import AugmentConfig, augment, geometric, yaw_source_x

# geometry only, so a test sees the head turn alone
TURN_ONLY = AugmentConfig(flip=0, rotate_deg=0, scale=(1, 1), shift=0, fill=0, yaw_deg=30, yaw_p=1.0)


def test_no_turn_is_the_identity_and_the_map_is_continuous_and_monotone():
    xs = torch.linspace(-1, 1, 401).expand(5, 401)
    deg = torch.tensor([-60.0, -25.0, 0.0, 25.0, 60.0])
    src = yaw_source_x(xs, deg, 0.8)
    torch.testing.assert_close(src[2], xs[2], atol=1e-6, rtol=0)
    steps = src.diff(dim=1)
    assert bool((steps >= -1e-6).all())  # the picture is never folded over
    assert float(steps.abs().max()) < 0.1  # and never torn (the grid step is 0.005)


@pytest.mark.parametrize("deg", [15.0, 30.0, -40.0])
def test_the_face_centre_moves_to_radius_sin_yaw(deg):
    """A turned head shows its midline (the nose, source x = 0) at radius * sin(yaw)."""
    r = 0.8
    shown = torch.tensor([[r * math.sin(math.radians(deg))]])
    assert abs(float(yaw_source_x(shown, torch.tensor([deg]), r))) < 1e-5
    # the far side is foreshortened: the half of the face turning away spans less of the picture
    xs = torch.linspace(-r, r, 2001).view(1, -1)
    src = yaw_source_x(xs, torch.tensor([deg]), r)[0]
    away = (src > 0) if deg > 0 else (src < 0)  # the midline moved towards that side
    assert abs(float(away.float().mean()) - (1 - math.sin(math.radians(abs(deg)))) / 2) < 0.01


def test_a_turn_moves_a_midline_stripe_sideways_in_the_crop():
    x = torch.zeros(2, 1, 48, 48)
    x[:, :, :, 23:25] = 1.0  # a vertical stripe on the midline
    y = geometric(x.clone(), torch.Generator().manual_seed(0), TURN_ONLY)
    cols = torch.arange(48, dtype=torch.float32)
    centre = (y[:, 0].sum(1) * cols).sum(1) / y[:, 0].sum((1, 2))
    moved = (centre - 23.5).abs()  # in pixels; up to 0.8 * sin(30 deg) * 24 = 9.6
    assert bool((moved > 1.0).all()) and bool((moved < 10.0).all())


def test_turn_off_draws_nothing_and_the_recipe_is_unchanged():
    """yaw_deg = 0 draws no random number, so the recipes before the option keep their weights."""
    x = torch.rand(8, 1, 16, 16)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a = augment(x.clone(), g1, AugmentConfig(yaw_deg=0.0, yaw_p=0.4))
    b = augment(x.clone(), g2, AugmentConfig(yaw_deg=0.0, yaw_p=1.0))
    assert torch.equal(a, b) and torch.equal(g1.get_state(), g2.get_state())
    assert not torch.equal(augment(x.clone(), torch.Generator().manual_seed(5), AugmentConfig(yaw_deg=30.0)), a)


def test_cli_yaw_reaches_the_augmentation():
    import argparse

    from emollama.cli.options import add_dataclass_arguments, options_from_args
    from emollama.cli.train_expression import Options, loop_config

    parser = argparse.ArgumentParser()
    add_dataclass_arguments(parser, Options)
    plain = loop_config(options_from_args(Options, parser.parse_args(["--root", "."])))
    turned = loop_config(options_from_args(Options, parser.parse_args(["--root", ".", "--yaw", "40"])))
    assert plain.augment == L.LoopConfig().augment
    assert turned.augment == replace(L.LoopConfig().augment, yaw_deg=40.0)
    with pytest.raises(SystemExit):
        parser.parse_args(["--root", ".", "--yaw", "-5"])
