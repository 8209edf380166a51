"""Conversation instructions (SPEC §5.3-5.5): samples -> provider -> quality gates -> validated JSONL + report.

Per sample: a seeded first question from the prompt file, a request through the robust client (ledger, rate limit,
retries), then the gates. A label or length failure retries with a new seed (a new ledger key), at most
``GateConfig.label_retries`` times, then the sample is dropped and its reason counted. Records are written in input
order to a temporary file renamed at the end, and every reply is re-served from the ledger on a rerun, so a run
killed at any point and resumed writes exactly the file a clean run writes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from emollama.constants import IMAGE_TOKEN
from emollama.data.benchmarks.base import DatasetInfo, Sample
from emollama.data.schema import InstructionRecord, RecordError, Turn, validate_dict, write_jsonl
from emollama.instruct.category import sample_rng  # same per-sample RNG scheme as category records
from emollama.instruct.client import ClientConfig, Ledger, RobustClient, ordered_map, request_key
from emollama.instruct.gates import GateConfig, label_problem, length_problem, text_key
from emollama.instruct.providers.base import Cues, Generation, GenerationRequest, Generator, Usage
from emollama.instruct.providers.prompts import DEFAULT_PROMPT_VERSION, load_prompts

logger = logging.getLogger(__name__)


@dataclass
class _Outcome:
    record: InstructionRecord | None = None
    reason: str | None = None
    turns: tuple[tuple[str, str], ...] = ()
    usage: Usage = Usage()
    gate_reasons: list[str] = field(default_factory=list)


def request_seed(seed: int, dataset: str, sample_id: str, attempt: int) -> int:
    """Stable 31-bit seed per (seed, dataset, sample, attempt): APIs take int32 seeds; Python's hash() is salted."""
    digest = hashlib.sha256(f"{seed}/{dataset}/{sample_id}/{attempt}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def load_captions(path: str | Path) -> dict[str, Cues]:
    """Clip captions (SPEC §5.4: a LLaVA-family model describes each clip first) as ``cues`` for the generator.

    Accepts a JSON object ``{sample_id: caption}``, or JSONL lines ``{"id": ..., "caption": ...}``; ids are the
    adapter's sample ids (e.g. DFEW "00001").
    """
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = json.loads(text)
        data = [data] if isinstance(data, dict) and set(data) == {"id", "caption"} else data  # one-line JSONL
        rows = data.items() if isinstance(data, dict) else ((d["id"], d["caption"]) for d in data)
    except json.JSONDecodeError:
        rows = ((d["id"], d["caption"]) for d in map(json.loads, filter(str.strip, text.splitlines())))
    return {str(k): Cues(caption=str(v).strip()) for k, v in rows if v}


def _cues_json(c: Cues) -> dict[str, Any]:
    return {"au": {k: round(v, 3) for k, v in sorted(c.au.items())}, "agr": asdict(c.agr) if c.agr else None,
            "caption": c.caption}


def generate_conversations(
    samples: Iterable[Sample], dataset: DatasetInfo | str, provider: Generator, out_path: str | Path,
    ledger_path: str | Path | None = None, seed: int = 0, *,
    cues: Callable[[Sample], Cues | None] | Mapping[str, Cues] | None = None,
    client_config: ClientConfig | None = None, gates: GateConfig | None = None, vocabulary: str = "canonical",
    media_prefix: str = "", placeholder: str = IMAGE_TOKEN, price_per_mtok: tuple[float, float] | None = None,
    sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Generate, gate and write conversation records; returns the report (also written to ``<out>.report.json``).

    Args:
        samples: adapter samples (``LoadResult.samples``), written in this order.
        dataset: the load's ``DatasetInfo`` (or a benchmark name); gives the name and the class vocabulary.
        provider: a ``Generator`` (``build_provider("gemini" | "openai" | "offline", ...)``).
        out_path: JSONL output (SPEC §5.5), replaced atomically at the end.
        ledger_path: SQLite ledger; default ``<out>.ledger.sqlite`` for API providers, none for offline.
        seed: base seed (question choice, API seed, offline wording); recorded in every record.
        cues: per-sample AU/AGR/caption/prior-key grounding, by sample id or as a function of the sample.
        vocabulary: word list for class names in prompts (``instruct.templates`` vocabularies, e.g. "ferid_joy").
        media_prefix: prepended to media paths in records (a shared data root).
        placeholder: token starting the first human turn; LLaMA-VID uses ``<image>`` for clips too (SPEC §5.5).
        price_per_mtok: (input, output) USD per million tokens for the cost estimate.
        sleep / clock: injectable for tests (backoff waits on a fake clock).
    """
    from emollama.instruct.templates import vocabulary as vocab_words

    if isinstance(dataset, str):
        from emollama.data.benchmarks import get_benchmark

        dataset = get_benchmark(dataset).info()
    info, gates, cfg = dataset, gates or GateConfig(), client_config or ClientConfig()
    out_path = Path(out_path)
    words = vocab_words(vocabulary)
    classes = tuple(words[c] for c in info.canonical)
    prompts = load_prompts(getattr(provider, "prompt_version", DEFAULT_PROMPT_VERSION)
                           if provider.needs_network else DEFAULT_PROMPT_VERSION)
    if ledger_path is None and provider.needs_network:
        ledger_path = out_path.with_name(out_path.name + ".ledger.sqlite")
    ledger = Ledger(ledger_path) if ledger_path else None
    client = RobustClient(cfg, ledger, tuple(provider.secrets()), sleep, clock)
    dedupe = gates.dedupe if gates.dedupe != "auto" else ("text" if provider.needs_network else "off")
    generator_id = f"{provider.name}:{provider.model}@{provider.prompt_version}"
    lookup = cues.get if isinstance(cues, Mapping) else cues

    def one(sample: Sample) -> _Outcome:
        c = (lookup(sample.id) if lookup else None) or Cues()
        if c.agr is None and sample.agr is not None:  # RAF-DB ships manual AGR: use it when no prediction is given
            c = replace(c, agr=sample.agr)
        kind = "video" if sample.is_video else "image"
        qid, question = prompts.choose_question(kind, sample_rng(seed, info.name, sample.id))
        out = _Outcome()
        sid = f"{info.name}/{sample.id}"
        for attempt in range(gates.label_retries + 1):
            req = GenerationRequest(sid, sample.label, words[sample.label], classes, kind, sample.media, question,
                                    request_seed(seed, info.name, sample.id, attempt), c)
            meta = {"provider": provider.name, "model": provider.model, "prompt_version": provider.prompt_version,
                    "settings": getattr(provider, "settings", {}), "sample_id": sid, "media": sample.media_rel,
                    "label": sample.label, "seed": seed, "attempt": attempt}
            key = request_key(**meta, question=question, classes=classes, cues=_cues_json(c))
            res = client.call(key, meta, lambda r=req: provider.generate(r), network=provider.needs_network)
            if res.status != "ok" or res.generation is None:
                out.reason = f"api_{res.status}"
                return out
            gen: Generation = res.generation
            out.usage = out.usage + gen.usage
            problem = label_problem(gen.turns, sample.label, classes) or length_problem(gen.turns, gates)
            if problem is None:
                out.turns, out.reason = gen.turns, None
                out.record = _record(sample, info, gen, qid, placeholder, media_prefix, seed, vocabulary,
                                     generator_id, provider, attempt, c)
                return out
            out.reason = problem
            out.gate_reasons.append(problem)
        return out

    rejected: Counter = Counter()
    gate_failures: Counter = Counter()
    seen: set[str] = set()
    total = Usage()
    n_in = 0

    def accepted() -> Iterable[InstructionRecord]:
        nonlocal total, n_in
        for n_in, o in enumerate(ordered_map(one, samples, max(1, cfg.concurrency) if provider.needs_network else 1),
                                 start=1):
            total = total + o.usage
            gate_failures.update(o.gate_reasons)
            if n_in % 500 == 0:
                logger.info("%d samples: %d rejected so far", n_in, sum(rejected.values()))
            if o.record is None:
                rejected[o.reason or "unknown"] += 1
                continue
            try:
                validate_dict(o.record.to_dict(), f"record {o.record.id}")
            except RecordError as err:
                logger.warning("schema: %s", err)
                rejected["schema"] += 1
                continue
            if dedupe == "text":
                k = text_key(o.turns)
                if k in seen:
                    rejected["duplicate"] += 1
                    continue
                seen.add(k)
            yield o.record

    try:
        n_out = write_jsonl(accepted(), out_path)
    finally:
        if ledger is not None:
            ledger.close()
    report = _report(info.name, provider, seed, out_path, n_in, n_out, rejected, gate_failures, client, total,
                     price_per_mtok, dedupe)
    out_path.with_name(out_path.name + ".report.json").write_text(json.dumps(report, indent=2) + "\n")
    logger.info("wrote %d conversation records to %s (%d rejected: %s; %d tokens)", n_out, out_path,
                report["n_rejected"], dict(rejected), total.total)
    return report


def _record(sample: Sample, info: DatasetInfo, gen: Generation, qid: str, placeholder: str, media_prefix: str,
            seed: int, vocabulary: str, generator_id: str, provider: Generator, attempt: int,
            cues: Cues) -> InstructionRecord:
    turns: list[Turn] = []
    for i, (q, a) in enumerate(gen.turns):
        turns += [Turn("human", f"{placeholder}\n{q}" if i == 0 else q), Turn("gpt", a)]
    media = f"{media_prefix.rstrip('/')}/{sample.media_rel}" if media_prefix else sample.media_rel
    extra = {"provider": provider.name, "model": provider.model, "model_version": gen.model,
             "prompt_version": provider.prompt_version, "attempt": attempt,
             "usage": {"prompt_tokens": gen.usage.prompt_tokens, "completion_tokens": gen.usage.completion_tokens}}
    return InstructionRecord(
        id=f"{info.name}/{sample.id}/conversation", conversations=turns, dataset=info.name, split=sample.split,
        fold=sample.fold, label_name=sample.label, dataset_index=sample.label_index, kind="conversation",
        template_id=qid, generator=generator_id, seed=seed, image=None if sample.is_video else media,
        video=media if sample.is_video else None, vocabulary=vocabulary, prior_key=cues.prior_key, extra=extra)


def _report(dataset: str, provider: Generator, seed: int, out_path: Path, n_in: int, n_out: int, rejected: Counter,
            gate_failures: Counter, client: RobustClient, total: Usage, price: tuple[float, float] | None,
            dedupe: str) -> dict[str, Any]:
    digest = hashlib.sha256(out_path.read_bytes()).hexdigest()
    rep: dict[str, Any] = {
        "dataset": dataset, "provider": provider.name, "model": provider.model,
        "prompt_version": provider.prompt_version, "seed": seed, "out": str(out_path), "sha256": digest,
        "samples": n_in, "generated": n_out, "n_rejected": sum(rejected.values()),
        "rejected": dict(sorted(rejected.items())), "gate_failures_retried": dict(sorted(gate_failures.items())),
        "dedupe": dedupe, "requests": dict(sorted(client.stats.items())),
        "tokens": {"prompt": total.prompt_tokens, "completion": total.completion_tokens, "total": total.total,
                   "paid_this_run": client.usage.total},
    }
    if price is not None:
        rep["cost_usd"] = round((total.prompt_tokens * price[0] + total.completion_tokens * price[1]) / 1e6, 4)
        rep["cost_usd_this_run"] = round((client.usage.prompt_tokens * price[0]
                                          + client.usage.completion_tokens * price[1]) / 1e6, 4)
    return rep
