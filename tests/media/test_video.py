"""VideoReader on small generated videos whose frame index is written into the pixels."""

from __future__ import annotations

import logging
import tracemalloc

import numpy as np
import pytest

av = pytest.importorskip("av")

from emollama.media import video as video_mod  # noqa: E402
from emollama.media.sampling import sample_indices  # noqa: E402
from emollama.media.video import VideoError, VideoReader, read_frames  # noqa: E402


def make_video(path, n=48, fps=24, w=64, h=48, gop=12, fmt=None, rotation=None):
    """Frame i: left half grey (i // 16) * 16, right half (i % 16) * 16 (robust to lossy coding, up to 256 frames)."""
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.codec_context.options = {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0"}
        if rotation is not None:
            s.set_display_rotation(rotation)
        for i in range(n):
            a = np.zeros((h, w, 3), np.uint8)
            a[:, : w // 2] = (i // 16 % 16) * 16  # wraps after 256 frames (only the long video)
            a[:, w // 2 :] = (i % 16) * 16
            for p in s.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def pixel_index(rgb: np.ndarray) -> int:
    w = rgb.shape[1]
    return int(round(rgb[:, : w // 2].mean() / 16)) * 16 + int(round(rgb[:, w // 2 :].mean() / 16))


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    d = tmp_path_factory.mktemp("videos")
    return {
        "gop12": make_video(d / "gop12.mp4"),
        "gop48": make_video(d / "gop48.mp4", gop=48),
        "mkv": make_video(d / "v.mkv", n=50, fps=25, fmt="matroska"),
        "long": make_video(d / "long.mp4", n=480, gop=48),
    }


def _count_seeks(monkeypatch):
    calls = []
    orig = VideoReader._seek

    def spy(self, container, stream, target, *args):
        calls.append(target)
        return orig(self, container, stream, target, *args)

    monkeypatch.setattr(VideoReader, "_seek", spy)
    return calls


def test_metadata(videos):
    info = VideoReader(videos["gop12"]).info
    assert (info.fps, info.num_frames, info.frames_estimated) == (24.0, 48, False)
    assert info.duration_s == pytest.approx(2.0)
    assert (info.width, info.height, info.rotation, info.codec) == (64, 48, 0, "h264")


def test_frame_count_estimated_from_duration_when_container_lacks_it(videos):
    info = VideoReader(videos["mkv"]).info
    assert info.frames_estimated and info.num_frames == 50 and info.fps == 25.0


@pytest.mark.parametrize("policy", ["uniform:4", "uniform:8", "fps:1", "fps:6", "uniform:20"])
def test_seek_path_returns_exact_frames(videos, policy, monkeypatch):
    seeks = _count_seeks(monkeypatch)
    reader = VideoReader(videos["gop12"])
    frames = reader.read_frames(policy)
    expected = sample_indices(48, 24.0, policy)
    assert [f.index for f in frames] == expected
    assert [pixel_index(f.rgb) for f in frames] == expected
    assert [f.time_s for f in frames] == pytest.approx([i / 24 for i in expected])
    assert all(f.rgb.shape == (48, 64, 3) and f.rgb.dtype == np.uint8 for f in frames)
    if policy == "uniform:4":  # frames 6, 18, 30, 42 with keyframes every 12: each later one is a seek
        assert seeks == [18, 30, 42]


def test_sequential_path_when_there_is_one_keyframe(videos, monkeypatch):
    seeks = _count_seeks(monkeypatch)
    reader = VideoReader(videos["gop48"])
    assert reader.keyframes() == [0]
    frames = reader.read_frames("uniform:4")
    assert seeks == []
    assert [pixel_index(f.rgb) for f in frames] == [6, 18, 30, 42]


def test_wrong_keyframe_index_still_terminates_with_exact_frames(videos, monkeypatch):
    # the index claims every frame is a keyframe, so every seek lands earlier than promised (as a rounding slip in a
    # real mp4 did): at most one seek per target, then decode forward
    seeks = _count_seeks(monkeypatch)
    reader = VideoReader(videos["gop12"])
    monkeypatch.setattr(reader, "keyframes", lambda: list(range(48)))
    frames = reader.read_frames("uniform:8")
    assert [pixel_index(f.rgb) for f in frames] == sample_indices(48, 24.0, "uniform:8")
    assert len(seeks) <= 8


def test_all_frames_and_other_container(videos):
    assert [pixel_index(f.rgb) for f in read_frames(videos["gop12"], "all")] == list(range(48))
    frames = read_frames(videos["mkv"], "fps:1")
    assert [f.index for f in frames] == [0, 25] and [pixel_index(f.rgb) for f in frames] == [0, 25]


@pytest.mark.parametrize(
    "fmt, ext, seeks",
    [
        ("mov", "mov", True),  # full sample index
        ("mpegts", "ts", True),  # no index: keyframes from a demux pass; no frame count: estimated from duration
        ("avi", "avi", False),  # pts out of display order with B-frames: counted, never seeks
        ("h264", "h264", False),  # raw stream: no timestamps, no duration: frames counted by demuxing
    ],
)
def test_other_containers_give_exact_frames(tmp_path, monkeypatch, fmt, ext, seeks):
    path = make_video(tmp_path / f"v.{ext}", n=96, fmt=fmt)
    calls = _count_seeks(monkeypatch)
    reader = VideoReader(path)
    assert reader.info.num_frames == 96
    for policy in ("uniform:8", "fps:1", "all"):
        expected = sample_indices(96, reader.info.fps, policy)
        assert [pixel_index(f.rgb) for f in reader.read_frames(policy)] == expected, policy
    assert bool(calls) == seeks


@pytest.mark.parametrize("fps", [10, 25, 30])
def test_several_frame_rates(tmp_path, fps):
    path = make_video(tmp_path / f"f{fps}.mp4", n=2 * fps, fps=fps, gop=fps // 2)
    reader = VideoReader(path)
    assert reader.info.fps == fps and reader.info.num_frames == 2 * fps
    frames = reader.read_frames("fps:1")
    assert [pixel_index(f.rgb) for f in frames] == [0, fps]
    assert [f.time_s for f in frames] == pytest.approx([0.0, 1.0])


def test_peak_policy_scores_pixels(videos):
    # energy = closeness of the pixel-encoded index to 20; candidates are uniform:12 -> 2, 6, 10, 14, 18, 22, ...
    frames = VideoReader(videos["gop12"]).read_frames("peak:3", score=lambda f: -abs(pixel_index(f.rgb) - 20))
    assert [f.index for f in frames] == [14, 18, 22]
    assert [pixel_index(f.rgb) for f in frames] == [14, 18, 22]
    with pytest.raises(ValueError, match="score callback"):
        VideoReader(videos["gop12"]).read_frames("peak:3")


def test_rotation_is_applied(tmp_path):
    path = make_video(tmp_path / "rot.mp4", n=4, rotation=90)
    reader = VideoReader(path)
    assert reader.info.rotation == 90
    assert reader.read_frames("all")[0].rgb.shape == (64, 48, 3)  # displayed upright: width and height swap
    assert VideoReader(path, apply_rotation=False).read_frames("all")[0].rgb.shape == (48, 64, 3)


def test_missing_empty_corrupt_truncated_unsupported(tmp_path, videos):
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        VideoReader(tmp_path / "nope.mp4")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoError, match=r"empty\.mp4.*0 bytes"):
        VideoReader(empty)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(VideoError, match=r"junk\.mp4"):
        VideoReader(junk)
    data = videos["gop12"].read_bytes()
    trunc = tmp_path / "trunc.mp4"
    trunc.write_bytes(data[: len(data) // 2])  # PyAV writes the index (moov) last: half a file has none
    with pytest.raises(VideoError, match=r"trunc\.mp4.*(corrupt|truncated)"):
        VideoReader(trunc)
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 50)
    with pytest.raises(VideoError, match=r"notes\.mp4"):
        VideoReader(text)


def test_audio_only_file_has_no_video_stream(tmp_path):
    path = tmp_path / "tone.wav"
    with av.open(str(path), "w") as c:
        s = c.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        for p in s.encode(frame):
            c.mux(p)
        for p in s.encode():
            c.mux(p)
    with pytest.raises(VideoError, match=r"tone\.wav.*no video stream"):
        VideoReader(path)


def test_truncated_stream_yields_what_exists_and_warns(tmp_path, videos, caplog):
    data = videos["mkv"].read_bytes()  # matroska is readable from the start: cut off the second half
    path = tmp_path / "cut.mkv"
    path.write_bytes(data[: len(data) // 2])
    reader = VideoReader(path)
    with caplog.at_level(logging.WARNING, logger=video_mod.__name__):
        frames = reader.read_frames("all")
    assert 0 < len(frames) < 50
    assert [pixel_index(f.rgb) for f in frames] == list(range(len(frames)))
    assert "missing" in caplog.text


def _peak_numpy_bytes(path, policy: str) -> int:
    for _ in VideoReader(path).iter_frames(policy):  # warm-up: one-time allocations (lazy imports, codec tables)
        pass
    tracemalloc.start()
    try:
        for f in VideoReader(path).iter_frames(policy):
            assert f.rgb.shape == (48, 64, 3)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("policy", ["all", "uniform:8"])
def test_memory_is_flat_in_video_length(videos, policy):
    short = _peak_numpy_bytes(videos["gop48"], policy)  # 48 frames
    long = _peak_numpy_bytes(videos["long"], policy)  # 480 frames; holding them all would be 480 * 9 KB = 4.4 MB
    assert long < 2 * short + 64 * 1024, (short, long)
    assert long < 400 * 1024, long  # decoded RGB frames are numpy-owned copies, so tracemalloc does see them


def _real_video():
    try:
        from emollama.assets import resolve

        return resolve("feat_pexels_video", download=False)  # the WolfgangLanger_Pexels.mp4 entry (ASSETS.md §5)
    except (ImportError, FileNotFoundError, KeyError) as e:
        pytest.skip(f"real video WolfgangLanger_Pexels.mp4 not in the asset cache: {e}")


@pytest.mark.media
def test_real_pexels_video(monkeypatch):
    reader = VideoReader(_real_video())
    info = reader.info
    assert (info.width, info.height, info.rotation, info.frames_estimated) == (640, 360, 0, False)
    assert info.fps == pytest.approx(23.976, abs=1e-3) and info.duration_s == pytest.approx(19.7, abs=0.1)
    frames = reader.read_frames("uniform:16")
    assert [f.index for f in frames] == sample_indices(info.num_frames, info.fps, "uniform:16")
    assert all(f.rgb.shape == (360, 640, 3) for f in frames)
    assert [f.time_s for f in frames] == pytest.approx([f.index / info.fps for f in frames], abs=1e-3)
    # seeking + non-reference skipping must give exactly the frames of plain sequential decoding
    monkeypatch.setattr(video_mod, "SEEK_OVERHEAD_FRAMES", 10**9)
    plain = reader.read_frames("uniform:16")
    assert all(np.array_equal(a.rgb, b.rgb) for a, b in zip(frames, plain, strict=True))
