"""`emollama show-config`: print the resolved model config (preset/YAML + overrides) and its token budget."""

from __future__ import annotations

import argparse

HELP = "print a resolved model config (preset or YAML plus --set overrides) and its token counts"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="*", default=["tiny"],
                   help="preset names or YAML files, merged in order (default: tiny)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="dotted override, e.g. --set text_config.hidden_size=64 (repeatable)")
    p.add_argument("--frames", type=int, default=8, help="frames per video for the token count (default 8)")


def run(args: argparse.Namespace) -> int:
    from emollama.model import tokens
    from emollama.model.presets import build_config, config_to_yaml

    cfg = build_config(args.config, args.overrides)
    print(config_to_yaml(cfg).rstrip())
    n_content = tokens.content_tokens_per_frame(cfg)
    print(f"# tokens per frame: {tokens.tokens_per_frame(cfg)} (1 context + {n_content} content)")
    print(f"# image: {tokens.num_visual_tokens(cfg, 1)} tokens; video of {args.frames} frames: "
          f"{tokens.num_visual_tokens(cfg, args.frames)} tokens (all-patches LLaVA-style: "
          f"{tokens.llava_style_tokens(cfg, args.frames)}); face: {tokens.num_face_tokens(cfg)} tokens")
    return 0
