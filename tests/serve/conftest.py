"""Serve fixtures: a live uvicorn server on a free 127.0.0.1 port (in a thread), real or synthetic analyzers,
a tiny MLLM directory in MediaPipe prior layout, and the astronaut photo (skipped when the cache lacks it)."""

from __future__ import annotations

import base64
import importlib.util
import socket
import threading
import time
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).parents[1] / "artifacts"
MP_TINY = ["face_config.landmark_layout=mediapipe478", "face_config.num_landmarks=478",
           "face_config.num_blendshapes=52"]


class LiveServer:
    """uvicorn serving ``app`` on 127.0.0.1:<free port> until `stop`, with the connection timeouts of its settings
    (as `emollama serve` runs it)."""

    def __init__(self, app) -> None:
        import uvicorn

        from emollama.serve.server import uvicorn_options

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = app
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    **uvicorn_options(app.state.settings)))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def serve(predictor, **settings):
    from emollama.serve.app import create_app
    from emollama.serve.limits import ServeSettings

    return LiveServer(create_app(predictor, ServeSettings(**settings)))


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


@pytest.fixture(scope="session")
def astronaut_path() -> Path:
    if importlib.util.find_spec("mediapipe") is None:
        pytest.skip("the face stack (mediapipe) is not installed: make test installs it")
    from emollama import assets

    try:
        return Path(assets.resolve("astronaut"))
    except (FileNotFoundError, OSError, ValueError) as err:
        pytest.skip(f"astronaut photo not in the asset cache: {err}")


@pytest.fixture(scope="session")
def astronaut_png(astronaut_path) -> bytes:
    return astronaut_path.read_bytes()


@pytest.fixture(scope="session")
def real_analyzer(astronaut_path):
    from emollama.api import Analyzer

    a = Analyzer("mediapipe")
    a.load()
    return a


@pytest.fixture(scope="module")
def analyzer_server(real_analyzer):
    srv = serve(real_analyzer, queue=4)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def synthetic_server():
    """Dependency-free analyzer, API key on, a 1 MB body cap and a 1 MP pixel cap."""
    from emollama.api import Analyzer, MediaLimits

    srv = serve(Analyzer("synthetic", limits=MediaLimits(max_pixels=1_000_000)), api_keys=("s3cret",),
                max_body_mb=1.0, max_pixels=1_000_000)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def tiny_mp_dir(tmp_path_factory) -> Path:
    """A saved random-weight tiny model whose face branch takes MediaPipe priors (478 landmarks, 52 blendshapes)."""
    from emollama.model.build import build_tiny
    from emollama.model.checkpoint import save_pretrained

    return save_pretrained(*build_tiny(MP_TINY), tmp_path_factory.mktemp("tiny_mp"))


def png_bytes(w: int = 64, h: int = 48, seed: int = 0) -> bytes:
    """A small non-uniform PNG (the synthetic backend 'finds' one face in it)."""
    import io

    import numpy as np
    from PIL import Image

    arr = (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()
