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
    p.add_argument("--priors", metavar="MANIFEST.jsonl",
                   help="manifest written by `emollama prepare`: fills each record's prior_key (sample id -> "
                        "face-prior cache key) so training/eval read the same cached priors")
    c = p.add_argument_group("conversation")
    c.add_argument("--provider", choices=["gemini", "openai", "offline"],
                   help="conversation generator: gemini (google-genai), openai (any OpenAI-compatible endpoint), "
                        "offline (templates grounded in AU cues; no network)")
    c.add_argument("--model", metavar="ID", help="model id (default: gemini-2.5-flash / gpt-4o-mini)")
    c.add_argument("--base-url", metavar="URL",
                   help="API endpoint, e.g. http://localhost:8000/v1 (vLLM), http://localhost:11434/v1 (Ollama)")
    c.add_argument("--concurrency", type=int, default=2, help="requests in flight at most (default 2)")
    c.add_argument("--rate", type=float, metavar="REQ_PER_S", help="rate limit in requests/second (default: none)")
    c.add_argument("--ledger", metavar="FILE.sqlite",
                   help="request ledger for resume/caching (default: <out>.ledger.sqlite for API providers)")
    c.add_argument("--timeout", type=float, default=60.0, help="seconds per HTTP request (default 60)")
    c.add_argument("--max-attempts", type=int, default=6, help="tries per request on 429/5xx/timeouts (default 6)")
    c.add_argument("--label-retries", type=int, default=2,
                   help="new generations after a label/length gate failure before the sample is dropped (default 2)")
    c.add_argument("--prompt-version", metavar="NAME",
                   help="prompt file in resources/prompts (default conversation_v1)")
    c.add_argument("--captions", metavar="FILE", help="clip captions for videos: JSON {id: caption} or JSONL")
    c.add_argument("--keys-file", metavar="FILE", help="YAML {gemini: KEY, openai: KEY} (default: env vars, then "
                                                      "$EMOLLAMA_KEYS_FILE or ~/.config/emollama/keys.yaml)")
    c.add_argument("--api-key-env", metavar="VAR", help="openai: read the key from this variable first")
    c.add_argument("--price", nargs=2, type=float, metavar=("IN", "OUT"),
                   help="USD per million input/output tokens, for the cost line of the report")


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
    keys = _prior_keys(args)
    if keys:
        records = _with_prior_keys(records, samples, keys)
    n = write_jsonl(records, args.out)
    digest = hashlib.sha256(Path(args.out).read_bytes()).hexdigest()
    print(f"wrote {n} category records to {args.out} (sha256 {digest[:16]})")
    lines = res.report.lines()
    if lines:
        print("\n".join(lines))
    return 0


def _prior_keys(args: argparse.Namespace) -> dict[str, str]:
    if not args.priors:
        return {}
    from emollama.data.prior_prepare import read_manifest

    keys = read_manifest(args.priors)
    if not keys:
        raise ValueError(f"{args.priors}: no cached priors listed; run `emollama prepare` first")
    return keys


def _with_prior_keys(records, samples, keys: dict[str, str]):
    """Category records come one per sample, in sample order: attach each sample's cache key."""
    for rec, sample in zip(records, samples, strict=True):
        rec.prior_key = keys.get(sample.id)
        yield rec


def _conversation_cues(args: argparse.Namespace):
    """Captions and/or prior keys per sample id, as the generator's `Cues`."""
    from dataclasses import replace

    from emollama.instruct.conversation import Cues, load_captions

    cues = dict(load_captions(args.captions)) if args.captions else {}
    for sid, key in _prior_keys(args).items():
        cues[sid] = replace(cues[sid], prior_key=key) if sid in cues else Cues(prior_key=key)
    return cues or None


def _run_conversation(args: argparse.Namespace) -> int:
    from emollama.instruct.client import ClientConfig
    from emollama.instruct.conversation import generate_conversations
    from emollama.instruct.gates import GateConfig
    from emollama.instruct.providers import build_provider
    from emollama.instruct.providers.base import ProviderError

    if not args.provider:
        raise ValueError("--kind conversation needs --provider gemini | openai | offline")
    opts = {"model": args.model, "base_url": args.base_url, "prompt_version": args.prompt_version,
            "keys_file": args.keys_file, "api_key_env": args.api_key_env if args.provider == "openai" else None}
    try:
        provider = build_provider(args.provider, timeout=args.timeout, **{k: v for k, v in opts.items() if v})
    except ProviderError as err:  # e.g. no API key configured: a user error, not a crash
        print(f"emollama gen-data: error: {err}", file=sys.stderr)
        return 1
    res = _load(args)
    samples = res.samples[: args.limit] if args.limit > 0 else res.samples
    rep = generate_conversations(
        samples, res.info, provider, args.out, args.ledger, args.seed,
        cues=_conversation_cues(args),
        client_config=ClientConfig(concurrency=args.concurrency, rate=args.rate, max_attempts=args.max_attempts,
                                   timeout=args.timeout),
        gates=GateConfig(label_retries=args.label_retries), vocabulary=args.vocabulary[0],
        media_prefix=args.media_prefix, price_per_mtok=tuple(args.price) if args.price else None)
    print(f"wrote {rep['generated']} conversation records to {args.out} (sha256 {rep['sha256'][:16]}); "
          f"rejected {rep['n_rejected']} {rep['rejected']}; tokens {rep['tokens']['total']} "
          f"(paid this run {rep['tokens']['paid_this_run']}); report {args.out}.report.json")
    lines = res.report.lines()
    if lines:
        print("\n".join(lines))
    return 0 if rep["generated"] else 3


# kind -> runner
KINDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "category": _run_category,
    "conversation": _run_conversation,
}


def run(args: argparse.Namespace) -> int:
    if args.kind != "conversation" and args.provider:
        raise ValueError(f"--provider applies to --kind conversation only (got --kind {args.kind})")
    return KINDS[args.kind](args)
