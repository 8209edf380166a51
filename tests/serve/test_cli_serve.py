"""`emollama serve` argument wiring (in-process; the server itself is exercised in test_server.py)."""

from __future__ import annotations

import pytest

from emollama.cli.__main__ import build_parser, main

from .conftest import LiveServer, data_url, png_bytes

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")


def _build(argv: list[str]):
    from emollama.cli.serve import build

    return build(build_parser().parse_args(["serve", *argv]))


def test_flags_reach_the_settings(monkeypatch):
    monkeypatch.setenv("EMOLLAMA_API_KEY", "from-env")
    app, s = _build(["--backend", "synthetic", "--max-body-mb", "2", "--queue", "3", "--timeout-s", "9",
                     "--allow-url-host", "example.org", "--max-video-s", "5"])
    assert s.api_keys == ("from-env",) and s.max_body_bytes == 2 * 1024 * 1024 and s.queue == 3
    assert s.allow_url_hosts == ("example.org",) and s.timeout_s == 9 and s.max_video_s == 5
    assert app.state.admission.capacity == 4
    _, s2 = _build(["--backend", "synthetic", "--api-key", "a", "--api-key", "b"])
    assert s2.api_keys == ("a", "b")


def test_bad_model_dir_is_a_clean_cli_error(tmp_path, capsys):
    assert main(["serve", "--backend", "synthetic", "--model", str(tmp_path / "nope")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_mllm_on_the_synthetic_backend(tiny_mp_dir):
    """No face stack needed: synthetic faces carry no mesh, so the priors are zeros with valid=False."""
    app, _ = _build(["--backend", "synthetic", "--model", str(tiny_mp_dir), "--max-new-tokens", "3"])
    srv = LiveServer(app)
    try:
        models = httpx.get(srv.url + "/v1/models").json()["data"]
        assert models[0]["kind"] == "mllm"
        msgs = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url(png_bytes())}}]}]
        r = httpx.post(srv.url + "/v1/chat/completions", json={"model": models[0]["id"], "messages": msgs}, timeout=60)
        assert r.status_code == 200, r.text
        face = r.json()["emollama"]["faces"][0]
        assert face["model"] == models[0]["id"] and abs(sum(face["probabilities"].values()) - 1) < 1e-3
    finally:
        srv.stop()


@pytest.mark.parametrize("mode,kind", [("whole-image", "face"), ("auto", "no_face")])
def test_serve_faces_mode_reaches_every_request(mode, kind):
    """A 300x300 flat frame holds no face: `auto` says so (too large to be a crop), `whole-image` analyses it."""
    import io

    from PIL import Image

    pytest.importorskip("mediapipe")
    app, _ = _build(["--faces", mode, "--max-concurrency", "1"])
    buf = io.BytesIO()
    Image.new("RGB", (300, 300), (128, 120, 110)).save(buf, format="PNG")
    srv = LiveServer(app)
    try:
        r = httpx.post(srv.url + "/v1/analyze", files={"file": ("flat.png", buf.getvalue(), "image/png")}, timeout=60)
        assert r.status_code == 200, r.text
        recs = r.json()["records"]
        assert [x["kind"] for x in recs] == [kind]
        if kind == "face":
            assert recs[0]["detector"] == "whole-image" and recs[0]["label"]
    finally:
        srv.stop()
