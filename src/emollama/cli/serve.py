"""`emollama serve`: the OpenAI-compatible HTTP API and web demo (extra `serve`), on 127.0.0.1 by default."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from emollama.faces.expression import EXPRESSION_MODELS
from emollama.faces.find import FACE_MODES

HELP = "serve the OpenAI-compatible API, /v1/analyze and the web demo (default: the face analyzer on 127.0.0.1:8000)"
logger = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from emollama.serve.limits import ServeSettings  # stdlib only: cheap for `emollama --help`

    d = ServeSettings()  # the one place the server defaults are stated
    p.add_argument("--model", metavar="PATH",
                   help="emollama model directory (save_pretrained / emollama convert). Without it the CPU face "
                        "analyzer is served as model 'emollama-analyzer' (chat answers are its explanations)")
    p.add_argument("--host", default="127.0.0.1",
                   help="bind address (default 127.0.0.1: this machine only; 0.0.0.0 exposes it: set --api-key)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--api-key", action="append", default=[], metavar="KEY",
                   help="require 'Authorization: Bearer KEY' on /v1/* (repeatable; default: $EMOLLAMA_API_KEY if set "
                        "and non-empty, else no auth; an empty or blank KEY is an error). Prefer the variable: "
                        "arguments are visible in `ps`")
    p.add_argument("--max-body-mb", type=float, default=d.max_body_mb, metavar="MB",
                   help=f"largest request body in MB (413 beyond; default {d.max_body_mb:g})")
    p.add_argument("--max-concurrency", type=int, default=d.max_concurrency, metavar="N",
                   help="predictions (with their URL downloads) running at once, each with its own analyzer "
                        f"(default {d.max_concurrency}; 2-core machines: 1-2)")
    p.add_argument("--queue", type=int, default=d.queue, metavar="N",
                   help=f"requests that may wait for a slot; beyond that 429 + Retry-After (default {d.queue})")
    p.add_argument("--timeout-s", type=float, default=d.timeout_s, metavar="S",
                   help="seconds a request may wait plus run: 503 if it never started, 504 if it ran over "
                        f"(default {d.timeout_s:g})")
    p.add_argument("--header-timeout-s", type=float, default=d.header_timeout_s, metavar="S",
                   help="seconds a client has to send its request line and headers, counted from connecting (or "
                        "from a keep-alive request's first byte); then the connection is closed "
                        f"(default {d.header_timeout_s:g})")
    p.add_argument("--keep-alive-s", type=float, default=d.keep_alive_s, metavar="S",
                   help="seconds an idle keep-alive connection stays open between requests "
                        f"(default {d.keep_alive_s:g})")
    p.add_argument("--body-timeout-s", type=float, default=d.body_timeout_s, metavar="S",
                   help="seconds to wait for the next piece of a request body before answering 408 "
                        f"(default {d.body_timeout_s:g})")
    p.add_argument("--max-pixels", type=int, default=d.max_pixels, metavar="N",
                   help=f"largest image / video frame in pixels (413 beyond; default {d.max_pixels / 1e6:g}M)")
    p.add_argument("--max-video-s", type=float, default=d.max_video_s, metavar="S",
                   help=f"longest video in seconds (413 beyond; default {d.max_video_s:g})")
    p.add_argument("--max-video-frames", type=int, default=d.max_video_frames, metavar="N",
                   help=f"frames analysed per video; denser sampling is thinned to this (default {d.max_video_frames})")
    p.add_argument("--video-sampling", default="fps:2", metavar="POLICY",
                   help="video frame policy as in `emollama analyze` (default fps:2)")
    p.add_argument("--allow-url-host", action="append", default=[], metavar="HOST",
                   help="allow http(s) image/video URLs from this host (repeatable; default: URLs refused, data: "
                        "only). URLs with user info (user@host) are refused")
    p.add_argument("--url-timeout-s", type=float, default=d.url_timeout_s, metavar="S",
                   help=f"seconds a whole media URL download may take (default {d.url_timeout_s:g})")
    p.add_argument("--max-new-tokens", type=int, default=128, metavar="N",
                   help="MLLM answer length cap in tokens (default 128)")
    p.add_argument("--backend", default="mediapipe", choices=["mediapipe", "synthetic"],
                   help="analyzer backend (default mediapipe; 'synthetic' detects no real faces: tests only)")
    p.add_argument("--faces", default="auto", choices=FACE_MODES,
                   help="which faces, as `emollama analyze --faces` (default auto: a small image with no "
                        "detected face, e.g. a 48x48 crop, is analysed as one face)")
    p.add_argument("--expression", default="emonet", choices=EXPRESSION_MODELS,
                   help="expression model, as `emollama analyze --expression` (default emonet, the learned model)")


def _api_keys(args: argparse.Namespace) -> tuple[str, ...]:
    """--api-key values, else $EMOLLAMA_API_KEY; set-but-empty means unset, a blank one is an error."""
    if args.api_key:
        return tuple(args.api_key)
    env = os.environ.get("EMOLLAMA_API_KEY", "")
    if env and not env.strip():
        raise ValueError("EMOLLAMA_API_KEY is blank (only whitespace): set a real API key, or unset it to serve "
                         "without auth")
    return (env,) if env else ()


def build(args: argparse.Namespace):
    """(app, settings) from parsed arguments; raises on a bad model dir or an empty API key before anything binds."""
    from emollama.api import Analyzer, EmoLlama, MediaLimits
    from emollama.serve.app import create_app
    from emollama.serve.limits import ServeSettings

    settings = ServeSettings(api_keys=_api_keys(args), max_body_mb=args.max_body_mb,
                             max_concurrency=args.max_concurrency, queue=args.queue, timeout_s=args.timeout_s,
                             max_pixels=args.max_pixels, max_video_s=args.max_video_s,
                             max_video_frames=args.max_video_frames, allow_url_hosts=tuple(args.allow_url_host),
                             url_timeout_s=args.url_timeout_s, header_timeout_s=args.header_timeout_s,
                             keep_alive_s=args.keep_alive_s, body_timeout_s=args.body_timeout_s)
    limits = MediaLimits(max_pixels=args.max_pixels, max_video_s=args.max_video_s,
                         max_video_frames=args.max_video_frames)
    analyzer = Analyzer(args.backend, limits=limits, video_sampling=args.video_sampling,
                        faces=getattr(args, "faces", "auto"), expression=getattr(args, "expression", "emonet"))
    predictor = analyzer
    if args.model:
        predictor = EmoLlama.from_pretrained(args.model, analyzer=analyzer, max_new_tokens=args.max_new_tokens)
    return create_app(predictor, settings), settings


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ImportError as err:
        raise ImportError("emollama serve needs the 'serve' extra: pip install 'emollama[serve]'") from err
    from emollama.serve.server import uvicorn_options

    app, settings = build(args)
    if args.host not in ("127.0.0.1", "localhost", "::1") and not settings.api_keys:
        print(f"warning: serving on {args.host} without an API key: anyone who can reach it can use it",
              file=sys.stderr)
    print(f"emollama serve: {app.description.split(';')[1].strip()} http://{args.host}:{args.port}/ "
          f"(demo /demo/, API docs /docs)", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning" if args.verbose == 0 else "info",
                timeout_graceful_shutdown=5, **uvicorn_options(settings))
    return 0
