"""`emollama gen-data`: dataset on disk -> instruction JSONL (category now; conversation providers plug in later).

Each ``--kind`` maps to a runner in ``KINDS``; a conversation runner (issue #4 §3: gemini / openai / offline
providers) registers itself there and reads the provider flags already parsed here.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from emollama.cli.datasets import LoadOptions, parse_opts
from emollama.cli.options import arg
from emollama.instruct.client import ClientConfig
from emollama.instruct.gates import GateConfig

HELP = "generate instruction data (JSONL) from a dataset on disk: --kind category (FERID questions) | conversation"
_CLIENT, _GATES = ClientConfig(), GateConfig()  # the request and gate defaults the generator itself uses


@dataclass(kw_only=True)
class Options(LoadOptions):
    """`emollama gen-data` options; the conversation ones are read by the conversation runner only."""

    kind: str = arg(choices=["category", "conversation"], help="instruction kind")
    out: str = arg(metavar="FILE.jsonl", help="output JSONL (written atomically)")
    split: str = arg("train", help="split to read (default: {default})")
    fold: int | None = arg(None, help="fold for DFEW/MAFW (default: 1, as FERID used one fold)")
    seed: int = arg(0, help="seed for template/vocabulary choice and shuffling (default {default})")
    limit: int = arg(0, help="only the first N samples (0 = all)")
    sample: int = arg(0, metavar="N",
                      help="a random N-sample subset drawn with --seed (dataset order kept; 0 = all); applied "
                           "after --limit. Use it for a class-unbiased subset: datasets list samples class by class")
    media_prefix: str = arg("", metavar="DIR",
                            help="prefix for media paths in the JSONL, e.g. RAF-DB/basic for a shared data root")
    templates: list[str] = arg(default_factory=lambda: ["ferid"], nargs="+", metavar="ID", group="category",
                               help="question template ids, e.g. ferid which feel classify (seeded choice per "
                                    "sample)")
    vocabulary: list[str] = arg(default_factory=lambda: ["canonical"], nargs="+", metavar="NAME", group="category",
                                help="option/answer words: canonical, ferid_joy (happiness->joy), adjectives "
                                     "(seeded choice)")
    shuffle_options: bool = arg(False, group="category", help="seeded per-sample option order (recorded)")
    priors: str | None = arg(None, metavar="MANIFEST.jsonl",
                             help="manifest written by `emollama prepare`: fills each record's prior_key (sample id "
                                  "-> face-prior cache key) so training/eval read the same cached priors")
    provider: str | None = arg(None, choices=["gemini", "openai", "offline"], group="conversation",
                               help="conversation generator: gemini (google-genai), openai (any OpenAI-compatible "
                                    "endpoint), offline (templates grounded in AU cues; no network)")
    model: str | None = arg(None, metavar="ID", group="conversation",
                            help="model id (default: gemini-2.5-flash / gpt-4o-mini)")
    base_url: str | None = arg(None, metavar="URL", group="conversation",
                               help="API endpoint, e.g. http://localhost:8000/v1 (vLLM), http://localhost:11434/v1 "
                                    "(Ollama)")
    concurrency: int = arg(2, group="conversation", help="requests in flight at most (default {default})")
    rate: float | None = arg(None, metavar="REQ_PER_S", group="conversation",
                             help="rate limit in requests/second (default: none)")
    ledger: str | None = arg(None, metavar="FILE.sqlite", group="conversation",
                             help="request ledger for resume/caching (default: <out>.ledger.sqlite for API "
                                  "providers)")
    timeout: float = arg(_CLIENT.timeout, group="conversation",
                         help="seconds per HTTP request (default {default:g})")
    max_attempts: int = arg(_CLIENT.max_attempts, group="conversation",
                            help="tries per request on 429/5xx/timeouts (default {default})")
    label_retries: int = arg(_GATES.label_retries, group="conversation",
                             help="new generations after a label/length gate failure before the sample is dropped "
                                  "(default {default})")
    prompt_version: str | None = arg(None, metavar="NAME", group="conversation",
                                     help="prompt file in resources/prompts (default conversation_v1)")
    captions: str | None = arg(None, metavar="FILE", group="conversation",
                               help="clip captions for videos: JSON {id: caption} or JSONL")
    keys_file: str | None = arg(None, metavar="FILE", group="conversation",
                                help="YAML {gemini: KEY, openai: KEY} (default: env vars, then $EMOLLAMA_KEYS_FILE "
                                     "or ~/.config/emollama/keys.yaml)")
    api_key_env: str | None = arg(None, metavar="VAR", group="conversation",
                                  help="openai: read the key from this variable first")
    price: list[float] | None = arg(None, nargs=2, metavar=("IN", "OUT"), group="conversation",
                                    help="USD per million input/output tokens, for the cost line of the report")


def _load(opts: Options):
    from emollama.data.benchmarks import get_benchmark

    bench = get_benchmark(opts.name, **parse_opts(opts.opt))
    fold = opts.fold
    if fold is None and bench.folds:
        fold = 1
        print(f"{opts.name}: no --fold given; using fold 1", file=sys.stderr)
    return bench.load(opts.root, opts.split, fold, strict=opts.strict, check_media=not opts.no_media_check)


def _run_category(opts: Options) -> int:
    from emollama.data.schema import write_jsonl
    from emollama.instruct.category import generate

    res = _load(opts)
    samples = select_samples(res.samples, opts.limit, opts.sample, opts.seed)
    records = generate(samples, res.info, opts.templates, opts.seed, opts.shuffle_options,
                       vocabularies=opts.vocabulary, media_prefix=opts.media_prefix)
    keys = _prior_keys(opts)
    if keys:
        records = _with_prior_keys(records, samples, keys)
    n = write_jsonl(records, opts.out)
    digest = hashlib.sha256(Path(opts.out).read_bytes()).hexdigest()
    print(f"wrote {n} category records to {opts.out} (sha256 {digest[:16]})")
    lines = res.report.lines()
    if lines:
        print("\n".join(lines))
    return 0


def select_samples(samples: list, limit: int = 0, sample: int = 0, seed: int = 0) -> list:
    """The first ``limit`` samples (0 = all), then a seeded random ``sample`` of them in their original order."""
    import random

    picked = samples[:limit] if limit > 0 else list(samples)
    if 0 < sample < len(picked):
        keep = sorted(random.Random(seed).sample(range(len(picked)), sample))
        picked = [picked[i] for i in keep]
    return picked


def _prior_keys(opts: Options) -> dict[str, str]:
    if not opts.priors:
        return {}
    from emollama.priors.prepare import read_manifest

    keys = read_manifest(opts.priors)
    if not keys:
        raise ValueError(f"{opts.priors}: no cached priors listed; run `emollama prepare` first")
    return keys


def _with_prior_keys(records, samples, keys: dict[str, str]):
    """Category records come one per sample, in sample order: attach each sample's cache key."""
    for rec, sample in zip(records, samples, strict=True):
        rec.prior_key = keys.get(sample.id)
        yield rec


