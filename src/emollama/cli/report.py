"""`emollama report`: compare saved evaluation reports (report.json files) side by side as a Markdown table."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "compare evaluation reports (report.json from `emollama score`/`eval`) side by side in Markdown"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("reports", nargs="+", type=Path, help="report.json files, shown as columns in this order")
    p.add_argument("--names", help="comma-separated column names (default: the report paths)")
    p.add_argument("--out", type=Path, help="also write the table to this Markdown file")


def run(args: argparse.Namespace) -> int:
    from emollama.evaluation.report import Report, compare

    for path in args.reports:
        if not path.is_file():
            raise FileNotFoundError(f"report file {str(path)!r} does not exist")
    # default column names: the paths as typed, since two runs often share the same source CSV name
    names = [n.strip() for n in args.names.split(",")] if args.names else [str(p) for p in args.reports]
    if len(names) != len(args.reports):
        raise ValueError(f"--names has {len(names)} names for {len(args.reports)} reports")
    table = compare([Report.load_json(p) for p in args.reports], names)
    print(table, end="")
    if args.out:
        args.out.write_text(table, encoding="utf-8")
    return 0
