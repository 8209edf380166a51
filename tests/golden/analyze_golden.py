"""Golden `emollama analyze` records on the sample media, timings excluded (the renovation's behaviour check).

`python tests/golden/analyze_golden.py OUT.json` writes the records of the current code; the test
(tests/golden/test_golden.py) compares a fresh run with the committed file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# every sample photo and both short videos; the two long face/no-face clips add minutes and nothing new
MEDIA = ["astronaut", "feat_anger", "feat_bw_human", "feat_disgust", "feat_happy", "feat_multi_face", "feat_no_face",
         "feat_single_face", "feat_surprise", "feat_pexels_video", "feat_single_face_video"]
# keys that vary run to run (wall time) or by machine (absolute paths), not by behaviour
VOLATILE = {"timings_ms", "source", "item_key"}


def media_paths() -> list[Path]:
    """The sample media from the asset cache (KeyError/FileNotFoundError when absent)."""
    from emollama.assets import resolve

    return [resolve(name, download=False) for name in MEDIA]


def strip(value: object, volatile: frozenset[str] | set[str] = VOLATILE) -> object:
    """Drop the ``volatile`` keys recursively."""
    if isinstance(value, dict):
        return {k: strip(v, volatile) for k, v in value.items() if k not in volatile}
    if isinstance(value, list):
        return [strip(v, volatile) for v in value]
    return value


def run(extra: list[str] | None = None) -> dict[str, list]:
    """Analyze the sample media in a subprocess; records keyed by asset name, volatile keys removed."""
    paths = media_paths()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "records.jsonl"
        cmd = [sys.executable, "-m", "emollama.cli.__main__", "analyze", *map(str, paths), "--out", str(out),
               "--no-progress", "--blendshapes", *(extra or [])]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                              env={**os.environ, "OMP_NUM_THREADS": "2"})
        if proc.returncode not in (0, 3):
            raise RuntimeError(proc.stderr[-3000:])
        records = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    by_path = {str(p): name for p, name in zip(paths, MEDIA, strict=True)}
    out: dict[str, list] = {}
    for r in records:
        out.setdefault(by_path[r["source"]], []).append(strip(r))
    return out


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(json.dumps(run(sys.argv[2:]), indent=1, sort_keys=True) + "\n")
