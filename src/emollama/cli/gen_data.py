"""`emollama gen-data`: dataset on disk -> instruction JSONL (category now; conversation providers plug in later).

Each ``--kind`` maps to a runner in ``KINDS``; a conversation runner (issue #4 §3: gemini / openai / offline
providers) registers itself there and reads the provider flags already parsed here.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable
from pathlib import Path

from emollama.cli.datasets import add_load_arguments, parse_opts

HELP = "generate instruction data (JSONL) from a dataset on disk: --kind category (FERID questions) | conversation"

NOT_BUILT = ("--kind conversation is not implemented yet in this build (issue #4 §3: conversation providers "
             "gemini/openai/offline); use --kind category")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_load_arguments(p)
    p.add_argument("--kind", choices=["category", "conversation"], required=True, help="instruction kind")
    p.add_argument("--out", required=True, metavar="FILE.jsonl", help="output JSONL (written atomically)")
    p.add_argument("--split", default="train", help="split to read (default: train)")
    p.add_argument("--fold", type=int, help="fold for DFEW/MAFW (default: 1, as FERID used one fold)")
    p.add_argument("--seed", type=int, default=0, help="seed for template/vocabulary choice and shuffling (default 0)")
    p.add_argument("--limit", type=int, default=0, help="only the first N samples (0 = all)")
    p.add_argument("--media-prefix", default="", metavar="DIR",
                   help="prefix for media paths in the JSONL, e.g. RAF-DB/basic for a shared data root")
    g = p.add_argument_group("category")
    g.add_argument("--templates", nargs="+", default=["ferid"], metavar="ID",
                   help="question template ids, e.g. ferid which feel classify (seeded choice per sample)")
    g.add_argument("--vocabulary", nargs="+", default=["canonical"], metavar="NAME",
                   help="option/answer words: canonical, ferid_joy (happiness->joy), adjectives (seeded choice)")
    g.add_argument("--shuffle-options", action="store_true", help="seeded per-sample option order (recorded)")
    c = p.add_argument_group("conversation (issue #4 §3, not in this build)")
    c.add_argument("--provider", metavar="NAME", help="conversation provider: gemini | openai | offline")
    c.add_argument("--model", metavar="ID", help="provider model id")
    c.add_argument("--concurrency", type=int, default=2, help="parallel requests (default 2)")


def _load(args: argparse.Namespace):
    from emollama.data.benchmarks import get_benchmark

    bench = get_benchmark(args.name, **parse_opts(args.opt))
    fold = args.fold
    if fold is None and bench.folds:
        fold = 1
        print(f"{args.name}: no --fold given; using fold 1", file=sys.stderr)
    return bench.load(args.root, args.split, fold, strict=args.strict, check_media=not args.no_media_check)


def _run_category(args: argparse.Namespace) -> int:
    from emollama.data.schema import write_jsonl
    from emollama.instruct.category import generate

    res = _load(args)
    samples = res.samples[: args.limit] if args.limit > 0 else res.samples
    records = generate(samples, res.info, args.templates, args.seed, args.shuffle_options,
                       vocabularies=args.vocabulary, media_prefix=args.media_prefix)
    n = write_jsonl(records, args.out)
    digest = hashlib.sha256(Path(args.out).read_bytes()).hexdigest()
    print(f"wrote {n} category records to {args.out} (sha256 {digest[:16]})")
    lines = res.report.lines()
    if lines:
        print("\n".join(lines))
    return 0


def _run_conversation(args: argparse.Namespace) -> int:
    print(f"emollama gen-data: error: {NOT_BUILT}", file=sys.stderr)
    return 2


# kind -> runner; the conversation runner is replaced when providers land
KINDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "category": _run_category,
    "conversation": _run_conversation,
}


def run(args: argparse.Namespace) -> int:
    if args.kind != "conversation" and args.provider:
        raise ValueError(f"--provider applies to --kind conversation only (got --kind {args.kind})")
    return KINDS[args.kind](args)
