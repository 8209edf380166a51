"""Frame-sampling policies: pure functions, no video needed."""

from __future__ import annotations

import math

import pytest

from emollama.media.sampling import (
    DEFAULT_POLICY,
    PEAK_CANDIDATES,
    candidate_indices,
    parse_policy,
    sample_indices,
    select_peak,
    uniform_indices,
)


@pytest.mark.parametrize(
    "policy, expected",
    [("uniform:8", ("uniform", 8.0)), ("fps:0.5", ("fps", 0.5)), ("all", ("all", 0.0)), ("peak:4", ("peak", 4.0))],
)
def test_parse_policy(policy, expected):
    assert parse_policy(policy) == expected


BAD_POLICIES = ["uniform", "uniform:0", "uniform:2.5", "fps:0", "fps:-1", "all:3", "peak:x", "x:1", ""]


@pytest.mark.parametrize("bad", BAD_POLICIES)
def test_parse_policy_rejects_with_accepted_forms(bad):
    with pytest.raises(ValueError, match="uniform:N.*fps:F.*peak:N.*all"):
        parse_policy(bad)


def test_default_policy_is_uniform_8():
    assert DEFAULT_POLICY == "uniform:8"
    assert sample_indices(48, 24.0, DEFAULT_POLICY) == [3, 9, 15, 21, 27, 33, 39, 45]


def test_uniform_takes_segment_centres_and_caps_at_frame_count():
    assert sample_indices(10, 30.0, "uniform:2") == [2, 7]
    assert sample_indices(3, 30.0, "uniform:8") == [0, 1, 2]
    assert sample_indices(1, 30.0, "uniform:8") == [0]
    idx = uniform_indices(1000, 16)
    assert len(idx) == 16 and idx == sorted(set(idx)) and 0 <= idx[0] and idx[-1] < 1000


def test_fps_follows_llamavid_step_rule():
    # 3 s at 25 fps -> 3 frames, step round(25 / 1) = 25
    assert sample_indices(75, 25.0, "fps:1") == [0, 25, 50]
    assert sample_indices(60, 29.97, "fps:1") == [0, 30]
    assert sample_indices(48, 24.0, "fps:2") == [0, 12, 24, 36]


def test_fps_step_is_clamped_for_slow_or_unknown_rates():
    # LLaMA-VID would compute step = round(0.4 / 1) = 0 here and crash
    assert sample_indices(5, 0.4, "fps:1") == [0, 1, 2, 3, 4]
    assert sample_indices(4, 0.0, "fps:1") == [0, 1, 2, 3]


def test_all():
    assert sample_indices(5, 25.0, "all") == [0, 1, 2, 3, 4]


def test_zero_frames_raise():
    with pytest.raises(ValueError, match="no frames"):
        sample_indices(0, 25.0, "uniform:8")


def test_peak_keeps_top_n_in_time_order():
    # energy peaks at frame 60: the 3 candidates nearest to it win, returned in time order
    score = lambda i: -abs(i - 60)  # noqa: E731
    cands = candidate_indices(100, 25.0, "peak:3")
    assert cands == uniform_indices(100, 3 * PEAK_CANDIDATES)
    out = sample_indices(100, 25.0, "peak:3", score=score)
    assert len(out) == 3 and out == sorted(out)
    best = sorted(cands, key=lambda i: (abs(i - 60), i))[:3]
    assert out == sorted(best)


def test_peak_needs_score_callback():
    with pytest.raises(ValueError, match="score callback"):
        sample_indices(100, 25.0, "peak:3")


def test_peak_on_short_video_returns_every_candidate():
    assert sample_indices(2, 25.0, "peak:4", score=lambda i: 0.0) == [0, 1]


def test_select_peak_ties_and_nan():
    assert select_peak([0, 10, 20, 30], [1.0, 5.0, 5.0, 2.0], 2) == [10, 20]
    assert select_peak([0, 10, 20], [1.0, 1.0, 1.0], 1) == [0]  # tie -> earliest
    assert select_peak([0, 10, 20], [math.nan, 0.5, 0.1], 2) == [10, 20]  # NaN ranks last
    with pytest.raises(ValueError, match="3 indices but 2 scores"):
        select_peak([0, 1, 2], [1.0, 2.0], 1)
