"""`emollama report`: compare saved evaluation reports (report.json files) side by side as a Markdown table."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from emollama.cli.options import arg

HELP = "compare evaluation reports (report.json from `emollama score`/`eval`) side by side in Markdown"


@dataclass(kw_only=True)
class Options:
    """`emollama report` options."""

    reports: list[Path] = arg(positional=True, nargs="+", help="report.json files, shown as columns in this order")
    names: str | None = arg(None, help="comma-separated column names (default: the report paths)")
    out: Path | None = arg(None, help="also write the table to this Markdown file")


def run(opts: Options) -> int:
    """Print (and with ``opts.out`` write) the Markdown comparison table."""
    from emollama.evaluation.report import Report, compare

    for path in opts.reports:
        if not path.is_file():
            raise FileNotFoundError(f"report file {str(path)!r} does not exist")
    # default column names: the paths as typed, since two runs often share the same source CSV name
    names = [n.strip() for n in opts.names.split(",")] if opts.names else [str(p) for p in opts.reports]
    if len(names) != len(opts.reports):
        raise ValueError(f"--names has {len(names)} names for {len(opts.reports)} reports")
    table = compare([Report.load_json(p) for p in opts.reports], names)
    print(table, end="")
    if opts.out:
        opts.out.write_text(table, encoding="utf-8")
    return 0
