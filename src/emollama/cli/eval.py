"""`emollama eval`: WAR/UAR/macro-F1 (with bootstrap CIs) of a model on a FER benchmark in its official layout.

Modes: score (closed-set class log-likelihoods: calibrated probabilities, never unparseable), generate (greedy
answer + parser) or both (plus their agreement). Prompts are the training-time category questions (template + seed
recorded). Predictions are logged per sample in OUT/predictions.jsonl: rerunning the same command resumes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from emollama.cli.options import arg
from emollama.faces.align import CropConfig
from emollama.instruct.client import ClientConfig

HELP = "evaluate a model (or an OpenAI-compatible API, zero-shot) on a FER benchmark: score | generate | both"
logger = logging.getLogger(__name__)
RANDOM_WEIGHTS = "model weights are RANDOM (tiny preset): these numbers are NOT accuracies, only a pipeline check"


@dataclass(kw_only=True)
class Options:
    """`emollama eval` options."""

    model: str | None = arg(None, help="a shipped model ('emollama-small'), an emollama model directory "
                            "(save_pretrained / emollama convert / emollama export), or 'tiny' "
                            "(random weights, smoke tests) or 'small' (SmolLM2 LM, random vision); not with "
                            "--backend openai")
    dataset: str = arg(help="benchmark: rafdb, affectnet7, affectnet8, ferplus, dfew, ferv39k, mafw, ... "
                            "(emollama datasets list)")
    root: Path = arg(help="dataset root in the owners' official layout")
    split: str | None = arg(None, help="split to evaluate (default: the dataset's test split)")
    fold: str | None = arg(None, help="k, k1,k2,... or 'all' for DFEW/MAFW (default all); with several folds the "
                                      "headline is the mean over folds, pooled metrics reported separately")
    mode: str = arg("score", choices=("score", "generate", "both"),
                    help="score: log-likelihood of each class name after the prompt (one shared prefill); generate: "
                         "greedy answer + parser; both: both + agreement (default {default})")
    policy: str = arg("strict", choices=("strict", "first"),
                      help="parse policy for generated answers: strict = exactly one class named (default); first = "
                           "first class named")
    priors: str = arg("auto", help="face priors: 'auto' (computed per sample, cold; default), 'none' (no <face> "
                                   "tokens), or a prior cache directory written by `emollama prepare`; a cache also "
                                   "supplies tower-ready frames where `prepare --frames-for-model` stored them "
                                   "(decoding otherwise)")
    prior_extractor: str | None = arg(None, help="prior extractor, cold or as given to `emollama prepare "
                                                 "--extractor` (default: mediapipe for 478-landmark models, "
                                                 "synthetic for the tiny model)")
    prior_opt: list[str] = arg(default_factory=list, metavar="KEY=VALUE",
                               help="extractor option, as given to `emollama prepare --extractor-opt` (part of the "
                                    "cache key)")
    prior_sampling: str | None = arg(None, metavar="POLICY",
                                     help="video frames the priors cover, as given to `emollama prepare "
                                          "--video-sampling` (default: the model's frame_sampling, i.e. the frames "
                                          "it sees)")
    prior_crop_size: int = arg(CropConfig().size, metavar="PX",
                               help="face-crop side of the prior cache, as given to `emollama prepare --crop-size` "
                                    "(part of its keys; default {default})")
    prior_crop_margin: float = arg(CropConfig().margin,
                                   help="crop margin of the prior cache, as given to `emollama prepare --crop-margin` "
                                        "(default {default})")
    prior_fallback: bool = arg(False, help="compute priors cold for samples the cache lacks (default: error)")
    no_agr: bool = arg(False, help="omit the AGR sentence (predicted age/gender from the face prior) that training "
                                   "puts at the start of the question (default: inserted, as in training; for the "
                                   "with/without-AGR ablation)")
    ablation: bool = arg(False, help="also score the same samples without the AGR sentence, without <face> tokens, "
                                     "and without both (score mode, local backend); writes ablation.json/.md with "
                                     "all four variants")
    ablation_sample: int = arg(0, metavar="N",
                               help="run the ablation on a seeded random N-sample subset of the evaluated samples "
                                    "(seed --seed; 0 = all of them; default {default})")
    backend: str = arg("local", choices=("local", "openai"),
                       help="local model, or an OpenAI-compatible chat API (zero-shot other MLLMs)")
    api_model: str | None = arg(None, help="model name on the API server (with --backend openai)")
    base_url: str | None = arg(None, help="API base URL, e.g. http://localhost:8000/v1 (default api.openai.com; key "
                                          "from $OPENAI_API_KEY or the keys file, never the command line)")
    api_frames: int = arg(4, help="video frames sent per clip to the API (default {default})")
    concurrency: int = arg(ClientConfig().concurrency, help="API requests in flight (default {default})")
    rate: float | None = arg(None, help="API requests per second (default unlimited)")
    out: Path | None = arg(None, help="output directory (default eval_<dataset>_<mode>); holds predictions.jsonl, "
                                      "<mode>.json/.md/.csv/.png, agreement.json")
    limit: int | None = arg(None, help="evaluate only the first N samples of each fold (debugging)")
    seed: int = arg(0, help="prompt seed (template choice per sample) and tiny-model init seed (default {default})")
    template: list[str] | None = arg(None, help="category template id(s) (default ferid; repeat for a seeded "
                                                "choice per sample)")
    vocabulary: str = arg("canonical", help="option wording: canonical, ferid_joy, adjectives")
    synonyms: int = arg(1, metavar="N", help="score mode: candidates per class (option word + N-1 synonyms), "
                                             "combined per class by logsumexp (default {default}: option word only)")
    max_new_tokens: int = arg(16, help="generate mode: tokens decoded (default {default})")
    batch_size: int = arg(4, help="samples per batch (default {default})")
    n_boot: int = arg(1000, help="bootstrap resamples for the 95%% CIs (default {default})")
    retry_failed: bool = arg(False, help="rerun samples logged as failed (API calls that gave up after every "
                                         "retry); by default they stay counted as wrong")
    overwrite: bool = arg(False, help="discard an existing predictions.jsonl in --out")
    no_progress: bool = arg(False, help="hide the progress bar")


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


def load_items(opts: Options):
    """(DatasetInfo, items, run provenance) for the dataset/split/fold arguments."""
    from emollama.data.benchmarks import get_benchmark
    from emollama.evaluation.runner import build_items

    bench = get_benchmark(opts.dataset)
    info = bench.info(opts.root)
    split = opts.split or info.test_split
    groups, skipped = [], {}
    for k in _folds(bench, info, opts.fold):
        res = bench.load(opts.root, split, k)
        info = res.info
        samples = res.samples[: opts.limit] if opts.limit else res.samples
        groups.append((None if k is None else str(k), samples))
        skipped[str(k)] = res.report.n_skipped
    templates = tuple(opts.template or ["ferid"])
    items = build_items(groups, info, templates, opts.vocabulary, opts.seed)
    if not items:
        raise ValueError(f"{info.name} {split}: no samples to evaluate under {opts.root}")
    folds = [g[0] for g in groups if g[0] is not None]
    run = {"split": split, "folds": folds or None, "vocabulary": opts.vocabulary, "limit_per_fold": opts.limit,
           "skipped_by_loader": skipped if folds else skipped["None"]}
    return info, items, run


def build_backend(opts: Options, info, out: Path):
    """The local model backend (with its prior provider) or the zero-shot API backend; returns (backend, notes)."""
    import yaml

    if opts.backend == "openai":
        from emollama.evaluation.zeroshot import OpenAIZeroShotBackend

        if not opts.api_model:
            raise ValueError("--backend openai needs --api-model NAME")
        cfg = ClientConfig(concurrency=opts.concurrency, rate=opts.rate)
        return OpenAIZeroShotBackend(opts.api_model, opts.base_url, frames=opts.api_frames,
                                     max_tokens=opts.max_new_tokens, seed=opts.seed, client=cfg,
                                     ledger=out / "api_ledger.sqlite"), {}
    from emollama.evaluation.backends import LocalBackend
    from emollama.evaluation.inputs import build_media
    from emollama.priors.source import model_prior_source

    if not opts.model:
        raise ValueError("--model PATH|tiny|small is required with --backend local")
    notes = {}
    if opts.model in ("tiny", "small"):
        from emollama.model.build import build_model

        model, proc = build_model(opts.model, seed=opts.seed)
        model_id = f"{opts.model} preset (seed {opts.seed})"
        # upper case: sorts first in the report's provenance list, where nobody can miss it
        notes["WARNING"] = RANDOM_WEIGHTS if opts.model == "tiny" else \
            "small preset: real SmolLM2 LM but RANDOM vision/face modules: these numbers are NOT accuracies"
    else:
        from emollama.training.ship import SHIPPED, load_any

        model, proc = load_any(opts.model)
        model_id = opts.model if opts.model in SHIPPED else str(Path(opts.model).resolve())
    ext_opts = {}
    for kv in opts.prior_opt:
        k, sep, v = kv.partition("=")
        if not sep:
            raise ValueError(f"--prior-opt {kv!r}: expected KEY=VALUE")
        ext_opts[k.strip()] = yaml.safe_load(v)  # same typing as `emollama prepare --extractor-opt` (3 -> int)
    priors = model_prior_source(opts.priors, proc, extractor=opts.prior_extractor, options=ext_opts,
                                policy=opts.prior_sampling, fallback=opts.prior_fallback,
                                crop=CropConfig(opts.prior_crop_margin, opts.prior_crop_size))
    backend = LocalBackend(model, proc, priors, model_id=model_id, canonical=info.canonical,
                           max_new_tokens=opts.max_new_tokens, max_synonyms=opts.synonyms,
                           media=build_media(opts.priors, proc), agr=not opts.no_agr,
                           crop_margin=opts.prior_crop_margin)
    return backend, notes


def run(opts: Options) -> int:
    """Evaluate, write the reports into ``opts.out`` and print them."""
    from emollama.evaluation.runner import evaluate

    out = opts.out or Path(f"eval_{opts.dataset}_{opts.mode}")
    log = out / "predictions.jsonl"
    if opts.overwrite and log.exists():
        log.unlink()
    info, items, run_prov = load_items(opts)
    out.mkdir(parents=True, exist_ok=True)
    backend, notes = build_backend(opts, info, out)
    result = evaluate(backend, items, info=info, mode=opts.mode, policy=opts.policy, out_dir=out,
                      batch_size=opts.batch_size, run={**run_prov, **notes}, progress=not opts.no_progress,
                      n_boot=opts.n_boot, retry_failed=opts.retry_failed)
    paths = result.save(out)
    if opts.ablation:
        paths.update(run_ablation(opts, backend, items, info, run_prov, notes, out, result))
    for mode in result.reports:
        print(paths[f"{mode}.md"].read_text(encoding="utf-8"))
    if result.agreement:
        a = result.agreement
        print(f"score vs generate agreement: {a['agree']}/{a['n']} (generate parsed {a['generate_parsed']})")
    if "ablation.md" in paths:
        print(paths["ablation.md"].read_text(encoding="utf-8"))
    if "WARNING" in notes:
        print(f"WARNING: {notes['WARNING']}")
    print("wrote " + ", ".join(str(p) for p in paths.values()))
    return 0


ABLATIONS = (("agr+face", True, True), ("face only (no AGR)", False, True), ("AGR only (no face tokens)", True, False),
             ("neither", False, False))


def run_ablation(opts: Options, backend, items, info, run_prov: dict, notes: dict, out: Path, main) -> dict[str, Path]:
    """Score ``items`` under the four AGR x face-token variants (the main run's score report counts as the first
    unless it was run without AGR); each variant logs under out/ablation/<k>/ and resumes like the main run."""
    import copy
    import json

    from emollama.evaluation.backends import LocalBackend
    from emollama.evaluation.runner import evaluate

    if opts.backend != "local" or not isinstance(backend, LocalBackend):
        raise ValueError("--ablation needs the local backend")
    subset = 0 < opts.ablation_sample < len(items)
    if subset:
        import random

        keep = sorted(random.Random(opts.seed).sample(range(len(items)), opts.ablation_sample))
        items = [items[i] for i in keep]
    rows = []
    for k, (name, agr, face) in enumerate(ABLATIONS):
        if not subset and "score" in main.reports and agr == backend.agr and face == backend.face_tokens:
            rep = main.reports["score"]
        else:
            variant = copy.copy(backend)
            variant.agr, variant.face_tokens = agr, face
            res = evaluate(variant, items, info=info, mode="score", policy=opts.policy,
                           out_dir=out / "ablation" / str(k), batch_size=opts.batch_size,
                           run={**run_prov, **notes}, progress=not opts.no_progress, n_boot=opts.n_boot)
            res.save(out / "ablation" / str(k))
            rep = res.reports["score"]
        m = rep.metrics
        rows.append({"variant": name, "agr": agr, "face_tokens": face, "n": len(rep.records),
                     "war": m["war"]["value"], "war_ci": m["war"].get("ci"), "uar": m["uar"]["value"],
                     "uar_ci": m["uar"].get("ci"), "macro_f1": m["macro_f1"]["value"]})
    doc = {"dataset": info.name, "split": run_prov.get("split"), "mode": "score", "model": backend.model_id,
           "subset": {"n": len(items), "seed": opts.seed, "ids": [it.key for it in items]} if subset else None,
           "variants": rows}
    paths = {"ablation.json": out / "ablation.json", "ablation.md": out / "ablation.md"}
    paths["ablation.json"].write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    where = f"a seeded random subset (seed {opts.seed})" if subset else "all evaluated samples"
    lines = [f"### AGR / face-token ablation: {info.name} {run_prov.get('split')}, score mode, n = {rows[0]['n']} "
             f"({where})",
             "", "| variant | AGR | face tokens | WAR % | UAR % | macro-F1 % |", "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['variant']} | {'yes' if r['agr'] else 'no'} | {'yes' if r['face_tokens'] else 'no'} | "
                     f"{100 * r['war']:.2f} | {100 * r['uar']:.2f} | {100 * r['macro_f1']:.2f} |")
    paths["ablation.md"].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths
