"""The renovated layout (#11): old module paths still import for one release, and the layer contracts hold."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from emollama._moved import MOVED

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("old", sorted(MOVED))
def test_old_module_paths_alias_the_new_modules_and_warn(old):
    importlib.import_module("emollama")
    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    assert module is importlib.import_module(MOVED[old])  # one module object, never a second copy
    assert any(issubclass(w.category, DeprecationWarning) and MOVED[old] in str(w.message) for w in caught)


def test_nothing_inside_emollama_imports_an_old_path():
    hits = [f"{p.relative_to(REPO)}: {old}" for p in (REPO / "src" / "emollama").rglob("*.py")
            if p.name != "_moved.py" for old in MOVED if f"{old} import" in p.read_text()
            or f"import {old}\n" in p.read_text()]
    assert not hits, hits


def test_import_contracts_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("import-linter is not installed (it comes with the test extra: `make test` installs it)")
    proc = subprocess.run([exe, "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "0 broken" in proc.stdout
