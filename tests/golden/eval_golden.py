"""Golden `emollama eval` on the tiny model (RAF-DB layout, score + generate; DFEW two folds), volatile fields out.

`python tests/golden/eval_golden.py OUT.json` writes the current code's results; tests/golden/test_golden.py
compares a fresh run with the committed file.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
from tests.golden import analyze_golden  # noqa: E402  (the repository root must be importable first)

VOLATILE = {"seconds", "timing", "created", "git_sha", "root", "out", "command", "argv", "emollama_version", "path",
            "media"}


def strip(value: object) -> object:
    """Drop volatile keys (wall time, paths of the temporary folders, versions) recursively."""
    return analyze_golden.strip(value, VOLATILE)


def _read(out: Path) -> dict:
    """Prediction rows and every `<mode>.json` / agreement.json report of one --out folder."""
    rows = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines() if line.strip()]
    reports = {p.name: strip(json.loads(p.read_text())) for p in sorted(out.glob("*.json"))}
    return {"reports": reports, "predictions": strip(rows)}


def run() -> dict:
    """Run the two evaluations in-process on fixture layouts; returns their reports and prediction rows."""
    from tests.evaluation.eval_fixtures import dfew_two_folds, rafdb_root

    from emollama.cli.__main__ import main

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        out = tmp_path / "rafdb"
        assert main(["eval", "--model", "tiny", "--dataset", "rafdb", "--root", str(rafdb_root(tmp_path)), "--mode",
                     "both", "--out", str(out), "--n-boot", "50", "--max-new-tokens", "6", "--no-progress"]) == 0
        results["rafdb"] = _read(out)
        out = tmp_path / "dfew"
        assert main(["eval", "--model", "tiny", "--dataset", "dfew", "--root", str(dfew_two_folds(tmp_path)),
                     "--fold", "1,2", "--out", str(out), "--n-boot", "50", "--no-progress"]) == 0
        results["dfew"] = _read(out)
    return results


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(json.dumps(run(), indent=1, sort_keys=True) + "\n")
