"""`emollama serve`: the OpenAI-compatible HTTP API and web demo (extra `serve`), on 127.0.0.1 by default."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass

from emollama.analyze.runner import AnalyzeOptions
from emollama.api import MediaLimits
from emollama.cli.options import arg, options_from_args, pixel_count, show_pixels
from emollama.faces.expression import EXPRESSION_MODELS
from emollama.faces.find import FACE_MODES
from emollama.serve.limits import ServeSettings

HELP = "serve the OpenAI-compatible API, /v1/analyze and the web demo (default: the face analyzer on 127.0.0.1:8000)"
logger = logging.getLogger(__name__)
# the one place each default is stated: server knobs in ServeSettings, media limits in MediaLimits, the analyzer's
# options in AnalyzeOptions
_S, _M, _A = ServeSettings(), MediaLimits(), AnalyzeOptions()


@dataclass(kw_only=True)
class Options:
    """`emollama serve` options (times in seconds)."""

    model: str | None = arg(None, metavar="NAME|PATH",
                            help="a shipped model ('emollama-small') or an emollama model directory (save_pretrained "
                                 "/ emollama convert / emollama export). Without it the CPU "
                                 "face analyzer is served as model 'emollama-analyzer' (chat answers are its "
                                 "explanations)")
    host: str = arg("127.0.0.1", help="bind address (default {default}: this machine only; 0.0.0.0 exposes it: set "
                                      "--api-key)")
    port: int = arg(8000, help="TCP port (default {default})")
    api_key: list[str] = arg(default_factory=list, metavar="KEY",
                             help="require 'Authorization: Bearer KEY' on /v1/* (repeatable; default: "
                                  "$EMOLLAMA_API_KEY if set and non-empty, else no auth; an empty or blank KEY is "
                                  "an error). Prefer the variable: arguments are visible in `ps`")
    max_body_mb: float = arg(_S.max_body_mb, metavar="MB",
                             help="largest request body in MB (413 beyond; default {default:g})")
    max_concurrency: int = arg(_S.max_concurrency, metavar="N",
                               help="predictions (with their URL downloads) running at once, each with its own "
                                    "analyzer (default {default}; 2-core machines: 1-2)")
    queue: int = arg(_S.queue, metavar="N",
                     help="requests that may wait for a slot; beyond that 429 + Retry-After (default {default})")
    timeout_s: float = arg(_S.timeout_s, metavar="S",
                           help="seconds a request may wait plus run: 503 if it never started, 504 if it ran over "
                                "(default {default:g})")
    header_timeout_s: float = arg(_S.header_timeout_s, metavar="S",
                                  help="seconds a client has to send its request line and headers, counted from "
                                       "connecting (or from a keep-alive request's first byte); then the connection "
                                       "is closed (default {default:g})")
    keep_alive_s: float = arg(_S.keep_alive_s, metavar="S",
                              help="seconds an idle keep-alive connection stays open between requests "
                                   "(default {default:g})")
    body_timeout_s: float = arg(_S.body_timeout_s, metavar="S",
                                help="seconds to wait for the next piece of a request body before answering 408 "
                                     "(default {default:g})")
    max_pixels: int = arg(_M.max_pixels, metavar="N", type=pixel_count, show=show_pixels,
                          help="largest image / video frame in pixels, e.g. 40000000, 40M or 500k (413 beyond; "
                               "default {default})")
    max_video_s: float = arg(_M.max_video_s, metavar="S",
                             help="longest video in seconds (413 beyond; default {default:g})")
    max_video_frames: int = arg(_M.max_video_frames, metavar="N",
                                help="frames analysed per video; denser sampling is thinned to this "
                                     "(default {default})")
    video_sampling: str = arg(_A.video_sampling, metavar="POLICY",
                              help="video frame policy as in `emollama analyze` (default {default})")
    allow_url_host: list[str] = arg(default_factory=list, metavar="HOST",
                                    help="allow http(s) image/video URLs from this host (repeatable; default: URLs "
                                         "refused, data: only). URLs with user info (user@host) are refused")
    url_timeout_s: float = arg(_S.url_timeout_s, metavar="S",
                               help="seconds a whole media URL download may take (default {default:g})")
    max_new_tokens: int = arg(128, metavar="N", help="MLLM answer length cap in tokens (default {default})")
    backend: str = arg(_A.backend, choices=["mediapipe", "synthetic"],
                       help="analyzer backend (default {default}; 'synthetic' detects no real faces: tests only)")
    faces: str = arg(_A.faces, choices=FACE_MODES,
                     help="how faces are found, as `emollama analyze --faces`, for every request (default "
                          "{default}: a small image or frame with no detected face, e.g. a 48x48 crop, is analysed "
                          "as one face)")
    expression: str = arg(_A.expression, choices=EXPRESSION_MODELS,
                          help="expression model, as `emollama analyze --expression` (default {default}, the learned "
                               "model)")
    verbose: int = arg(0, cli=False)  # the top-level -v count: uvicorn logs at info from -v on


def _api_keys(opts: Options) -> tuple[str, ...]:
    """--api-key values, else $EMOLLAMA_API_KEY; set-but-empty means unset, a blank one is an error."""
    if opts.api_key:
        return tuple(opts.api_key)
    env = os.environ.get("EMOLLAMA_API_KEY", "")
    if env and not env.strip():
        raise ValueError("EMOLLAMA_API_KEY is blank (only whitespace): set a real API key, or unset it to serve "
                         "without auth")
    return (env,) if env else ()


def build(opts: Options | argparse.Namespace):
    """(app, settings) from the options (or parsed arguments); raises on a bad model dir or an empty API key before
    anything binds."""
    from emollama.api import Analyzer, EmoLlama
    from emollama.serve.app import create_app

    if isinstance(opts, argparse.Namespace):
        opts = options_from_args(Options, opts)
    limits = MediaLimits(max_pixels=opts.max_pixels, max_video_s=opts.max_video_s,
                         max_video_frames=opts.max_video_frames)
    settings = ServeSettings(api_keys=_api_keys(opts), max_body_mb=opts.max_body_mb,
                             max_concurrency=opts.max_concurrency, queue=opts.queue, timeout_s=opts.timeout_s,
                             max_pixels=limits.max_pixels, max_video_s=limits.max_video_s,
                             max_video_frames=limits.max_video_frames, allow_url_hosts=tuple(opts.allow_url_host),
                             url_timeout_s=opts.url_timeout_s, header_timeout_s=opts.header_timeout_s,
                             keep_alive_s=opts.keep_alive_s, body_timeout_s=opts.body_timeout_s)
    analyzer = Analyzer(opts.backend, limits=limits, video_sampling=opts.video_sampling, faces=opts.faces,
                        expression=opts.expression)
    predictor = analyzer
    if opts.model:
        predictor = EmoLlama.from_pretrained(opts.model, analyzer=analyzer, max_new_tokens=opts.max_new_tokens)
    return create_app(predictor, settings), settings


def run(opts: Options) -> int:
    """Build the app and serve it with uvicorn until interrupted."""
    try:
        import uvicorn
    except ImportError as err:
        raise ImportError("emollama serve needs the 'serve' extra: pip install 'emollama[serve]'") from err
    from emollama.serve.server import uvicorn_options

    app, settings = build(opts)
    if opts.host not in ("127.0.0.1", "localhost", "::1") and not settings.api_keys:
        print(f"warning: serving on {opts.host} without an API key: anyone who can reach it can use it",
              file=sys.stderr)
    print(f"emollama serve: {app.description.split(';')[1].strip()} http://{opts.host}:{opts.port}/ "
          f"(demo /demo/, API docs /docs)", file=sys.stderr)
    uvicorn.run(app, host=opts.host, port=opts.port, log_level="warning" if opts.verbose == 0 else "info",
                timeout_graceful_shutdown=5, **uvicorn_options(settings))
    return 0
