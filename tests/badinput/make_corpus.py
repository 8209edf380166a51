"""The bad-input corpus for `emollama analyze` hardening tests: ONE place that writes every awkward input.

`make_corpus(root)` writes the files under ``root`` and returns a `Corpus` (name -> path). Tests get it from the
``bad_corpus`` fixture (tests/badinput/conftest.py); to reproduce a bug by hand, run
``python tests/badinput/make_corpus.py OUT_DIR`` and point `emollama analyze` at OUT_DIR.

To add a case: write it in `make_corpus` under a new name and assert on it in a test next to this file.
"""

from __future__ import annotations

import io
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

TRUNCATE_AT = (10, 50, 99)  # percent of the file kept
# a non-UTF-8 file name: Latin-1 'x_été.jpg' (what `printf 'x_\xe9t\xe9.jpg'` creates)
NON_UTF8_IMAGE = os.fsdecode(b"x_\xe9t\xe9.jpg")
NON_UTF8_VIDEO = os.fsdecode(b"clip_\xff.mp4")


@dataclass
class Corpus:
    """Paths of the corpus by name. ``paths[name]`` may not exist on purpose (missing, loop, dangling)."""

    root: Path
    paths: dict[str, Path] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Path:
        return self.paths[name]

    def __contains__(self, name: str) -> bool:
        return name in self.paths


def face_png(path: Path, label: str = "happiness", size: int = 64) -> Path:
    """A drawn face (non-uniform: the synthetic backend 'finds' one face in it)."""
    from emollama.data.synthetic import draw_face

    path.parent.mkdir(parents=True, exist_ok=True)
    draw_face(label, size)[0].save(path)
    return path


