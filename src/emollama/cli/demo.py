"""`emollama demo`: the first thing a new user runs (`make demo`).

Default: the analyzer (real pretrained face models from registry packages) on the sample media — a photo of a
smiling astronaut, four labelled expression photos, a group photo and a real video — printing the per-face
table and writing records + annotated images to `demo_out/`.

`--mllm`: the full EMO-LLaMA pipeline end to end with the random-weight `tiny` model on a generated face image
and video (processor -> vision tower -> LLaMA-VID tokens + face tokens -> LM -> greedy answer). Its answers are
random-weight noise by design: it proves the plumbing and makes no accuracy claim.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

from emollama.cli.analyze import verbose_field
from emollama.cli.options import arg

HELP = "analyze the sample media with the CPU face analyzer (--mllm: run the tiny MLLM pipeline end to end)"
SAMPLE_MEDIA = ("astronaut", "feat_happy", "feat_surprise", "feat_anger", "feat_disgust", "feat_multi_face",
                "feat_pexels_video")


@dataclass(kw_only=True)
class Options:
    """`emollama demo` options."""

    mllm: bool = arg(False, help="instead of the analyzer, run the tiny random-weight MLLM on generated media "
                                 "(plumbing only)")
    out: Path = arg(Path("demo_out"), help="analyzer outputs folder (default {default})")
    frames: int = arg(4, help="frames in the generated video (default {default})")
    max_new_tokens: int = arg(8, help="tokens generated per answer (default {default})")
    native_logs: bool = verbose_field()
    question: str = arg("What is the facial expression of the person?", help="question asked about each medium")
    ask: str = arg("Why does she look happy?",
                   help="question the shipped emollama-small checkpoint answers about the astronaut photo at the end "
                        "(default {default!r}; '' skips it)")


def run(opts: Options) -> int:
    """The analyzer demo, or with ``opts.mllm`` the tiny MLLM one; the process exit code."""
    return run_mllm(opts) if opts.mllm else run_analyzer(opts)


def run_analyzer(opts: Options) -> int:
    from emollama.analyze.runner import AnalyzeOptions
    from emollama.assets import resolve
    from emollama.cli.__main__ import main

    try:
        paths = [str(resolve(name)) for name in SAMPLE_MEDIA]
    except FileNotFoundError as err:
        print(f"emollama demo: sample media unavailable: {err}", file=sys.stderr)
        return 1
    print(f"emollama demo: analyzing {len(paths)} sample files (photos and a 20 s video) on the CPU")
    out = opts.out / "results.jsonl"
    rc = main(["analyze", *paths, "--out", str(out), "--overwrite", "--annotate", str(opts.out / "annotated"),
               "--video-sampling", AnalyzeOptions().video_sampling, *(["--verbose"] if opts.native_logs else [])])
    print(f"records: {out}  annotated images and video: {opts.out / 'annotated'}")
    if opts.ask:
        ask_emollama_small(paths[0], opts.ask)
    return rc


def ask_emollama_small(photo: str, question: str) -> None:
    """One answer of the shipped EMO-LLaMA-small checkpoint about ``photo`` (skipped, with the fix, when SmolLM2's
    registry package is not installed)."""
    from emollama.api import EmoLlama

    t0 = time.perf_counter()
    try:
        llm = EmoLlama.from_pretrained("emollama-small", max_new_tokens=48)
    except FileNotFoundError as err:  # SmolLM2's registry package (or the shipped weights) not installed
        print(f"emollama-small answer skipped: {err}")
        return
    preds = llm.predict(image=photo, question=question)
    for p in preds[:1]:
        print(f"emollama-small (135 M, trained on FER2013) asked {question!r} about {Path(photo).name}:")
        print(f"  label {p.label} ({p.probabilities[p.label]:.0%}); answer: {p.text.strip()!r}")
    print(f"  ({time.perf_counter() - t0:.1f} s, including loading the model)")


def run_mllm(opts: Options) -> int:
    import torch

    from emollama.data.synthetic import draw_face, synthetic_prior, synthetic_video
    from emollama.faces.contract import AGRAttributes
    from emollama.model import tokens
    from emollama.model.build import build_tiny
    from emollama.model.transforms import preprocess_frames

    t0 = time.perf_counter()
    model, proc = build_tiny()
    cfg = model.config
    n_params = sum(p.numel() for p in model.parameters())
    print(f"emollama demo: tiny model, {n_params:,} random parameters (answers are noise; this checks the pipeline)")
    image, _ = draw_face("happiness", 64)
    video = synthetic_video("surprise", frames=opts.frames)
    agr = AGRAttributes(age_group="20-39", gender="female")
    cases = [
        ("image", "<image>\n<face>\n", [image], [image]),
        (f"video ({opts.frames} frames)", "<video>\n<face>\n", [video], video),
    ]
    for name, tags, media, frames in cases:
        crops = preprocess_frames(frames, proc.preprocess)
        prior = synthetic_prior("happiness" if name == "image" else "surprise", len(frames), cfg.face_config, crops)
        conv = [{"role": "user", "content": tags + opts.question}]
        batch = proc(conv, media=media, faces=[prior], agr=agr, add_generation_prompt=True)
        batch.pop("labels")
        n_vis = tokens.num_visual_tokens(cfg, len(frames))
        with torch.no_grad():
            out = model.generate(**batch, max_new_tokens=opts.max_new_tokens, do_sample=False)
        answer = proc.decode(out[0, batch["input_ids"].shape[1] :])
        print(f"- {name}: {n_vis} visual tokens + {tokens.num_face_tokens(cfg)} face tokens, "
              f"prompt {batch['input_ids'].shape[1]} tokens -> answer: {answer!r}")
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return 0
