"""Tower-ready frames in the prior cache: bit-identical to the cold path, stale keys miss, crash leaves all or none."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from emollama.data.benchmarks import get_benchmark
from emollama.evaluation.inputs import DecodedMedia
from emollama.media.sampling import sample_indices
from emollama.model.towers import Preprocess
from emollama.model.transforms import normalise, preprocess_frames
from emollama.priors import cache as pc
from emollama.priors.cache import PriorCache
from emollama.priors.frames import frames_key_for, get_frames, prepare_frames, tower_frames

PP = Preprocess(24)


def noise(path: Path, w: int, h: int, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


def mp4(path: Path, n: int = 12, w: int = 48, h: int = 32) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=12)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for _ in range(n):
            frame = av.VideoFrame.from_ndarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), format="rgb24")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def dataset(root: Path) -> list:
    """Two non-square noise photos (PNG, JPEG), a 6-frame folder clip and a 12-frame H.264 clip."""
    noise(root / "train" / "happy" / "a.png", 45, 37, 0)
    noise(root / "train" / "sad" / "b.jpg", 30, 52, 1)
    for i in range(6):
        noise(root / "train" / "sad" / "clip" / f"{i:03d}.png", 40, 30, 10 + i)
    mp4(root / "train" / "happy" / "v.mp4")
    return get_benchmark("folder").load(root, "train").samples


def cold_pixels(sample, policy: str, pp: Preprocess = PP) -> torch.Tensor:
    """What the processor computes from freshly decoded media (the pre-cache eval path)."""
    media = DecodedMedia().load(sample, policy)
    return preprocess_frames(media if sample.is_video else [media], pp)


def test_cached_frames_equal_cold_frames(tmp_path):
    from emollama.model.build import build_tiny

    s = dataset(tmp_path / "ds")
    assert sorted(x.is_video for x in s) == [False, False, True, True]
    with PriorCache(tmp_path / "c", writable=True) as c:
        rep = prepare_frames(s, c, PP, "uniform:4")
        assert (rep["computed"], rep["cached"], rep["failed"]) == (4, 0, 0)
        assert prepare_frames(s, c, PP, "uniform:4")["cached"] == 4 and len(c) == 0  # frames are not priors
    c = PriorCache(tmp_path / "c")  # read-only, as eval opens it
    for x in s:
        pixels, idx = get_frames(c, frames_key_for(c, x, "uniform:4", PP))
        assert pixels.dtype == np.uint8 and pixels.shape == (4 if x.is_video else 1, 24, 24, 3)
        assert list(idx) == (sample_indices(6 if x.media.is_dir() else 12, 12.0, "uniform:4") if x.is_video else [0])
        cached = torch.stack([normalise(p, PP) for p in pixels])
        assert torch.equal(cached, cold_pixels(x, "uniform:4"))  # bit-identical, not merely close
        assert torch.equal(preprocess_frames(list(pixels), PP), cached)  # processor path on cached frames
    # and through the real processor (tiny model: 32 px), image + clip in one batch
    _, proc = build_tiny()
    img, clip = s[0], next(x for x in s if x.is_video)
    conv = [[{"role": "user", "content": "<image>\nhi"}], [{"role": "user", "content": "<video>\nhi"}]]
    cached = [tower_frames(x.media, x.is_video, "uniform:4", proc.preprocess)[0] for x in (img, clip)]
    a = proc(conv, media=[[cached[0][0]], [cached[1]]])["pixel_values"]
    b = proc(conv, media=[[DecodedMedia().load(x, "uniform:4")] for x in (img, clip)])["pixel_values"]
    assert torch.equal(a, b)


def test_stale_frames_keys_miss(tmp_path):
    s = dataset(tmp_path / "ds")
    img, clip = s[0], next(x for x in s if x.is_video and x.media.is_dir())
    with PriorCache(tmp_path / "c", writable=True) as c:
        prepare_frames([img, clip], c, PP, "uniform:4")
        k_img, k_clip = frames_key_for(c, img, "uniform:4", PP), frames_key_for(c, clip, "uniform:4", PP)
        assert c.has(k_img) and c.has(k_clip) and k_img.startswith("frames-")
        assert frames_key_for(c, img, "uniform:2", PP) == k_img  # a video policy never touches images
        assert not c.has(frames_key_for(c, clip, "uniform:2", PP))
        for pp in (Preprocess(28), dataclasses.replace(PP, resample="bilinear"),
                   dataclasses.replace(PP, pad_to_square=True)):
            assert not c.has(frames_key_for(c, img, "uniform:4", pp))
        noise(img.media, 45, 37, 99)  # new bytes at the same path
        noise(clip.media / "002.png", 40, 30, 99)  # one frame of a folder
        assert not c.has(frames_key_for(c, img, "uniform:4", PP))
        assert not c.has(frames_key_for(c, clip, "uniform:4", PP))
        assert prepare_frames([img, clip], c, PP, "uniform:4")["computed"] == 2  # recomputed under new keys
        pixels, _ = get_frames(c, frames_key_for(c, img, "uniform:4", PP))
        assert torch.equal(torch.stack([normalise(p, PP) for p in pixels]), cold_pixels(img, "uniform:4"))


class Killed(BaseException):
    """Stands in for kill -9 between the shard rename and the index commit."""


def test_frames_entry_written_before_a_crash_is_complete_or_absent(tmp_path, monkeypatch):
    s = dataset(tmp_path / "ds")
    clip = next(x for x in s if x.is_video and x.media.is_dir())
    real_replace = pc.os.replace

    def replace_then_die(src, dst):
        real_replace(src, dst)
        raise Killed

    c = PriorCache(tmp_path / "c", writable=True)
    monkeypatch.setattr(pc.os, "replace", replace_then_die)
    with pytest.raises(Killed):
        prepare_frames([clip], c, PP, "uniform:4")
    monkeypatch.setattr(pc.os, "replace", real_replace)
    assert len(list((tmp_path / "c" / "shards").glob("*.safetensors"))) == 1  # renamed, never indexed
    c._conn.close()  # the "dead" writer's open transaction and lock go with its process
    pc._LOCKED.discard(c._lock_path)
    c._lock.close()
    with PriorCache(tmp_path / "c", writable=True) as c2:  # next writer: debris removed, entry absent
        key = frames_key_for(c2, clip, "uniform:4", PP)
        assert not c2.has(key) and not list((tmp_path / "c" / "shards").glob("*.safetensors"))
        assert prepare_frames([clip], c2, PP, "uniform:4")["computed"] == 1
    c3 = PriorCache(tmp_path / "c")
    pixels, idx = get_frames(c3, key)  # complete: every frame and index
    assert pixels.shape == (4, 24, 24, 3) and list(idx) == sample_indices(6, 0.0, "uniform:4")
    assert torch.equal(torch.stack([normalise(p, PP) for p in pixels]), cold_pixels(clip, "uniform:4"))
