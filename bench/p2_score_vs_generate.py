#!/usr/bin/env python
"""P2: `emollama eval` score mode vs generate + parse on the same samples: time per sample, agreement, unparseable.

    python bench/p2_score_vs_generate.py [--n 16] [--budgets 16,64] [--batch-size 4] [--repeats 3]
    # -> bench/results/p2_score_vs_generate.json

Model: the `small` preset (real SmolLM2-135M-Instruct LM; vision tower, Q-Former and face modules random) when its
registry assets are installed, else a random model of the same shapes (recorded in the JSON). Data: N synthetic
cartoon faces (`emollama.data.synthetic`, 4 classes) in the generic folder layout, evaluated through the real
runner (`emollama.evaluation.runner.evaluate`, FERID prompt, seed 0) without face priors, so both modes see
identical inputs. Score mode = one left-padded prefill per batch + all K class continuations in one pass; generate =
greedy decoding of up to B new tokens (stopping at end-of-answer) for each budget B in --budgets (16 is the CLI
default; free-form answers need more to reach the class word), same batches, then the parser (strict). The vision
side is random, so no accuracy is reported: only speed, agreement between the modes and parse failures.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine_info, write_json  # noqa: E402  (bench/ is not a package)

CLASSES = ("happiness", "sadness", "surprise", "anger")


def build_model():
    """(model, processor, description): `small` with the real SmolLM2 LM, or random weights of the same shapes."""
    import torch

    try:
        from emollama.model.build import build_small

        model, proc = build_small(seed=0)
        return model, proc, "small preset: SmolLM2-135M-Instruct LM (real weights), random vision/Q-Former/face"
    except (FileNotFoundError, OSError, ImportError, KeyError) as err:
        print(f"small preset unavailable ({type(err).__name__}: {err}); using random weights", file=sys.stderr)
    from emollama.model.modeling import EmoLlamaForConditionalGeneration
    from emollama.model.presets import build_config
    from emollama.model.processor import EmoLlamaProcessor
    from emollama.model.tiny import tiny_lm_tokenizer, tiny_qformer_tokenizer

    config = build_config("small", ["conv_template=vicuna_v1"])  # tiny tokenizers have no chat template
    proc = EmoLlamaProcessor(tiny_lm_tokenizer(), tiny_qformer_tokenizer(), config)
    torch.manual_seed(0)
    return EmoLlamaForConditionalGeneration(config).eval(), proc, "RANDOM model with small-preset shapes (no assets)"


def write_faces(root: Path, n: int) -> Path:
    """ROOT/test/<class>/<i>.png: n jittered synthetic faces, classes round-robin, 224 px."""
    import numpy as np

    from emollama.data.synthetic import draw_face

    rng = np.random.default_rng(0)
    for i in range(n):
        label = CLASSES[i % len(CLASSES)]
        img, _ = draw_face(label, size=224, jitter=0.05, rng=rng)
        (root / "test" / label).mkdir(parents=True, exist_ok=True)
        img.save(root / "test" / label / f"{i:03d}.png")
    return root


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=16, help="synthetic faces (default 16)")
    ap.add_argument("--budgets", default="16,64", help="generate max_new_tokens values (default 16,64; 16 = CLI's)")
    ap.add_argument("--batch-size", type=int, default=4, help="samples per batch (default 4, the CLI's)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per budget; the median ratio is reported")
    ap.add_argument("--out", type=Path, default=RESULTS / "p2_score_vs_generate.json")
    args = ap.parse_args()

    import torch

    from emollama.data.benchmarks import get_benchmark
    from emollama.evaluation.backends import LocalBackend
    from emollama.evaluation.runner import build_items, evaluate
    from emollama.priors.providers import NullPriorSource

    torch.set_num_threads(2)
    t0 = time.perf_counter()
    model, proc, desc = build_model()
    load_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        root = write_faces(Path(tmp) / "faces", args.n)
        res = get_benchmark("folder").load(root, "test")
        info = res.info
        items = build_items([(None, res.samples)], info)
        budgets = [int(b) for b in args.budgets.split(",")]
        runs: dict[int, list] = {}
        for budget in budgets:
            backend = LocalBackend(model, proc, NullPriorSource(), model_id=desc, canonical=info.canonical,
                                   max_new_tokens=budget)
            # warm-up (allocator, kernels) on two samples, not timed
            evaluate(backend, items[:2], info=info, mode="both", out_dir=Path(tmp) / f"warm{budget}", progress=False,
                     n_boot=0)
            # mode both runs score then generate on each batch back to back, so both see the same machine load
            runs[budget] = [evaluate(backend, items, info=info, mode="both", out_dir=Path(tmp) / f"run{budget}-{r}",
                                     batch_size=args.batch_size, progress=False, n_boot=0)
                            for r in range(args.repeats)]
    score_runs = [r.timing["score"]["seconds_per_sample"] for rs in runs.values() for r in rs]
    sps = statistics.median(score_runs)
    score = runs[budgets[0]][0].reports["score"]
    gen = {}
    for budget, rs in runs.items():
        g = rs[0].reports["generate"]
        ratios = [r.timing["generate"]["seconds"] / r.timing["score"]["seconds"] for r in rs]
        cpu_ratios = [r.timing["generate"]["cpu_seconds"] / r.timing["score"]["cpu_seconds"] for r in rs]
        gen[str(budget)] = {
            "seconds_per_sample": round(statistics.median(r.timing["generate"]["seconds_per_sample"] for r in rs), 4),
            "speedup_score_vs_generate": round(statistics.median(ratios), 2),
            "speedup_per_repeat": [round(x, 2) for x in ratios],
            "speedup_cpu_time_per_repeat": [round(x, 2) for x in cpu_ratios],
            "unparseable": len(g.unparseable), "parse_status": g.status_counts(),
            "argmax_agreement": rs[0].agreement, "example_answers": [x.answer for x in g.records[:3]]}
    result = {
        "benchmark": "P2 score mode vs generate + parse",
        "command": f"python bench/p2_score_vs_generate.py --n {args.n} --budgets {args.budgets} "
                   f"--batch-size {args.batch_size} --repeats {args.repeats}",
        "machine": machine_info(),
        "model": desc,
        "model_load_s": round(load_s, 2),
        "data": f"{args.n} synthetic faces (emollama.data.synthetic, 224 px), classes {list(info.canonical)}",
        "prompt": {"template": items[0].template_id, "seed": 0, "example": items[0].question},
        "face_priors": "none (both modes see identical inputs)",
        "batch_size": args.batch_size,
        "repeats": args.repeats,
        "speedup_definition": "median over repeats of generate time / score time, measured in the same run",
        "score": {"seconds_per_sample": round(sps, 4), "seconds_per_sample_repeats": [round(x, 4) for x in score_runs],
                  "unparseable": len(score.unparseable), "classes_scored": len(info.canonical)},
        "generate_by_budget": gen,
        "target": "score >= 3x faster than generate, 0 unparseable in score mode",
        "target_met_by_budget": {b: bool(v["speedup_score_vs_generate"] >= 3 and len(score.unparseable) == 0)
                                 for b, v in gen.items()},
        "caveat": "vision/face modules are random: agreement measures the decoding strategies, not accuracy; "
                  "wall-clock times on a shared 2-core machine (see machine.loadavg_1_5_15)",
    }
    write_json(args.out, result)
    print(f"score {sps:.3f} s/sample (unparseable {len(score.unparseable)}); " + "; ".join(
        f"generate@{b} {v['seconds_per_sample']:.3f} s/sample = {v['speedup_score_vs_generate']}x, unparseable "
        f"{v['unparseable']}, agreement {v['argmax_agreement']['agree']}/{args.n}" for b, v in gen.items())
        + f"; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
