"""Frame-sampling policies as pure functions of (frame count, fps, policy string).

Policies: 'uniform:N' (N frames at segment centres; our default N=8, since FER clips are 1-5 s and LLaMA-VID's
1 fps rule would give only 1-5 frames), 'fps:F' (LLaMA-VID uses fps:1; step clamped to >= 1) and 'all'.
"""

from __future__ import annotations


def parse_policy(policy: str) -> tuple[str, float]:
    """'uniform:8' -> ('uniform', 8.0); raises ValueError naming the accepted forms."""
    name, _, arg = policy.partition(":")
    try:
        if name == "all" and not arg:
            return "all", 0.0
        if name in ("uniform", "fps") and float(arg) > 0:
            return name, float(arg)
    except ValueError:
        pass
    raise ValueError(f"invalid frame sampling policy {policy!r}; use 'uniform:N', 'fps:F' or 'all'")


def sample_indices(num_frames: int, fps: float, policy: str) -> list[int]:
    """Indices of the frames to keep, sorted and unique.

    Args:
        num_frames: frames in the video (>= 1).
        fps: average frame rate of the video (frames per second).
        policy: see module docstring.
    """
    if num_frames < 1:
        raise ValueError(f"video has no frames (num_frames={num_frames})")
    name, arg = parse_policy(policy)
    if name == "all":
        return list(range(num_frames))
    if name == "fps":
        step = max(1, round(fps / arg))  # LLaMA-VID: step = round(avg_fps / video_fps), unguarded 0 fixed
        return list(range(0, num_frames, step))
    n = min(int(arg), num_frames)
    return sorted({min(num_frames - 1, int((i + 0.5) * num_frames / n)) for i in range(n)})
