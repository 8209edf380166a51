"""Keep the native face libraries' log lines (MediaPipe/absl, TFLite, XNNPACK) off the user's terminal.

MediaPipe and LiteRT log from C++ straight to file descriptor 2, and no environment variable reaches them
(GLOG_minloglevel, TF_CPP_MIN_LOG_LEVEL and ABSL_MIN_LOG_LEVEL were measured: no effect). So `native_quiet()` points
fd 2 at a temporary file around each native call, then restores it and writes back every captured line that is not
a native info/warning line: a Python warning or error raised inside the window still reaches the user, just after
the call. Native error lines are kept too. ``show_native_logs()`` (``--verbose``) or ``EMOLLAMA_NATIVE_LOGS=1``
turns it off, which is also how to see native output live if the process crashes inside a call.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from typing import IO

# glog/absl info and warning lines ("W0000 00:00:1796418275.860627    4805 face_landmarker_graph.cc:174] ..."),
# TFLite's start-up lines and absl's one-time preamble, each by its exact text: a generic "INFO: "/"WARNING: " prefix
# would also swallow Python lines of that shape (uvicorn logs "WARNING:  ..."); never E/F lines or "ERROR: "
NATIVE_NOISE = re.compile(r"^(?:[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^\]\s]+:\d+\] "
                          r"|INFO: (?:Created|Initialized) TensorFlow Lite "
                          r"|WARNING: All log messages before absl::InitializeLog\(\) is called)")

_lock = threading.Lock()
_depth = 0  # open windows; concurrent or nested ones share a single redirection
_saved_fd: int | None = None
_capture: IO[bytes] | None = None
_show = False


def show_native_logs(show: bool = True) -> bool:
    """Let the native libraries' log lines through (``--verbose``), or hide them again (the default).

    Returns the previous setting, so a caller can restore it.
    """
    global _show
    previous, _show = _show, show
    return previous


def _showing() -> bool:
    return _show or os.environ.get("EMOLLAMA_NATIVE_LOGS", "") not in ("", "0")


def without_native_noise(text: str) -> str:
    """``text`` minus the native log lines (whole ``\\n``-terminated lines; ``\\r`` progress bars are kept)."""
    parts = text.split("\n")
    kept = [p + "\n" for p in parts[:-1] if not NATIVE_NOISE.match(p)]
    return "".join(kept) + parts[-1]


def _flush_stderr() -> None:
    with contextlib.suppress(OSError, ValueError, AttributeError):  # sys.stderr closed or None
        sys.stderr.flush()


def _open() -> bool:
    global _depth, _saved_fd, _capture
    with _lock:
        if _depth == 0:
            _flush_stderr()  # what Python wrote before the window goes out first
            try:
                saved = os.dup(2)
            except OSError:  # no fd 2 at all (closed, some embedded interpreters): nothing to redirect
                return False
            capture = tempfile.TemporaryFile()
            os.dup2(capture.fileno(), 2)
            _saved_fd, _capture = saved, capture
        _depth += 1
        return True


def _close() -> None:
    global _depth, _saved_fd, _capture
    with _lock:
        _depth -= 1
        if _depth or _saved_fd is None or _capture is None:
            return
        _flush_stderr()  # Python text written inside the window lands in the capture, then is replayed
        os.dup2(_saved_fd, 2)
        os.close(_saved_fd)
        capture, _saved_fd, _capture = _capture, None, None
    capture.seek(0)
    text = without_native_noise(capture.read().decode("utf-8", errors="replace"))
    capture.close()
    if text and sys.stderr is not None:
        sys.stderr.write(text)
        sys.stderr.flush()


@contextlib.contextmanager
def native_quiet() -> Iterator[None]:
    """Hide native log lines written to fd 2 inside the block; everything else is written back when it ends."""
    if _showing() or not _open():
        yield
        return
    try:
        yield
    finally:
        _close()
