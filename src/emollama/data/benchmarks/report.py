"""Loading errors and the skip report shared by every benchmark adapter.

A layout problem (missing folder or annotation file, wrong label id base) is an error. A problem confined to
one line (malformed, unknown label, listed-but-missing media) is a counted skip, or an error under ``strict``.
Samples left out by the benchmark's own protocol (e.g. AffectNet "None", FERPlus NF majority) are counted as
exclusions, never errors.
"""

from __future__ import annotations

import logging
from collections import Counter

logger = logging.getLogger(__name__)

# Canonical skip reasons (free-form reasons are allowed; these keep reports comparable across adapters).
MALFORMED = "malformed line"
UNKNOWN_LABEL = "unknown label"
MISSING_MEDIA = "listed but missing media"
DUPLICATE = "duplicate id"


class DatasetLayoutError(FileNotFoundError):
    """The on-disk layout does not match the official release (message: expected path, found, fix)."""


class DatasetFormatError(ValueError):
    """An annotation file (or, with ``strict``, one of its lines) cannot be read as the official format."""


class SkipReport:
    """Counts of skipped / excluded samples by reason, with a few located examples each.

    Args:
        strict: raise :class:`DatasetFormatError` on the first skip instead of counting it.
        max_examples: examples kept per reason (the counts are always complete).
    """

    def __init__(self, strict: bool = False, max_examples: int = 5) -> None:
        self.strict = strict
        self.max_examples = max_examples
        self.skipped: Counter[str] = Counter()
        self.excluded: Counter[str] = Counter()
        self.warnings: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = {}
        self.files: dict[str, str] = {}  # annotation file -> one-line summary (rows, label id range)
        # where each skip happened: a file shared by splits (RAF-DB) is read once per split, and merging the
        # reports of several loads must count its bad lines once
        self._where: dict[str, set[str]] = {}

    def _example(self, reason: str, text: str) -> None:
        ex = self.examples.setdefault(reason, [])
        if len(ex) < self.max_examples:
            ex.append(text)

    def skip(self, reason: str, where: str, detail: str) -> None:
        """Count one skipped sample; ``where`` is 'file:line', ``detail`` says what is wrong and how to fix it."""
        text = f"{where}: {detail}"
        if self.strict:
            raise DatasetFormatError(f"{reason}: {text} (strict mode; drop --strict to skip and count instead)")
        self.skipped[reason] += 1
        self._where.setdefault(reason, set()).add(where)
        self._example(reason, text)
        logger.debug("skip (%s) %s", reason, text)

    def exclude(self, reason: str, where: str | None = None, detail: str | None = None) -> None:
        """Count a sample left out by the benchmark protocol (never an error)."""
        self.excluded[reason] += 1
        if where is not None:
            self._example(reason, f"{where}: {detail}" if detail else where)

    def warn(self, reason: str, where: str, detail: str) -> None:
        """Count a problem that keeps the sample (e.g. a missing optional attribute file)."""
        self.warnings[reason] += 1
        self._example(reason, f"{where}: {detail}")

    def file_summary(self, path: str, text: str) -> None:
        self.files[path] = text
        logger.info("%s: %s", path, text)

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())

    @property
    def n_excluded(self) -> int:
        return sum(self.excluded.values())

    def merge(self, other: SkipReport) -> None:
        """Add ``other``'s counts and examples into this report (a skipped line seen by both counts once)."""
        for reason, wheres in other._where.items():
            mine = self._where.setdefault(reason, set())
            self.skipped[reason] += len(wheres - mine)
            mine |= wheres
        self.excluded.update(other.excluded)
        self.warnings.update(other.warnings)
        self.files.update(other.files)
        for reason, ex in other.examples.items():
            for text in ex:
                if text not in self.examples.get(reason, []):
                    self._example(reason, text)

    def lines(self) -> list[str]:
        """Human-readable report, one item per line (empty sections are left out)."""
        out: list[str] = []
        for title, counter in (("skipped", self.skipped), ("excluded by protocol", self.excluded),
                               ("warnings", self.warnings)):
            if not counter:
                continue
            out.append(f"{title}: {sum(counter.values())}")
            for reason, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])):
                out.append(f"  {reason}: {n}")
                out.extend(f"    e.g. {ex}" for ex in self.examples.get(reason, []))
        return out
