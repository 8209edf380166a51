"""The bad-input corpus: each case loads correctly or fails with a MediaError naming the file and a fix."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from emollama.analyze.inputs import expand_inputs
from emollama.media.decode import MediaError, load_image


def _face_like(w=40, h=30):
    arr = np.zeros((h, w, 3), np.uint8)
    arr[:, : w // 2] = (200, 10, 10)  # left half red: lets us check orientation
    return arr


def test_plain_jpeg_and_png(tmp_path):
    Image.fromarray(_face_like()).save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    assert out.shape == (30, 40, 3) and out.dtype == np.uint8


@pytest.mark.parametrize("mode", ["L", "CMYK", "RGBA", "LA", "P", "I;16", "1"])
def test_modes_become_rgb(tmp_path, mode):
    img = Image.fromarray(_face_like())
    if mode == "I;16":
        img = Image.fromarray((np.arange(1200).reshape(30, 40) * 50).astype(np.uint16))
    else:
        img = img.convert(mode)
    path = tmp_path / ("x.tif" if mode in ("CMYK", "I;16") else "x.png")
    img.save(path)
    out = load_image(path)
    assert out.shape == (30, 40, 3) and out.dtype == np.uint8
    if mode == "I;16":
        assert out.min() == 0 and out.max() == 255  # 16-bit range rescaled, not clipped


def test_rgba_alpha_composited_on_white(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)  # fully transparent black
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    assert (load_image(tmp_path / "t.png") == 255).all()


def test_exif_rotation_applied(tmp_path):
    img = Image.fromarray(_face_like())
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    img.save(tmp_path / "r.jpg", exif=exif)
    out = load_image(tmp_path / "r.jpg")
    assert out.shape == (40, 30, 3)
    assert out[0, 0, 0] > 150 and out[-1, 0, 0] < 100  # red half is now on top


@pytest.mark.parametrize("case, reason", [
    ("empty", "empty file (0 bytes)"),
    ("text", "not a recognised image format"),
    ("truncated", "truncated or corrupt image"),
    ("missing", "file not found"),
])
def test_bad_files(tmp_path, case, reason):
    path = tmp_path / f"{case}.jpg"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "text":
        path.write_text("hello, not an image")
    elif case == "truncated":
        Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)).save(path)
        path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(MediaError) as exc:
        load_image(path)
    assert exc.value.reason == reason
    assert str(path) in str(exc.value) and exc.value.fix


def test_decompression_bomb_guard(tmp_path):
    Image.new("L", (2000, 2000)).save(tmp_path / "big.png")
    with pytest.raises(MediaError, match=r"image too large .*4,000,000 pixels > 1,000,000.*--max-pixels"):
        load_image(tmp_path / "big.png", max_pixels=1_000_000)


def test_expand_inputs(tmp_path):
    (tmp_path / "d" / "sub").mkdir(parents=True)
    for name in ["d/b.jpg", "d/a.png", "d/sub/c.mp4", "d/notes.txt", "d/.hidden.jpg", "x.weird"]:
        (tmp_path / name).write_bytes(b"x")
    exp = expand_inputs([str(tmp_path / "d"), str(tmp_path / "x.weird"), str(tmp_path / "d" / "a.png"),
                         str(tmp_path / "nope.jpg"), str(tmp_path / "d" / "*.zzz")])
    names = [(i.path.name, i.kind) for i in exp.items]
    assert names == [("a.png", "image"), ("b.jpg", "image"), ("c.mp4", "video"), ("x.weird", None)]
    assert exp.missing == [str(tmp_path / "nope.jpg"), str(tmp_path / "d" / "*.zzz")]


def test_one_decoder_for_every_consumer(tmp_path):
    """analyze, prepare, training and eval decode media through `load_media`: same pixels everywhere."""
    from emollama.media.decode import load_media, media_item

    folder = tmp_path / "clip"
    folder.mkdir()
    for i in range(6):
        rgba = np.zeros((10, 12, 4), np.uint8)
        rgba[..., 0], rgba[..., 3] = 40 * i, 128  # half-transparent: composited on white, not just dropped
        Image.fromarray(rgba, "RGBA").save(folder / f"{i:03d}.png")
    ref = [f.rgb for f in load_media(folder, True, "uniform:3")]
    assert len(ref) == 3 and ref[0][0, 0, 1] > 100  # white showed through the alpha
    got = media_item(load_media(folder, True, "uniform:3"), True)  # what training and eval hand the processor
    assert all(np.array_equal(a, b) for a, b in zip(ref, got, strict=True))
    img = Image.fromarray(_face_like())
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(tmp_path / "r.jpg", exif=exif)
    assert media_item(load_media(tmp_path / "r.jpg", False, "uniform:1"), False).shape == (40, 30, 3)  # EXIF applied
    with pytest.raises(MediaError, match="empty frame folder"):
        (tmp_path / "empty").mkdir()
        load_media(tmp_path / "empty", True, "uniform:2")
