#!/usr/bin/env python
"""P4: memory stays flat in video length, and sampled decoding is cheaper than decoding everything.

(a) peak RSS and wall time of the analyzer runner on the real face video looped 30x (a 10-minute clip, generated
    once) vs the original 20 s, each in its own process, same sampling policy (fps:2, so 30x more frames are
    analysed). Target: RSS(30x) <= 1.2 x RSS(1x). Before per-frame summaries (issue #10), every sampled frame's
    full result stayed in memory until the end (+0.17 MB a frame).
(b) decoding time of 'uniform:16' vs 'all' on the 30x video. Target <= 0.3x.

    python bench/p4_memory.py [--times 30]   -> bench/results/p4_memory.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, machine_info, peak_rss_mb, run_child, write_json  # noqa: E402

POLICY = "fps:2"


def looped_video(src: Path, times: int, dest: Path) -> Path:
    """Re-encode ``src`` ``times`` times back to back (H.264, same size and rate); cached by name."""
    import av

    if dest.exists():
        return dest
    tmp = dest.with_suffix(".tmp.mp4")
    with av.open(str(src)) as inp:
        st = inp.streams.video[0]
        rate = st.average_rate
        frames = [f.to_ndarray(format="rgb24") for f in inp.decode(st)]
    with av.open(str(tmp), "w") as out:
        s = out.add_stream("libx264", rate=rate)
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        s.options = {"preset": "ultrafast"}
        for _ in range(times):
            for fr in frames:
                for p in s.encode(av.VideoFrame.from_ndarray(fr, format="rgb24")):
                    out.mux(p)
        for p in s.encode():
            out.mux(p)
    tmp.rename(dest)
    return dest


def child(video: str, out: str) -> None:
    from emollama.analyze.inputs import Item
    from emollama.analyze.runner import AnalyzeOptions, Runner
    from emollama.analyze.store import ResultStore
    from emollama.faces.analyzer import Analyzer

    analyzer = Analyzer()
    analyzer.load()
    with tempfile.TemporaryDirectory() as tmp, ResultStore(Path(tmp) / "o.jsonl", "bench") as store:
        t0 = time.perf_counter()
        s = Runner(analyzer, AnalyzeOptions(video_sampling=POLICY)).run([Item(Path(video), "video")], store)
        wall = time.perf_counter() - t0
        recs = [json.loads(x) for x in (Path(tmp) / "o.jsonl").read_text().splitlines()]
    Path(out).write_text(json.dumps({"wall_s": wall, "peak_rss_mb": peak_rss_mb(), "tracks": s.tracks,
                                     "frames_sampled": max((r.get("frames_sampled") or 0 for r in recs), default=0),
                                     "errors": s.errors}))


def decode_time(video: Path, policy: str) -> tuple[float, int]:
    from emollama.media.video import VideoReader

    t0 = time.perf_counter()
    n = sum(1 for _ in VideoReader(video).iter_frames(policy))
    return time.perf_counter() - t0, n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--child", nargs=1)
    ap.add_argument("--child-out")
    ap.add_argument("--times", type=int, default=30, help="loops of the original in the long video (default 30)")
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.child_out)
        return 0
    from emollama.assets import resolve

    src = Path(resolve("feat_pexels_video"))
    big = looped_video(src, args.times, Path(tempfile.gettempdir()) / f"emollama_p4_{args.times}x.mp4")
    script = Path(__file__).resolve()
    one = run_child(script, ["--child", str(src)])
    long = run_child(script, ["--child", str(big)])
    d_uni, n_uni = decode_time(big, "uniform:16")
    d_all, n_all = decode_time(big, "all")
    result = {
        "benchmark": "P4 memory vs video length; sampled vs full decoding",
        "command": f"python bench/p4_memory.py --times {args.times}",
        "policy": POLICY,
        "original": {"video": src.name, **one},
        f"looped_{args.times}x": {"video": big.name, **long},
        "rss_ratio": round(long["peak_rss_mb"] / one["peak_rss_mb"], 3),
        "rss_target": "<= 1.2",
        "wall_ratio": round(long["wall_s"] / one["wall_s"], 2),
        "decode_uniform16_s": round(d_uni, 3),
        "decode_all_s": round(d_all, 3),
        "decode_frames": {"uniform:16": n_uni, "all": n_all},
        "decode_ratio": round(d_uni / d_all, 3),
        "decode_target": "<= 0.3",
        "machine": machine_info(),
    }
    print(f"P4: RSS {one['peak_rss_mb']:.0f} -> {long['peak_rss_mb']:.0f} MB (x{result['rss_ratio']}), "
          f"decode uniform:16 {d_uni:.2f} s vs all {d_all:.2f} s (x{result['decode_ratio']})")
    write_json(RESULTS / "p4_memory.json", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
