"""`emollama show-config`: print the resolved model config (preset/YAML + overrides) and its token budget."""

from __future__ import annotations

from dataclasses import dataclass

from emollama.cli.options import arg

HELP = "print a resolved model config (preset or YAML plus --set overrides) and its token counts"


@dataclass(kw_only=True)
class Options:
    """`emollama show-config` options."""

    config: list[str] = arg(default_factory=lambda: ["tiny"], positional=True, nargs="*",
                            help="preset names or YAML files, merged in order (default: tiny)")
    overrides: list[str] = arg(default_factory=list, flag="--set", metavar="KEY=VALUE",
                               help="dotted override, e.g. --set text_config.hidden_size=64 (repeatable)")
    frames: int = arg(8, help="frames per video for the token count (default {default})")


def run(opts: Options) -> int:
    """Print the resolved config as YAML, then its token counts."""
    from emollama.model import tokens
    from emollama.model.presets import build_config, config_to_yaml

    cfg = build_config(opts.config, opts.overrides)
    print(config_to_yaml(cfg).rstrip())
    n_content = tokens.content_tokens_per_frame(cfg)
    print(f"# tokens per frame: {tokens.tokens_per_frame(cfg)} (1 context + {n_content} content)")
    print(f"# image: {tokens.num_visual_tokens(cfg, 1)} tokens; video of {opts.frames} frames: "
          f"{tokens.num_visual_tokens(cfg, opts.frames)} tokens (all-patches LLaVA-style: "
          f"{tokens.llava_style_tokens(cfg, opts.frames)}); face: {tokens.num_face_tokens(cfg)} tokens")
    return 0
