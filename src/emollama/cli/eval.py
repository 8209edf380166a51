"""`emollama eval`: WAR/UAR/macro-F1 (with bootstrap CIs) of a model on a FER benchmark in its official layout.

Modes: score (closed-set class log-likelihoods: calibrated probabilities, never unparseable), generate (greedy
answer + parser) or both (plus their agreement). Prompts are the training-time category questions (template + seed
recorded). Predictions are logged per sample in OUT/predictions.jsonl: rerunning the same command resumes.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

HELP = "evaluate a model (or an OpenAI-compatible API, zero-shot) on a FER benchmark: score | generate | both"
logger = logging.getLogger(__name__)
RANDOM_WEIGHTS = "model weights are RANDOM (tiny preset): these numbers are NOT accuracies, only a pipeline check"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="emollama model directory (save_pretrained / emollama convert), or 'tiny' "
                   "(random weights, smoke tests) or 'small' (SmolLM2 LM, random vision); not with --backend openai")
    p.add_argument("--dataset", required=True, help="benchmark: rafdb, affectnet7, affectnet8, ferplus, dfew, "
                   "ferv39k, mafw, ... (emollama datasets list)")
    p.add_argument("--root", required=True, type=Path, help="dataset root in the owners' official layout")
    p.add_argument("--split", help="split to evaluate (default: the dataset's test split)")
    p.add_argument("--fold", default=None, help="k, k1,k2,... or 'all' for DFEW/MAFW (default all); with several "
                   "folds the headline is the mean over folds, pooled metrics reported separately")
    p.add_argument("--mode", choices=("score", "generate", "both"), default="score",
                   help="score: log-likelihood of each class name after the prompt (one shared prefill); generate: "
                   "greedy answer + parser; both: both + agreement (default score)")
    p.add_argument("--policy", choices=("strict", "first"), default="strict",
                   help="parse policy for generated answers: strict = exactly one class named (default); first = "
                   "first class named")
    p.add_argument("--priors", default="auto", help="face priors: 'auto' (computed per sample, cold; default), "
                   "'none' (no <face> tokens), or a prior cache directory written by `emollama prepare`; a cache also "
                   "supplies tower-ready frames where `prepare --frames-for-model` stored them (decoding otherwise)")
    p.add_argument("--prior-extractor", help="prior extractor, cold or as given to `emollama prepare --extractor` "
                   "(default: mediapipe for 478-landmark models, synthetic for the tiny model)")
    p.add_argument("--prior-opt", action="append", default=[], metavar="KEY=VALUE",
                   help="extractor option, as given to `emollama prepare --extractor-opt` (part of the cache key)")
    p.add_argument("--prior-sampling", metavar="POLICY", help="video frames the priors cover, as given to `emollama "
                   "prepare --video-sampling` (default: the model's frame_sampling, i.e. the frames it sees)")
    p.add_argument("--prior-fallback", action="store_true", help="compute priors cold for samples the cache lacks "
                   "(default: error)")
    p.add_argument("--no-agr", action="store_true", help="omit the AGR sentence (predicted age/gender from the face "
                   "prior) that training puts at the start of the question (default: inserted, as in training; "
                   "for the with/without-AGR ablation)")
    p.add_argument("--backend", choices=("local", "openai"), default="local",
                   help="local model, or an OpenAI-compatible chat API (zero-shot other MLLMs)")
    p.add_argument("--api-model", help="model name on the API server (with --backend openai)")
    p.add_argument("--base-url", help="API base URL, e.g. http://localhost:8000/v1 (default api.openai.com; key from "
                   "$OPENAI_API_KEY or the keys file, never the command line)")
    p.add_argument("--api-frames", type=int, default=4, help="video frames sent per clip to the API (default 4)")
    p.add_argument("--concurrency", type=int, default=4, help="API requests in flight (default 4)")
    p.add_argument("--rate", type=float, help="API requests per second (default unlimited)")
    p.add_argument("--out", type=Path, help="output directory (default eval_<dataset>_<mode>); holds "
                   "predictions.jsonl, <mode>.json/.md/.csv/.png, agreement.json")
    p.add_argument("--limit", type=int, help="evaluate only the first N samples of each fold (debugging)")
    p.add_argument("--seed", type=int, default=0, help="prompt seed (template choice per sample) and tiny-model "
                   "init seed (default 0)")
    p.add_argument("--template", action="append", help="category template id(s) (default ferid; repeat for a "
                   "seeded choice per sample)")
    p.add_argument("--vocabulary", default="canonical", help="option wording: canonical, ferid_joy, adjectives")
    p.add_argument("--synonyms", type=int, default=1, metavar="N", help="score mode: candidates per class (option "
                   "word + N-1 synonyms), combined per class by logsumexp (default 1: option word only)")
    p.add_argument("--max-new-tokens", type=int, default=16, help="generate mode: tokens decoded (default 16)")
    p.add_argument("--batch-size", type=int, default=4, help="samples per batch (default 4)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the 95%% CIs (default 1000)")
    p.add_argument("--retry-failed", action="store_true", help="rerun samples logged as failed (API calls that "
                   "gave up after every retry); by default they stay counted as wrong")
    p.add_argument("--overwrite", action="store_true", help="discard an existing predictions.jsonl in --out")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _folds(bench, info, fold: str | None) -> list[int | None]:
    if not info.folds:
        if fold not in (None, "all"):
            raise ValueError(f"{info.name} has no folds; drop --fold")
        return [None]
    if fold in (None, "all"):
        return list(info.folds)
    try:
        return [int(k) for k in str(fold).split(",")]
    except ValueError:
        raise ValueError(f"--fold {fold!r}: expected k, k1,k2,... or all") from None


def load_items(args: argparse.Namespace):
    """(DatasetInfo, items, run provenance) for the dataset/split/fold arguments."""
    from emollama.data.benchmarks import get_benchmark
    from emollama.evaluation.runner import build_items

    bench = get_benchmark(args.dataset)
    info = bench.info(args.root)
    split = args.split or info.test_split
    groups, skipped = [], {}
    for k in _folds(bench, info, args.fold):
        res = bench.load(args.root, split, k)
        info = res.info
        samples = res.samples[: args.limit] if args.limit else res.samples
        groups.append((None if k is None else str(k), samples))
        skipped[str(k)] = res.report.n_skipped
    templates = tuple(args.template or ["ferid"])
    items = build_items(groups, info, templates, args.vocabulary, args.seed)
    if not items:
        raise ValueError(f"{info.name} {split}: no samples to evaluate under {args.root}")
    folds = [g[0] for g in groups if g[0] is not None]
    run = {"split": split, "folds": folds or None, "vocabulary": args.vocabulary, "limit_per_fold": args.limit,
           "skipped_by_loader": skipped if folds else skipped["None"]}
    return info, items, run


def build_backend(args: argparse.Namespace, info, out: Path):
    """The local model backend (with its prior provider) or the zero-shot API backend; returns (backend, notes)."""
    import yaml

    if args.backend == "openai":
        from emollama.evaluation.zeroshot import OpenAIZeroShotBackend
        from emollama.instruct.client import ClientConfig

        if not args.api_model:
            raise ValueError("--backend openai needs --api-model NAME")
        cfg = ClientConfig(concurrency=args.concurrency, rate=args.rate)
        return OpenAIZeroShotBackend(args.api_model, args.base_url, frames=args.api_frames,
                                     max_tokens=args.max_new_tokens, seed=args.seed, client=cfg,
                                     ledger=out / "api_ledger.sqlite"), {}
    from emollama.evaluation.backends import LocalBackend
    from emollama.evaluation.inputs import build_media, build_priors

    if not args.model:
        raise ValueError("--model PATH|tiny|small is required with --backend local")
    notes = {}
    if args.model in ("tiny", "small"):
        from emollama.model.build import build_model

        model, proc = build_model(args.model, seed=args.seed)
        model_id = f"{args.model} preset (seed {args.seed})"
        # upper case: sorts first in the report's provenance list, where nobody can miss it
        notes["WARNING"] = RANDOM_WEIGHTS if args.model == "tiny" else \
            "small preset: real SmolLM2 LM but RANDOM vision/face modules: these numbers are NOT accuracies"
    else:
        from emollama.model.checkpoint import load_pretrained

        model, proc = load_pretrained(args.model)
        model_id = str(Path(args.model).resolve())
    opts = {}
    for kv in args.prior_opt:
        k, sep, v = kv.partition("=")
        if not sep:
            raise ValueError(f"--prior-opt {kv!r}: expected KEY=VALUE")
        opts[k.strip()] = yaml.safe_load(v)  # same typing as `emollama prepare --extractor-opt` (3 -> int)
    priors = build_priors(args.priors, proc, extractor=args.prior_extractor, options=opts,
                          policy=args.prior_sampling, fallback=args.prior_fallback)
    backend = LocalBackend(model, proc, priors, model_id=model_id, canonical=info.canonical,
                           max_new_tokens=args.max_new_tokens, max_synonyms=args.synonyms,
                           media=build_media(args.priors, proc), agr=not args.no_agr)
    return backend, notes


def run(args: argparse.Namespace) -> int:
    from emollama.evaluation.runner import evaluate

    out = args.out or Path(f"eval_{args.dataset}_{args.mode}")
    log = out / "predictions.jsonl"
    if args.overwrite and log.exists():
        log.unlink()
    info, items, run_prov = load_items(args)
    out.mkdir(parents=True, exist_ok=True)
    backend, notes = build_backend(args, info, out)
    result = evaluate(backend, items, info=info, mode=args.mode, policy=args.policy, out_dir=out,
                      batch_size=args.batch_size, run={**run_prov, **notes}, progress=not args.no_progress,
                      n_boot=args.n_boot, retry_failed=args.retry_failed)
    paths = result.save(out)
    for mode in result.reports:
        print(paths[f"{mode}.md"].read_text(encoding="utf-8"))
    if result.agreement:
        a = result.agreement
        print(f"score vs generate agreement: {a['agree']}/{a['n']} (generate parsed {a['generate_parsed']})")
    if "WARNING" in notes:
        print(f"WARNING: {notes['WARNING']}")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0
