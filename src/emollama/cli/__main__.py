"""`emollama` entry point: maps each subcommand to a module exposing HELP, add_arguments(parser), run(args).

Command modules are imported lazily, so `emollama --help` stays fast and a heavy optional dependency of one
command never breaks the others.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from emollama import __version__

# subcommand -> module; each module defines HELP: str, add_arguments(p), run(args) -> int
COMMANDS: dict[str, str] = {
    "demo": "emollama.cli.demo",
    "show-config": "emollama.cli.show_config",
    "convert": "emollama.cli.convert",
    "predict": "emollama.cli.predict",
    "assets": "emollama.cli.assets",
    "analyze": "emollama.cli.analyze",
    "datasets": "emollama.cli.datasets",
    "gen-data": "emollama.cli.gen_data",
    "prepare": "emollama.cli.prepare",
    "score": "emollama.cli.score",
    "report": "emollama.cli.report",
    "eval": "emollama.cli.eval",
    "train": "emollama.cli.train",
    "merge-lora": "emollama.cli.merge_lora",
    "train-expression": "emollama.cli.train_expression",
    "serve": "emollama.cli.serve",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emollama",
        description="EMO-LLaMA: facial expression recognition and explanation for images and videos.",
    )
    parser.add_argument("--version", action="version", version=f"emollama {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, modname in COMMANDS.items():
        mod = importlib.import_module(modname)
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the subcommand; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING if args.verbose == 0 else logging.INFO if args.verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except (OSError, ValueError, KeyError, ImportError, TypeError) as err:
        print(f"emollama {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
