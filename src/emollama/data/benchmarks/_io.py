"""Shared helpers for adapters: layout checks with actionable errors, line/CSV readers, label id checks.

Readers yield 1-based line numbers so every skip and error can point at the exact line of the owners' file.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path

from emollama.data.benchmarks.report import DatasetFormatError, DatasetLayoutError, SkipReport

# Written form -> canonical name (DATASETS.md §0.2.3 and §8). Keys are lower-case.
SYNONYMS: dict[str, str] = {
    "happy": "happiness", "joy": "happiness", "joyful": "happiness", "happiness": "happiness",
    "sad": "sadness", "sadness": "sadness",
    "angry": "anger", "anger": "anger",
    "surprised": "surprise", "surprise": "surprise",
    "disgusted": "disgust", "disgust": "disgust",
    "fearful": "fear", "fear": "fear", "scared": "fear", "afraid": "fear",
    "neutral": "neutral", "calm": "neutral",
    "contempt": "contempt", "contemptuous": "contempt",
    "anxiety": "anxiety", "anxious": "anxiety",
    "helplessness": "helplessness", "helpless": "helplessness",
    "disappointment": "disappointment", "disappointed": "disappointment",
}


def to_canonical(word: str) -> str | None:
    """Canonical class name for a class word or synonym (case-insensitive), or None."""
    return SYNONYMS.get(word.strip().lower())


def _listing(path: Path, limit: int = 12) -> str:
    """What is actually on disk at the nearest existing ancestor of ``path``."""
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    if not p.is_dir():
        return f"nothing at {str(p)!r}"
    names = sorted(c.name + ("/" if c.is_dir() else "") for c in p.iterdir())
    more = f" ... (+{len(names) - limit} more)" if len(names) > limit else ""
    return f"{str(p)!r} contains {names[:limit] or '[] (empty)'}{more}"


def require(path: Path, *, title: str, what: str, fix: str, is_dir: bool = False) -> Path:
    """Return ``path`` if it exists, else raise a DatasetLayoutError naming expected path, found, and fix."""
    ok = path.is_dir() if is_dir else path.is_file()
    if not ok:
        kind = "directory" if is_dir else "file"
        raise DatasetLayoutError(f"{title}: expected {what} {kind} at {str(path)!r}, not found; "
                                 f"{_listing(path)}. Fix: {fix}")
    return path


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, stripped text) for each non-blank line; tolerates a UTF-8 BOM and CRLF."""
    with path.open(encoding="utf-8-sig", newline=None) as f:
        for i, text in enumerate(f, start=1):
            text = text.strip()
            if text:
                yield i, text


def read_csv(path: Path, required: Sequence[str], *, title: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row dict) for each data row of a headed CSV; raises if a required column is missing."""
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in required if c not in header]
        if missing:
            raise DatasetFormatError(f"{title}: {path}: header is {header} but the official format needs columns "
                                     f"{list(required)} (missing {missing}). Is this the official file?")
        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):  # csv gives the line after the row; rows here are single-line
                yield reader.line_num, {"__malformed__": f"{len(row)} fields, header has {len(header)}"}
                continue
            yield reader.line_num, {h: c.strip() for h, c in zip(header, row, strict=True)}


def parse_int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def check_id_range(path: Path, ids: Sequence[int], lo: int, hi: int, *, title: str, report: SkipReport,
                   hint: str = "") -> None:
    """Check the min/max label id of one file against the official range [lo, hi].

    A whole-file shift (0-based ids in a 1-based file, or the reverse) would silently mislabel every sample, so it is
    an error; isolated out-of-range ids are left to the per-line "unknown label" skip.
    """
    if not ids:
        report.file_summary(str(path), "no labelled rows")
        return
    mn, mx = min(ids), max(ids)
    report.file_summary(str(path), f"{len(ids)} rows, label ids {mn}..{mx} (official {lo}..{hi})")
    base = f"{lo}-based" if lo in (0, 1) else f"starting at {lo}"
    if mn == lo - 1 and mx <= hi - 1:
        raise DatasetFormatError(f"{title}: {path}: label ids run {mn}..{mx} but official ids are {lo}..{hi} "
                                 f"({base}); this file looks shifted down by one (a converted third-party copy?). "
                                 f"Use the owners' original file{hint}.")
    if mn >= lo + 1 and mx == hi + 1:
        raise DatasetFormatError(f"{title}: {path}: label ids run {mn}..{mx} but official ids are {lo}..{hi} "
                                 f"({base}); this file looks shifted up by one (1-based?). "
                                 f"Use the owners' original file{hint}.")
