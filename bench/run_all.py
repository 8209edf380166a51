#!/usr/bin/env python
"""Run every bench/p*.py script in order; each writes its own bench/results/<name>.json.

    python bench/run_all.py            # all benchmarks
    python bench/run_all.py p1         # only scripts whose name starts with p1
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    prefixes = (sys.argv[1:] if argv is None else argv) or ["p"]
    scripts = sorted(p for p in BENCH.glob("p*.py") if p.name.startswith(tuple(prefixes)))
    if not scripts:
        print(f"no bench/p*.py scripts match {prefixes}", file=sys.stderr)
        return 1
    failed = []
    for script in scripts:
        print(f"== {script.name}", flush=True)
        t0 = time.perf_counter()
        rc = subprocess.run([sys.executable, str(script)], cwd=BENCH.parent, check=False).returncode
        print(f"== {script.name}: {'ok' if rc == 0 else f'FAILED (exit {rc})'} in {time.perf_counter() - t0:.0f} s")
        if rc:
            failed.append(script.name)
    if failed:
        print(f"failed: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
