"""`emollama analyze PATH...`: per-face expression analysis of photos, folders, globs and videos."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from emollama.faces.expression import EXPRESSION_MODELS
from emollama.faces.find import DEFAULT_MAX_FACES, FACE_MODES

HELP = "analyze faces in images/videos/folders: box, AU cues, age/gender, expression and an explanation per face"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", help="image or video files, folders (searched recursively) or glob patterns")
    p.add_argument("--out", type=Path, default=Path("emollama_results.jsonl"),
                   help="results file, .jsonl or .csv (default emollama_results.jsonl); rerunning with the same "
                        "file resumes: items already in it are skipped")
    p.add_argument("--overwrite", action="store_true", help="start the results file again instead of resuming")
    p.add_argument("--video-sampling", default="fps:2", metavar="POLICY",
                   help="frames analysed per video: 'fps:F' (F frames per second of video), 'uniform:N' (N frames "
                        "spread over the clip), 'peak:N' (N frames of strongest expression) or 'all'. "
                        "Default fps:2: enough to follow expression changes and track faces at bounded cost")
    p.add_argument("--backend", default="mediapipe", choices=["mediapipe", "synthetic"],
                   help="face analysis backend (default mediapipe; 'synthetic' is a dependency-free stand-in for "
                        "tests that does NOT detect faces)")
    p.add_argument("--annotate", type=Path, metavar="DIR",
                   help="write copies of images (and an mp4 of sampled video frames) with boxes and labels, named "
                        "<stem>_annotated-<tag>: the tag (a hash of the input's path) keeps same-named inputs apart")
    p.add_argument("--save-crops", type=Path, metavar="DIR",
                   help="save each face crop as a PNG, <stem>_face<i>-<tag>.png (videos: <stem>_f<frame>_face<i>-...)")
    p.add_argument("--landmarks", action="store_true", help="include the 478 landmarks (pixels) in each record")
    p.add_argument("--blendshapes", action="store_true", help="include the 52 blendshape scores in each record")
    p.add_argument("--au-series", action="store_true", help="videos: include per-frame AU values of each track")
    p.add_argument("--max-faces", type=_positive, default=DEFAULT_MAX_FACES, metavar="N",
                   help=f"analyse at most N faces per photo / video frame, the largest (default {DEFAULT_MAX_FACES}); "
                        "a record whose photo had more says so (faces_truncated, warnings)")
    p.add_argument("--faces", default="auto", choices=FACE_MODES,
                   help="which faces: 'auto' (default) detects, and treats a small image (longer side <= 160 px, "
                        "e.g. a 48x48 dataset crop) in which nothing is found as one face; 'detect' never does; "
                        "'whole-image' treats every image as one already-cropped face. Such faces have "
                        "detector 'whole-image' in the records")
    p.add_argument("--expression", default="emonet", choices=EXPRESSION_MODELS,
                   help="expression model: 'emonet' (default; learned on FER2013, calibrated, see "
                        "docs/expression_model.md) or 'mini-xception' (the 2017 model with hand-written AU fusion "
                        "rules, kept as a baseline for comparison)")
    p.add_argument("--max-pixels", type=int, default=100_000_000,
                   help="refuse images larger than this many pixels, checked on the header before decoding "
                        "(decompression-bomb guard; also Pillow's limit; default 100M)")
    p.add_argument("--json", action="store_true", help="print the records as JSON lines instead of a table")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_verbose_argument(p)


def add_verbose_argument(p: argparse.ArgumentParser) -> None:
    """``--verbose``, shared with `emollama demo` (dest ``native_logs``: the top-level ``-v`` owns ``verbose``)."""
    p.add_argument("--verbose", dest="native_logs", action="store_true",
                   help="also show the face libraries' native log lines (MediaPipe, TFLite, XNNPACK start-up "
                        "messages) on stderr; hidden by default")


def _positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def _analyzer(backend: str, max_faces: int = DEFAULT_MAX_FACES, faces: str = "auto", expression: str = "emonet"):
    if backend == "synthetic":
        from emollama.analyze.synthetic import SyntheticAnalyzer

        return SyntheticAnalyzer()
    from emollama.faces.analyzer import Analyzer, AnalyzerConfig
    from emollama.faces.detect import DetectorConfig

    return Analyzer(AnalyzerConfig(detector=DetectorConfig(max_faces=max_faces), faces=faces,
                                   expression_model=expression))


def run(args: argparse.Namespace) -> int:
    if not getattr(args, "native_logs", False):
        return _run(args)
    from emollama.faces._quiet import show_native_logs

    previous = show_native_logs(True)
    try:
        return _run(args)
    finally:
        show_native_logs(previous)  # in-process callers (tests, demo) get the default back


def _run(args: argparse.Namespace) -> int:
    from emollama.analyze.inputs import Item, expand_inputs
    from emollama.analyze.media import media_kind
    from emollama.analyze.runner import AnalyzeOptions, Runner
    from emollama.analyze.store import ResultStore
    from emollama.vision.sampling import parse_policy

    parse_policy(args.video_sampling)  # fail before any work on a typo
    exp = expand_inputs(args.paths)
    # a path or pattern that leads to no file still gets its (error) record: every input named is accounted for
    items = exp.items + [Item(Path(m), media_kind(Path(m))) for m in exp.missing]
    if not items:
        print("emollama analyze: nothing to analyze", file=sys.stderr)
        return 1
    opts = AnalyzeOptions(backend=args.backend, video_sampling=args.video_sampling, max_pixels=args.max_pixels,
                          landmarks=args.landmarks, blendshapes=args.blendshapes, au_series=args.au_series,
                          max_faces=args.max_faces, faces=args.faces, expression=args.expression)
    if args.overwrite and args.out.exists():
        args.out.unlink()
    analyzer = _analyzer(args.backend, args.max_faces, args.faces, args.expression)
    runner = Runner(analyzer, opts, annotate_dir=args.annotate, crops_dir=args.save_crops)
    progress = not args.no_progress and sys.stderr.isatty()
    with ResultStore(args.out, opts.digest()) as store:
        before = args.out.stat().st_size  # measured after a torn tail was dropped: --json prints from here
        summary = runner.run(items, store, progress=progress)
    if hasattr(analyzer, "close"):
        analyzer.close()
    if args.json:
        with open(args.out, encoding="utf-8") as fh:
            fh.seek(before if args.out.suffix != ".csv" else 0)
            sys.stdout.write(fh.read() if args.out.suffix != ".csv" else "")
        return 0 if not summary.errors else 3
    _print_table(summary, args.out)
    return 0 if not summary.errors else 3


def _print_table(summary, out: Path) -> None:
    rows = [("source", "face", "who", "label", "why")] + [(Path(r[0]).name, *r[1:]) for r in summary.rows]
    caps = (32, 9, 13, 16, 80)
    widths = [min(caps[i], max(len(r[i]) for r in rows)) for i in range(5)]
    for i, r in enumerate(rows):
        cells = [c if len(c) <= widths[j] else c[: widths[j] - 1] + "…" for j, c in enumerate(r)]
        print("  ".join(c.ljust(widths[j]) for j, c in enumerate(cells)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    rate = summary.items / summary.seconds if summary.seconds else 0.0
    print(f"\n{summary.items} analysed ({rate:.1f}/s), {summary.skipped} already done, {summary.faces} face(s), "
          f"{summary.tracks} track(s), {summary.no_face} without a face, {len(summary.errors)} error(s) -> {out}")
    if summary.labels:
        print("labels: " + ", ".join(f"{k} {v}" for k, v in summary.labels.most_common()))
    for e in summary.errors:
        print(f"error: {e['source']}: {e['reason']}" + (f" ({e['detail']})" if e.get("detail") else "")
              + (f"; {e['fix']}" if e.get("fix") else ""), file=sys.stderr)
