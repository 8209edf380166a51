"""`emollama serve`: the OpenAI-compatible HTTP API and web demo (extra `serve`), on 127.0.0.1 by default."""

from __future__ import annotations

import argparse
import logging
import os
import sys

HELP = "serve the OpenAI-compatible API, /v1/analyze and the web demo (default: the face analyzer on 127.0.0.1:8000)"
logger = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", metavar="PATH",
                   help="emollama model directory (save_pretrained / emollama convert). Without it the CPU face "
                        "analyzer is served as model 'emollama-analyzer' (chat answers are its explanations)")
    p.add_argument("--host", default="127.0.0.1",
                   help="bind address (default 127.0.0.1: this machine only; 0.0.0.0 exposes it: set --api-key)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    p.add_argument("--api-key", action="append", default=[], metavar="KEY",
                   help="require 'Authorization: Bearer KEY' on /v1/* (repeatable; default: $EMOLLAMA_API_KEY if set, "
                        "else no auth). Prefer the variable: arguments are visible in `ps`")
    p.add_argument("--max-body-mb", type=float, default=25.0, metavar="MB",
                   help="largest request body in MB (413 beyond; default 25)")
    p.add_argument("--max-concurrency", type=int, default=1, metavar="N",
                   help="predictions running at once, each with its own analyzer (default 1; 2-core machines: 1-2)")
    p.add_argument("--queue", type=int, default=8, metavar="N",
                   help="requests that may wait for a slot; beyond that 429 + Retry-After (default 8)")
    p.add_argument("--timeout-s", type=float, default=60.0, metavar="S",
                   help="seconds a request may wait plus run: 503 if it never started, 504 if it ran over (default 60)")
    p.add_argument("--max-pixels", type=int, default=40_000_000, metavar="N",
                   help="largest image / video frame in pixels (413 beyond; default 40M)")
    p.add_argument("--max-video-s", type=float, default=60.0, metavar="S",
                   help="longest video in seconds (413 beyond; default 60)")
    p.add_argument("--max-video-frames", type=int, default=32, metavar="N",
                   help="frames analysed per video; denser sampling is thinned to this (default 32)")
    p.add_argument("--video-sampling", default="fps:2", metavar="POLICY",
                   help="video frame policy as in `emollama analyze` (default fps:2)")
    p.add_argument("--allow-url-host", action="append", default=[], metavar="HOST",
                   help="allow http(s) image/video URLs from this host (repeatable; default: URLs refused, data: only)")
    p.add_argument("--max-new-tokens", type=int, default=128, metavar="N",
                   help="MLLM answer length cap in tokens (default 128)")
    p.add_argument("--backend", default="mediapipe", choices=["mediapipe", "synthetic"],
                   help="analyzer backend (default mediapipe; 'synthetic' detects no real faces: tests only)")


def build(args: argparse.Namespace):
    """(app, settings) from parsed arguments; raises on a bad model dir before anything binds."""
    from emollama.api import Analyzer, EmoLlama, MediaLimits
    from emollama.serve.app import create_app
    from emollama.serve.limits import ServeSettings

    keys = tuple(args.api_key) or tuple(k for k in [os.environ.get("EMOLLAMA_API_KEY", "")] if k)
    settings = ServeSettings(api_keys=keys, max_body_mb=args.max_body_mb, max_concurrency=args.max_concurrency,
                             queue=args.queue, timeout_s=args.timeout_s, max_pixels=args.max_pixels,
                             max_video_s=args.max_video_s, max_video_frames=args.max_video_frames,
                             allow_url_hosts=tuple(args.allow_url_host))
    limits = MediaLimits(max_pixels=args.max_pixels, max_video_s=args.max_video_s,
                         max_video_frames=args.max_video_frames)
    analyzer = Analyzer(args.backend, limits=limits, video_sampling=args.video_sampling)
    predictor = analyzer
    if args.model:
        predictor = EmoLlama.from_pretrained(args.model, analyzer=analyzer, max_new_tokens=args.max_new_tokens)
    return create_app(predictor, settings), settings


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ImportError as err:
        raise ImportError("emollama serve needs the 'serve' extra: pip install 'emollama[serve]'") from err
    app, settings = build(args)
    if args.host not in ("127.0.0.1", "localhost", "::1") and not settings.api_keys:
        print(f"warning: serving on {args.host} without an API key: anyone who can reach it can use it",
              file=sys.stderr)
    print(f"emollama serve: {app.description.split(';')[1].strip()} http://{args.host}:{args.port}/ "
          f"(demo /demo/, API docs /docs)", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning" if args.verbose == 0 else "info",
                timeout_graceful_shutdown=5)
    return 0
