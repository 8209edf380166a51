"""Frame-sampling policies as pure functions of (frame count, fps, policy string).

Policies:
- 'uniform:N': N frames at segment centres. **Default: uniform:8** (`DEFAULT_POLICY`): FER clips are 1-5 s, so
  LLaMA-VID's 1 fps rule would give only 1-5 frames, too few to see an expression's onset, apex and offset.
- 'fps:F': every round(video_fps / F)-th frame (LLaMA-VID uses fps:1; the step is clamped to >= 1, which
  LLaMA-VID does not do for videos below 0.5 fps).
- 'all': every frame.
- 'peak:N': the N frames of strongest expression. `PEAK_CANDIDATES` x N uniform candidates are scored by a
  caller-supplied energy callback (e.g. AU energy of the face on that frame); the top N are kept in time order.

Nothing here decodes video: `emollama.media.video` applies these to real files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

DEFAULT_POLICY = "uniform:8"
PEAK_CANDIDATES = 4  # candidates per kept frame for 'peak:N': enough to find the apex, 4x cheaper than 'all'
_FORMS = "'uniform:N', 'fps:F', 'peak:N' or 'all'"


def parse_policy(policy: str) -> tuple[str, float]:
    """'uniform:8' -> ('uniform', 8.0); raises ValueError naming the accepted forms."""
    name, _, arg = str(policy).strip().partition(":")
    try:
        if name == "all" and not arg:
            return "all", 0.0
        if name == "fps" and float(arg) > 0:
            return name, float(arg)
        if name in ("uniform", "peak") and float(arg) >= 1 and float(arg).is_integer():
            return name, float(arg)
    except ValueError:
        pass
    raise ValueError(f"invalid frame sampling policy {policy!r}; use {_FORMS} (N a positive integer, F > 0)")


def uniform_indices(num_frames: int, n: int) -> list[int]:
    """N indices at the centres of N equal segments of [0, num_frames), sorted and unique."""
    n = min(int(n), num_frames)
    return sorted({min(num_frames - 1, int((i + 0.5) * num_frames / n)) for i in range(n)})


def candidate_indices(num_frames: int, fps: float, policy: str) -> list[int]:
    """Frames that must be decoded for ``policy``: the final indices, or for 'peak:N' the scored candidates."""
    if num_frames < 1:
        raise ValueError(f"video has no frames (num_frames={num_frames})")
    name, arg = parse_policy(policy)
    if name == "all":
        return list(range(num_frames))
    if name == "fps":
        # LLaMA-VID: step = round(avg_fps / video_fps); unknown fps (0) degrades to every frame
        step = max(1, round(fps / arg)) if fps > 0 else 1
        return list(range(0, num_frames, step))
    if name == "peak":
        return uniform_indices(num_frames, int(arg) * PEAK_CANDIDATES)
    return uniform_indices(num_frames, int(arg))


def select_peak(indices: Sequence[int], scores: Sequence[float], n: int) -> list[int]:
    """The ``n`` indices with the highest scores, returned in time order.

    Ties go to the earlier frame so the result is deterministic; NaN scores rank last.
    """
    if len(indices) != len(scores):
        raise ValueError(f"select_peak: {len(indices)} indices but {len(scores)} scores")
    order = sorted(
        range(len(indices)),
        key=lambda k: (scores[k] != scores[k], -scores[k] if scores[k] == scores[k] else 0.0, indices[k]),
    )
    return sorted(indices[k] for k in order[:n])


def sample_indices(num_frames: int, fps: float, policy: str, score: Callable[[int], float] | None = None) -> list[int]:
    """Indices of the frames to keep, sorted and unique.

    Args:
        num_frames: frames in the video (>= 1).
        fps: average frame rate of the video (frames per second); only 'fps:F' uses it.
        policy: see module docstring.
        score: 'peak:N' only: frame index -> expression energy (higher = stronger expression).
    """
    candidates = candidate_indices(num_frames, fps, policy)
    name, arg = parse_policy(policy)
    if name != "peak":
        return candidates
    if score is None:
        raise ValueError(f"policy {policy!r} needs a score callback (frame index -> expression energy)")
    return select_peak(candidates, [float(score(i)) for i in candidates], int(arg))
