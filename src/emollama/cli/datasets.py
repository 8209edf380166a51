"""`emollama datasets`: list the benchmark adapters, or check a dataset on disk (counts per split/class + skips)."""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass

from emollama.cli.options import add_dataclass_arguments, arg, options_from_args

HELP = "list benchmark adapters, or check a dataset layout on disk and print its counts (compare with DATASETS.md)"


def parse_opts(pairs: list[str]) -> dict[str, str]:
    """``["image=original"]`` -> ``{"image": "original"}`` (shared with gen-data)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--opt expects KEY=VALUE, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


@dataclass(kw_only=True)
class LoadOptions:
    """NAME ROOT and the loading flags shared by `datasets check`, `prepare` and `gen-data`."""

    name: str = arg(positional=True, metavar="NAME", help="adapter name (see `emollama datasets list`)")
    root: str = arg(positional=True, metavar="ROOT", help="dataset folder exactly as released by its owners")
    opt: list[str] = arg(default_factory=list, metavar="KEY=VALUE",
                         help="adapter option, e.g. --opt image=original for rafdb (see `datasets list`); repeatable")
    strict: bool = arg(False, help="stop at the first bad line instead of skipping and counting")
    no_media_check: bool = arg(False, help="do not check that listed media exist (faster on slow network disks)")


@dataclass(kw_only=True)
class CheckOptions(LoadOptions):
    """`emollama datasets check` options."""

    split: str | None = arg(None, help="only this split (default: all)")
    fold: int | None = arg(None, help="only this fold, for DFEW/MAFW (default: all 5)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.add_parser("list", help="list adapters: classes in official order, splits, folds, options")
    c = sub.add_parser("check", help="load every split (and fold) and print counts per class plus the skip report; "
                                     "exit 0 clean, 3 if samples were skipped")
    add_dataclass_arguments(c, CheckOptions)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = [("{:<%d}" if i < 3 else "{:>%d}") % w for i, w in enumerate(widths)]
    lines = ["  ".join(f.format(c) for f, c in zip(fmt, r, strict=True)).rstrip() for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def _list() -> int:
    from emollama.data.benchmarks import BENCHMARKS

    for name in BENCHMARKS.names():
        cls = BENCHMARKS.get(name)
        print(f"{name}  [{cls.modality}]  {(cls.__doc__ or '').strip().splitlines()[0]}")
        if cls.classes:
            print(f"    classes (official order; index = our 0-based label_index): "
                  f"{', '.join(f'{i}={c}' for i, c in enumerate(cls.classes))}")
        else:
            print("    classes: from classes.txt or the labels found under ROOT")
        folds = f"; folds {', '.join(map(str, cls.folds))}" if cls.folds else ""
        print(f"    splits: {', '.join(cls.splits) or 'found under ROOT'} (test: {cls.test_split}){folds}")
        print(f"    labels in the official files: {cls.label_format}")
        for key, (default, text) in cls.options.items():
            print(f"    --opt {key}=...  {text} [default: {default}]")
    return 0


def _check(args: CheckOptions) -> int:
    from emollama.data.benchmarks import SkipReport, get_benchmark

    bench = get_benchmark(args.name, **parse_opts(args.opt))
    info = bench.info(args.root)
    splits = [args.split] if args.split else list(info.splits)
    folds: list[int | None] = [args.fold] if args.fold is not None else list(info.folds) or [None]
    report = SkipReport()
    columns: list[tuple[str, Counter[int]]] = []
    for fold in folds:
        for split in splits:
            res = bench.load(args.root, split, fold, strict=args.strict, check_media=not args.no_media_check)
            report.merge(res.report)
            info = res.info  # generic adapters resolve their classes from ROOT
            columns.append((f"f{fold}/{split}" if fold is not None else split,
                            Counter(s.label_index for s in res.samples)))
    header = ["id", "class", "canonical", *(c for c, _ in columns)]
    rows = [[str(i), name, canon, *(str(cnt[i]) for _, cnt in columns)]
            for i, (name, canon) in enumerate(zip(info.classes, info.canonical, strict=True))]
    rows.append(["", "total", "", *(str(sum(cnt.values())) for _, cnt in columns)])
    print(f"{info.name} at {args.root} ({info.modality}; test split: {info.test_split})")
    print("\n".join(_table(header, rows)))
    if report.files:
        print("annotation files:")
        print("\n".join(f"  {path}: {text}" for path, text in report.files.items()))
    lines = report.lines()
    print("\n".join(lines) if lines else "no skipped or excluded samples")
    return 3 if report.n_skipped else 0


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        return _list()
    if args.action == "check":
        return _check(options_from_args(CheckOptions, args))
    print("usage: emollama datasets {list,check} ... (see emollama datasets --help)")
    return 2
