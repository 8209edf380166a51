"""`emollama demo`: the first thing a new user runs (`make demo`).

Default: the analyzer (real pretrained face models from registry packages) on the sample media — a photo of a
smiling astronaut, four labelled expression photos, a group photo and a real video — printing the per-face
table and writing records + annotated images to `demo_out/`.

`--mllm`: the full EMO-LLaMA pipeline end to end with the random-weight `tiny` model on a generated face image
and video (processor -> vision tower -> LLaMA-VID tokens + face tokens -> LM -> greedy answer). Its answers are
random-weight noise by design: it proves the plumbing and makes no accuracy claim.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from emollama.cli.analyze import add_verbose_argument

HELP = "analyze the sample media with the CPU face analyzer (--mllm: run the tiny MLLM pipeline end to end)"
SAMPLE_MEDIA = ("astronaut", "feat_happy", "feat_surprise", "feat_anger", "feat_disgust", "feat_multi_face",
                "feat_pexels_video")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mllm", action="store_true",
                   help="instead of the analyzer, run the tiny random-weight MLLM on generated media (plumbing only)")
    p.add_argument("--out", type=Path, default=Path("demo_out"), help="analyzer outputs folder (default demo_out)")
    p.add_argument("--frames", type=int, default=4, help="frames in the generated video (default 4)")
    p.add_argument("--max-new-tokens", type=int, default=8, help="tokens generated per answer (default 8)")
    add_verbose_argument(p)
    p.add_argument("--question", default="What is the facial expression of the person?",
                   help="question asked about each medium")


def run(args: argparse.Namespace) -> int:
    return run_mllm(args) if args.mllm else run_analyzer(args)


def run_analyzer(args: argparse.Namespace) -> int:
    from emollama.assets import resolve
    from emollama.cli.__main__ import main

    try:
        paths = [str(resolve(name)) for name in SAMPLE_MEDIA]
    except FileNotFoundError as err:
        print(f"emollama demo: sample media unavailable: {err}", file=sys.stderr)
        return 1
    print(f"emollama demo: analyzing {len(paths)} sample files (photos and a 20 s video) on the CPU")
    out = args.out / "results.jsonl"
    rc = main(["analyze", *paths, "--out", str(out), "--overwrite", "--annotate", str(args.out / "annotated"),
               "--video-sampling", "fps:2", *(["--verbose"] if args.native_logs else [])])
    print(f"records: {out}  annotated images and video: {args.out / 'annotated'}")
    return rc


def run_mllm(args: argparse.Namespace) -> int:
    import torch

    from emollama.data.synthetic import draw_face, synthetic_prior, synthetic_video
    from emollama.instruct.agr import AGRAttributes
    from emollama.model import tokens
    from emollama.model.build import build_tiny
    from emollama.vision.transforms import preprocess_frames

    t0 = time.perf_counter()
    model, proc = build_tiny()
    cfg = model.config
    n_params = sum(p.numel() for p in model.parameters())
    print(f"emollama demo: tiny model, {n_params:,} random parameters (answers are noise; this checks the pipeline)")
    image, _ = draw_face("happiness", 64)
    video = synthetic_video("surprise", frames=args.frames)
    agr = AGRAttributes(age_group="20-39", gender="female")
    cases = [
        ("image", "<image>\n<face>\n", [image], [image]),
        (f"video ({args.frames} frames)", "<video>\n<face>\n", [video], video),
    ]
    for name, tags, media, frames in cases:
        crops = preprocess_frames(frames, proc.preprocess)
        prior = synthetic_prior("happiness" if name == "image" else "surprise", len(frames), cfg.face_config, crops)
        conv = [{"role": "user", "content": tags + args.question}]
        batch = proc(conv, media=media, faces=[prior], agr=agr, add_generation_prompt=True)
        batch.pop("labels")
        n_vis = tokens.num_visual_tokens(cfg, len(frames))
        with torch.no_grad():
            out = model.generate(**batch, max_new_tokens=args.max_new_tokens, do_sample=False)
        answer = proc.decode(out[0, batch["input_ids"].shape[1] :])
        print(f"- {name}: {n_vis} visual tokens + {tokens.num_face_tokens(cfg)} face tokens, "
              f"prompt {batch['input_ids'].shape[1]} tokens -> answer: {answer!r}")
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return 0
