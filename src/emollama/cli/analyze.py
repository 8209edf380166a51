"""`emollama analyze PATH...`: per-face expression analysis of photos, folders, globs and videos."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emollama.analyze.runner import AnalyzeOptions, build_face_analyzer
from emollama.cli.options import arg, pixel_count, show_pixels
from emollama.faces.expression import EXPRESSION_MODELS
from emollama.faces.find import FACE_MODES

HELP = "analyze faces in images/videos/folders: box, AU cues, age/gender, expression and an explanation per face"
_LIB = AnalyzeOptions()  # the analyzer's options: the one statement of their defaults


def _positive(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def verbose_field() -> Any:
    """``--verbose``, shared with `emollama demo` (dest ``native_logs``: the top-level ``-v`` owns ``verbose``)."""
    return arg(False, flag="--verbose",
               help="also show the face libraries' native log lines (MediaPipe, TFLite, XNNPACK start-up "
                    "messages) on stderr; hidden by default")


@dataclass(kw_only=True)
class Options:
    """`emollama analyze` options; the analyzer's own ones default to `AnalyzeOptions`."""

    paths: list[str] = arg(positional=True, nargs="+",
                           help="image or video files, folders (searched recursively) or glob patterns")
    out: Path = arg(Path("emollama_results.jsonl"),
                    help="results file, .jsonl or .csv (default {default}); rerunning with the same "
                         "file resumes: items already in it are skipped")
    overwrite: bool = arg(False, help="start the results file again instead of resuming")
    video_sampling: str = arg(_LIB.video_sampling, metavar="POLICY",
                              help="frames analysed per video: 'fps:F' (F frames per second of video), 'uniform:N' "
                                   "(N frames spread over the clip), 'peak:N' (N frames of strongest expression) or "
                                   "'all'. Default {default}: enough to follow expression changes and track faces "
                                   "at bounded cost")
    backend: str = arg(_LIB.backend, choices=["mediapipe", "synthetic"],
                       help="face analysis backend (default {default}; 'synthetic' is a dependency-free stand-in "
                            "for tests that does NOT detect faces)")
    annotate: Path | None = arg(None, metavar="DIR",
                                help="write copies of images (and an mp4 of sampled video frames) with boxes and "
                                     "labels, named <stem>_annotated-<tag>: the tag (a hash of the input's path) "
                                     "keeps same-named inputs apart")
    save_crops: Path | None = arg(None, metavar="DIR",
                                  help="save each face crop as a PNG, <stem>_face<i>-<tag>.png (videos: "
                                       "<stem>_f<frame>_face<i>-...)")
    landmarks: bool = arg(_LIB.landmarks, help="include the 478 landmarks (pixels) in each record")
    blendshapes: bool = arg(_LIB.blendshapes, help="include the 52 blendshape scores in each record")
    au_series: bool = arg(_LIB.au_series, help="videos: include per-frame AU values of each track")
    max_faces: int = arg(_LIB.max_faces, type=_positive, metavar="N",
                         help="analyse at most N faces per photo / video frame, the largest (default {default}); "
                              "a record whose photo had more says so (faces_truncated, warnings)")
    faces: str = arg(_LIB.faces, choices=FACE_MODES,
                     help="which faces: 'auto' (default) detects, and treats a small photo or video frame (longer "
                          "side <= 160 px, e.g. a 48x48 dataset crop) in which nothing is found as one face; "
                          "'detect' never does; 'whole-image' treats every photo or frame as one already-cropped "
                          "face. Such faces have detector 'whole-image' in the records")
    expression: str = arg(_LIB.expression, choices=EXPRESSION_MODELS,
                          help="expression model: 'emonet' (default; learned on FER2013, calibrated, see "
                               "docs/expression_model.md) or 'mini-xception' (the 2017 model with hand-written AU "
                               "fusion rules, kept as a baseline for comparison)")
    max_pixels: int = arg(_LIB.max_pixels, type=pixel_count, metavar="N", show=show_pixels,
                          help="refuse images larger than this many pixels (e.g. 40000000, 40M or 500k), checked on "
                               "the header before decoding (decompression-bomb guard; also Pillow's limit; default "
                               "{default})")
    json: bool = arg(False, help="print this run's records as JSON lines instead of a table (not with a .csv --out)")
    no_progress: bool = arg(False, help="hide the progress bar")
    native_logs: bool = verbose_field()

    def analyzer_options(self) -> AnalyzeOptions:
        """The options that change the records (their hash guards a resumed results file)."""
        return AnalyzeOptions(**{f.name: getattr(self, f.name) for f in dataclasses.fields(AnalyzeOptions)})


def run(opts: Options) -> int:
    """Analyze ``opts.paths`` into ``opts.out``; 0, 1 (nothing to analyze) or 3 (some items failed)."""
    if not opts.native_logs:
        return _run(opts)
    from emollama.faces._quiet import show_native_logs

    previous = show_native_logs(True)
    try:
        return _run(opts)
    finally:
        show_native_logs(previous)  # in-process callers (tests, demo) get the default back


def _run(opts: Options) -> int:
    from emollama.analyze.inputs import Item, expand_inputs
    from emollama.analyze.runner import Runner
    from emollama.analyze.store import ResultStore
    from emollama.media.decode import media_kind
    from emollama.media.sampling import parse_policy

    parse_policy(opts.video_sampling)  # fail before any work on a typo
    if opts.json and opts.out.suffix.lower() == ".csv":  # as ResultStore decides: no records to print as JSON
        raise ValueError(f"--json prints the JSON lines written to --out, but --out is a CSV file ({opts.out}): "
                         f"drop --json (a summary table is printed) or write to {opts.out.with_suffix('.jsonl')}")
    exp = expand_inputs(opts.paths)
    # a path or pattern that leads to no file still gets its (error) record: every input named is accounted for
    items = exp.items + [Item(Path(m), media_kind(Path(m))) for m in exp.missing]
    if not items:
        print("emollama analyze: nothing to analyze", file=sys.stderr)
        return 1
    lib = opts.analyzer_options()
    if opts.overwrite and opts.out.exists():
        opts.out.unlink()
    analyzer = build_face_analyzer(lib)
    runner = Runner(analyzer, lib, annotate_dir=opts.annotate, crops_dir=opts.save_crops)
    progress = not opts.no_progress and sys.stderr.isatty()
    with ResultStore(opts.out, lib.digest(), runner.expression_model) as store:
        before = opts.out.stat().st_size  # measured after a torn tail was dropped: --json prints from here
        summary = runner.run(items, store, progress=progress)
    if hasattr(analyzer, "close"):
        analyzer.close()
    if opts.json:
        with open(opts.out, encoding="utf-8") as fh:
            fh.seek(before)
            sys.stdout.write(fh.read())
        return 0 if not summary.errors else 3
    _print_table(summary, opts.out)
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
