"""Native log lines of the face stack are hidden by default, shown with --verbose; Python output never is hidden."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from emollama import assets
from emollama.faces._quiet import NATIVE_NOISE, native_quiet, show_native_logs, without_native_noise

NATIVE = [  # what MediaPipe / TFLite / absl wrote to stderr before `emollama demo`'s table (15 such lines)
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796418275.860258    4805 task_runner.cc:85] GPU suport is not available: INTERNAL: ; RET_CHECK "
    "failure (mediapipe/gpu/gl_context_egl.cc:84) egl_initializedUnable to initialize EGL",
    "W0000 00:00:1796418275.860627    4805 face_landmarker_graph.cc:174] Sets FaceBlendshapesGraph acceleration to "
    "xnnpack by default.",
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
    "W0000 00:00:1796418275.869944    4817 inference_feedback_manager.cc:114] Feedback manager requires a model with "
    "a single signature inference. Disabling support for feedback tensors.",
]
KEPT = [  # Python's own output and native errors
    "/x/y.py:3: UserWarning: careful",
    "WARNING emollama.faces.detect: something",  # the CLI's logging format
    "WARNING:root:basicConfig's default format",
    "Traceback (most recent call last):",
    "E0000 00:00:1796418275.9 4805 graph.cc:1] a native error",
    "ERROR: tflite could not allocate",
    "WARNING:  Invalid HTTP request received.",  # uvicorn's format: a Python line, never native noise
    "INFO:     127.0.0.1:5000 - \"GET /health HTTP/1.1\" 200 OK",
]


def test_noise_pattern_drops_native_lines_only():
    assert all(NATIVE_NOISE.match(line) for line in NATIVE)
    assert not any(NATIVE_NOISE.match(line) for line in KEPT)
    text = "\n".join(NATIVE + KEPT) + "\nprogress 3/7\r"
    assert without_native_noise(text) == "\n".join(KEPT) + "\nprogress 3/7\r"


def test_window_hides_native_writes_and_restores_fd2(capfd):
    before = os.fstat(2)
    with native_quiet():
        with native_quiet():  # nested windows share one redirection
            os.write(2, (NATIVE[1] + "\n").encode())
        os.write(2, (KEPT[4] + "\n").encode())
    assert os.fstat(2).st_ino == before.st_ino
    err = capfd.readouterr().err
    assert "GPU suport" not in err and "a native error" in err
    previous = show_native_logs(True)
    try:
        with native_quiet():
            os.write(2, (NATIVE[3] + "\n").encode())
    finally:
        show_native_logs(previous)
    assert "XNNPACK" in capfd.readouterr().err


SCRIPT = """
import logging, os, warnings
from emollama.faces._quiet import native_quiet
logging.basicConfig(format="%(levelname)s %(name)s: %(message)s")
with native_quiet():
    os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n")
    warnings.warn("warned inside the window")
    logging.getLogger("emollama.faces.detect").warning("logged inside the window")
    raise RuntimeError("raised inside the window")
"""


@pytest.mark.parametrize("show", [False, True])
def test_python_warnings_logs_and_errors_inside_the_window_reach_stderr(show):
    env = {**os.environ, "EMOLLAMA_NATIVE_LOGS": "1" if show else "0"}
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 1
    assert "UserWarning: warned inside the window" in r.stderr
    assert "WARNING emollama.faces.detect: logged inside the window" in r.stderr
    assert "RuntimeError: raised inside the window" in r.stderr
    assert ("XNNPACK" in r.stderr) == show


def _analyze(tmp_path, *extra: str) -> subprocess.CompletedProcess:
    try:
        photo = assets.resolve("feat_happy", download=False)
        for name in ("face_landmarker", "blazeface_full_range", "emotion_tflite", "age_v1"):
            assets.resolve(name, download=False)
    except assets.AssetError as err:
        pytest.skip(f"face assets not cached ({err}); run `python scripts/install_faces.py`")
    if importlib.util.find_spec("mediapipe") is None:
        pytest.skip("mediapipe is not installed; run `python scripts/install_faces.py`")
    env = {k: v for k, v in os.environ.items() if k != "EMOLLAMA_NATIVE_LOGS"}
    cmd = [sys.executable, "-m", "emollama.cli.__main__", "analyze", str(photo), "--out", str(tmp_path / "r.jsonl"),
           "--overwrite", "--no-progress", *extra]
    r = subprocess.run(cmd, capture_output=True, text=True, env={**env, "OMP_NUM_THREADS": "1"}, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "happiness" in r.stdout
    return r


@pytest.mark.media
def test_analyze_stderr_is_clean_by_default_and_verbose_brings_native_lines_back(tmp_path):
    quiet = _analyze(tmp_path)  # this printed 5 lines of MediaPipe / TFLite / absl start-up logging (demo: 15)
    assert quiet.stderr.strip() == "", quiet.stderr  # nothing at all: not only what the filter knows about
    loud = _analyze(tmp_path, "--verbose")
    lines = loud.stderr.splitlines()
    assert any("XNNPACK" in line for line in lines) and any(NATIVE_NOISE.match(line) for line in lines), lines