def synthetic_clip(path: Path, seconds: float = 10.0, fps: int = 10, size: int = 64, faststart: bool = False) -> Path:
    """A small H.264 mp4 of a drawn face; ``faststart`` puts the index (moov) first, so a cut copy still opens."""
    import av

    from emollama.data.synthetic import synthetic_video

    frames = synthetic_video("surprise", 4, size)
    opts = {"movflags": "faststart"} if faststart else {}
    with av.open(os.fspath(path), "w", format="mp4", options=opts) as c:
        s = c.add_stream("libx264", rate=fps)
        s.width = s.height = size
        s.pix_fmt = "yuv420p"
        s.codec_context.options = {"g": str(fps), "keyint_min": str(fps), "sc_threshold": "0"}
        for i in range(int(seconds * fps)):
            for p in s.encode(av.VideoFrame.from_ndarray(frames[i % len(frames)], format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def remux_faststart(src: Path, dst: Path) -> Path:
    """Copy ``src``'s video stream into an mp4 with the index first (no re-encoding)."""
    import av

    with av.open(os.fspath(src)) as i, av.open(os.fspath(dst), "w", format="mp4",
                                               options={"movflags": "faststart"}) as o:
        s_in = i.streams.video[0]
        s_out = o.add_stream_from_template(s_in)
        for p in i.demux(s_in):
            if p.dts is None:  # the demuxer's final flush packet
                continue
            p.stream = s_out
            o.mux(p)
    return dst


def truncate_copies(src: Path, stem: str, out: Path) -> dict[str, Path]:
    """``{stem}_{pct}`` -> a copy of ``src`` cut to pct % of its bytes."""
    data = src.read_bytes()
    made = {}
    for pct in TRUNCATE_AT:
        p = out / f"{stem}_{pct:03d}.mp4"
        p.write_bytes(data[: len(data) * pct // 100])
        made[f"{stem}_{pct}"] = p
    return made


def huge_header_jpeg(path: Path, width: int, height: int) -> Path:
    """A tiny JPEG whose header claims ``width`` x ``height``: the shape of a decompression bomb, a few bytes on disk.

    Only the header is real: the scan names a component the frame lacks, so a decoder that gets past the size check
    fails at once ("truncated or corrupt image") instead of filling 100s of MB with grey."""
    buf = io.BytesIO()
    Image.new("L", (16, 16), 120).save(buf, format="JPEG")
    data = bytearray(buf.getvalue())
    sof = data.find(b"\xff\xc0")  # baseline SOF0: marker, length (2), precision (1), height (2), width (2)
    sos = data.find(b"\xff\xda")  # start of scan: marker, length (2), components (1), component id (1), ...
    assert 0 < sof < sos, "Pillow wrote no baseline JPEG"
    data[sof + 5: sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    data[sos + 5] = 9  # no component 9 in the frame: libjpeg stops with a fatal error
    path.write_bytes(bytes(data))
    return path


def pexels_video() -> Path | None:
    """The Pexels sample clip from the asset cache (640x360, 19.7 s), or None when it is not cached."""
    from emollama import assets

    try:
        return assets.resolve("feat_pexels_video", download=False)
    except assets.AssetError:
        return None


def make_corpus(root: Path, *, real_video: bool = True) -> Corpus:
    """Write the corpus under ``root``; ``real_video`` adds cut copies of the Pexels clip when it is cached."""
    root = Path(root)
    c = Corpus(root)
    add = c.paths.__setitem__

    # --- names: non-UTF-8 bytes in file names (item 1)
    names = root / "names"
    add("non_utf8_image", face_png(names / NON_UTF8_IMAGE))
    add("non_utf8_video", synthetic_clip(names / NON_UTF8_VIDEO, seconds=1.0, fps=4))
    add("utf8_image", face_png(names / "café.png", "sadness"))

    # --- same stem in different folders / extensions (item 6)
    same = root / "same_stem"
    add("same_stem_a", face_png(same / "a" / "face.jpg", "happiness"))
    add("same_stem_b", face_png(same / "b" / "face.jpg", "anger"))
    add("same_stem_c", face_png(same / "face.png", "sadness"))

    # --- paths that do not lead to a file (item 5)
    links = root / "links"
    links.mkdir(parents=True, exist_ok=True)
    add("missing", links / "missing.jpg")
    for a, b in (("loop_a.jpg", "loop_b.jpg"), ("loop_b.jpg", "loop_a.jpg")):
        os.symlink(b, links / a)
    add("symlink_loop", links / "loop_a.jpg")
    os.symlink("self.jpg", links / "self.jpg")
    add("self_loop", links / "self.jpg")
    os.symlink("nowhere.jpg", links / "dangling.jpg")
    add("dangling", links / "dangling.jpg")

    # --- broken files
    broken = root / "broken"
    broken.mkdir(parents=True, exist_ok=True)
    (broken / "empty.jpg").write_bytes(b"")
    add("empty", broken / "empty.jpg")
    (broken / "text.png").write_text("not an image\n")
    add("not_image", broken / "text.png")

    # --- huge dimensions in a small file (item 4)
    big = root / "big"
    big.mkdir(parents=True, exist_ok=True)
    add("huge_100mp", huge_header_jpeg(big / "huge_10000x10000.jpg", 10_000, 10_000))  # = the 100 M default
    add("huge_196mp", huge_header_jpeg(big / "huge_14000x14000.jpg", 14_000, 14_000))  # > 2 x Pillow's default
    arr = (np.random.default_rng(0).random((120, 100, 3)) * 255).astype(np.uint8)
    Image.fromarray(arr).save(big / "small_12000px.png")
    add("small_12k", big / "small_12000px.png")

    # --- videos: complete, and faststart copies cut at 10 / 50 / 99 % (item 2)
    vids = root / "videos"
    vids.mkdir(parents=True, exist_ok=True)
    add("clip_ok", synthetic_clip(vids / "clip_ok.mp4", seconds=3.0, faststart=True))
    fs = synthetic_clip(root / "synthetic_faststart.mp4", seconds=10.0, faststart=True)
    c.paths.update(truncate_copies(fs, "cut_synthetic", vids))
    src = pexels_video() if real_video else None
    if src is not None:
        fs = remux_faststart(src, root / "pexels_faststart.mp4")
        add("pexels_faststart", fs)
        c.paths.update(truncate_copies(fs, "cut_pexels", vids))
    return c


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/badinput/make_corpus.py OUT_DIR")
    corpus = make_corpus(Path(sys.argv[1]))
    for name, path in sorted(corpus.paths.items()):
        print(f"{name:20s} {os.fsencode(path)!r}")
