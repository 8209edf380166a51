"""`emollama` entry point: maps each subcommand to a module exposing HELP, Options and run(opts).

``Options`` is the command's options dataclass, the only place its defaults are stated: its fields become the
arguments (`emollama.cli.options`) and ``run`` gets an instance of it. A command with sub-actions of its own
(assets, convert, datasets) instead exposes add_arguments(parser) and run(args: argparse.Namespace). Command
modules are imported lazily, so a heavy optional dependency of one command never breaks the others.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import logging
import sys
from types import ModuleType

from emollama import __version__
from emollama.cli.options import add_dataclass_arguments, options_from_args

# subcommand -> module; each module defines HELP: str and Options + run(opts) -> int (or add_arguments + run(args))
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
    "export": "emollama.cli.export",
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
    for name in COMMANDS:
        add_command(sub, name)
    return parser


def add_command(sub: argparse._SubParsersAction, name: str) -> argparse.ArgumentParser:
    """The parser of subcommand ``name``, added to ``sub``: arguments from the module's Options dataclass."""
    mod = importlib.import_module(COMMANDS[name])
    p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
    if hasattr(mod, "Options"):
        add_dataclass_arguments(p, mod.Options)
    else:
        mod.add_arguments(p)
    p.set_defaults(_run=functools.partial(_call, mod))
    return p


def command_parser(name: str) -> argparse.ArgumentParser:
    """Subcommand ``name``'s parser alone, built as `build_parser` builds it (tests compare its defaults)."""
    return add_command(argparse.ArgumentParser(prog="emollama").add_subparsers(), name)


def _call(mod: ModuleType, args: argparse.Namespace) -> int:
    if hasattr(mod, "Options"):
        return mod.run(options_from_args(mod.Options, args))
    return mod.run(args)


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