def _conversation_cues(opts: Options):
    """Captions and/or prior keys per sample id, as the generator's `Cues`."""
    from dataclasses import replace

    from emollama.instruct.conversation import Cues, load_captions

    cues = dict(load_captions(opts.captions)) if opts.captions else {}
    for sid, key in _prior_keys(opts).items():
        cues[sid] = replace(cues[sid], prior_key=key) if sid in cues else Cues(prior_key=key)
    return cues or None


def _run_conversation(opts: Options) -> int:
    from emollama.instruct.conversation import generate_conversations
    from emollama.instruct.providers import build_provider
    from emollama.instruct.providers.base import ProviderError

    if not opts.provider:
        raise ValueError("--kind conversation needs --provider gemini | openai | offline")
    given = {"model": opts.model, "base_url": opts.base_url, "prompt_version": opts.prompt_version,
             "keys_file": opts.keys_file, "api_key_env": opts.api_key_env if opts.provider == "openai" else None}
    try:
        provider = build_provider(opts.provider, timeout=opts.timeout, **{k: v for k, v in given.items() if v})
    except ProviderError as err:  # e.g. no API key configured: a user error, not a crash
        print(f"emollama gen-data: error: {err}", file=sys.stderr)
        return 1
    res = _load(opts)
    samples = select_samples(res.samples, opts.limit, opts.sample, opts.seed)
    rep = generate_conversations(
        samples, res.info, provider, opts.out, opts.ledger, opts.seed,
        cues=_conversation_cues(opts),
        client_config=ClientConfig(concurrency=opts.concurrency, rate=opts.rate, max_attempts=opts.max_attempts,
                                   timeout=opts.timeout),
        gates=GateConfig(label_retries=opts.label_retries), vocabulary=opts.vocabulary[0],
        media_prefix=opts.media_prefix, price_per_mtok=tuple(opts.price) if opts.price else None)
    print(f"wrote {rep['generated']} conversation records to {opts.out} (sha256 {rep['sha256'][:16]}); "
          f"rejected {rep['n_rejected']} {rep['rejected']}; tokens {rep['tokens']['total']} "
          f"(paid this run {rep['tokens']['paid_this_run']}); report {opts.out}.report.json")
    lines = res.report.lines()
    if lines:
        print("\n".join(lines))
    return 0 if rep["generated"] else 3


# kind -> runner
KINDS: dict[str, Callable[[Options], int]] = {
    "category": _run_category,
    "conversation": _run_conversation,
}


def run(opts: Options) -> int:
    """Write the instruction JSONL of ``opts.kind``; the process exit code."""
    if opts.kind != "conversation" and opts.provider:
        raise ValueError(f"--provider applies to --kind conversation only (got --kind {opts.kind})")
    return KINDS[opts.kind](opts)
