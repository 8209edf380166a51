"""`emollama predict`: ask an EMO-LLaMA model directory about the faces in one photo or video."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "answer a question about each face in a photo or video with an EMO-LLaMA model directory"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("media", type=Path, help="a photo or a video file")
    p.add_argument("--model", required=True,
                   help="emollama model directory (save_pretrained / `emollama convert` / `merge-lora` output)")
    p.add_argument("--question", default=None,
                   help="question about the face (default: what is the facial expression of the person?)")
    p.add_argument("--faces", choices=["all", "largest"], default="all", help="answer for every face or the largest")
    p.add_argument("--max-new-tokens", type=int, default=64, help="answer length cap in tokens (default 64)")
    p.add_argument("--video-sampling", default="uniform:8", metavar="POLICY",
                   help="frames per video: uniform:N | fps:F | peak:N | all (default uniform:8, the MLLM default)")
    p.add_argument("--backend", choices=["mediapipe", "synthetic"], default="mediapipe",
                   help="face analyzer that finds faces and computes the priors (synthetic: tests only)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--json", action="store_true", help="print one JSON object per face instead of text")


def run(args: argparse.Namespace) -> int:
    from emollama.analyze.media import media_kind
    from emollama.api import Analyzer, EmoLlama

    if not args.media.exists():
        raise FileNotFoundError(f"{args.media}: no such file")
    kind = media_kind(args.media)
    if kind is None:
        raise ValueError(f"{args.media}: not an image or video extension; pass a .jpg/.png/... or .mp4/.mov/...")
    analyzer = Analyzer(args.backend, video_sampling=args.video_sampling)
    llm = EmoLlama.from_pretrained(args.model, device=args.device, analyzer=analyzer,
                                   max_new_tokens=args.max_new_tokens)
    preds = llm.predict(**{kind: args.media}, question=args.question, faces=args.faces)
    if not preds:
        print(f"{args.media}: no face found")
        return 0
    for pr in preds:
        if args.json:
            print(json.dumps(pr.to_dict(), ensure_ascii=False))
            continue
        where = f"track {pr.track_id}" if pr.track_id is not None else f"face {pr.face_index}"
        top = ", ".join(f"{k} {v:.2f}" for k, v in sorted(pr.probabilities.items(), key=lambda kv: -kv[1])[:3])
        print(f"{where} at {[round(v) for v in pr.box]}: {pr.label} ({top})")
        print(f"  answer: {pr.text}")
        print(f"  analyzer: {pr.explanation}")
    return 0
