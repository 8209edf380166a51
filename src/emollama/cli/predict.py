"""`emollama predict`: ask an EMO-LLaMA model directory about the faces in one photo or video."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from emollama.analyze.runner import AnalyzeOptions
from emollama.cli.options import arg
from emollama.media.sampling import DEFAULT_POLICY

HELP = "answer a question about each face in a photo or video with an EMO-LLaMA model directory"


@dataclass(kw_only=True)
class Options:
    """`emollama predict` options."""

    media: Path = arg(positional=True, help="a photo or a video file")
    model: str = arg(help="a shipped model ('emollama-small') or an emollama model directory (save_pretrained / "
                          "`emollama convert` / `merge-lora` / `emollama export` output)")
    question: str | None = arg(None, help="question about the face (default: what is the facial expression of the "
                                          "person?)")
    faces: str = arg("all", choices=["all", "largest"], help="answer for every face or the largest")
    label_from: str = arg("category", choices=["category", "question"],
                          help="where the label and probabilities are scored: 'category' = after FERID's closed-set "
                               "question (as trained and as `emollama eval` measures; default), 'question' = after "
                               "--question itself")
    max_new_tokens: int = arg(64, help="answer length cap in tokens (default {default})")
    video_sampling: str = arg(DEFAULT_POLICY, metavar="POLICY",
                              help="frames per video: uniform:N | fps:F | peak:N | all (default {default}, the MLLM "
                                   "default)")
    backend: str = arg(AnalyzeOptions().backend, choices=["mediapipe", "synthetic"],
                       help="face analyzer that finds faces and computes the priors (synthetic: tests only)")
    device: str = arg("cpu", help="torch device (default {default})")
    json: bool = arg(False, help="print one JSON object per face instead of text")


def run(opts: Options) -> int:
    """Answer ``opts.question`` for each face in ``opts.media``; prints one block (or JSON line) per face."""
    from emollama.api import Analyzer, EmoLlama
    from emollama.media.decode import media_kind

    if not opts.media.exists():
        raise FileNotFoundError(f"{opts.media}: no such file")
    kind = media_kind(opts.media)
    if kind is None:
        raise ValueError(f"{opts.media}: not an image or video extension; pass a .jpg/.png/... or .mp4/.mov/...")
    analyzer = Analyzer(opts.backend, video_sampling=opts.video_sampling)
    llm = EmoLlama.from_pretrained(opts.model, device=opts.device, analyzer=analyzer,
                                   max_new_tokens=opts.max_new_tokens)
    preds = llm.predict(**{kind: opts.media}, question=opts.question, faces=opts.faces,
                        label_from=opts.label_from)
    if not preds:
        print(f"{opts.media}: no face found")
        return 0
    for pr in preds:
        if opts.json:
            print(json.dumps(pr.to_dict(), ensure_ascii=False))
            continue
        where = f"track {pr.track_id}" if pr.track_id is not None else f"face {pr.face_index}"
        top = ", ".join(f"{k} {v:.2f}" for k, v in sorted(pr.probabilities.items(), key=lambda kv: -kv[1])[:3])
        print(f"{where} at {[round(v) for v in pr.box]}: {pr.label} ({top})")
        print(f"  answer: {pr.text}")
        print(f"  analyzer: {pr.explanation}")
    return 0
