"""Expand the user's PATH arguments (files, folders, globs) into an ordered, de-duplicated list of media items."""

from __future__ import annotations

import glob
import logging
from dataclasses import dataclass
from pathlib import Path

from emollama.media.decode import media_kind

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Item:
    """One input to analyse. ``kind`` is 'image', 'video', or None when unknown (recorded as an error later)."""

    path: Path
    kind: str | None


@dataclass
class Expansion:
    items: list[Item]
    missing: list[str]  # arguments that matched nothing


def expand_inputs(args: list[str], recursive: bool = True) -> Expansion:
    """Files are kept whatever their extension (a wrong one becomes an error record); folders are walked for
    known image/video extensions, sorted; glob patterns are expanded. Duplicates keep their first position."""
    seen: set[Path] = set()
    items: list[Item] = []
    missing: list[str] = []

    def add(p: Path) -> None:
        rp = p.resolve()
        if rp not in seen:
            seen.add(rp)
            items.append(Item(p, media_kind(p)))

    for arg in args:
        p = Path(arg)
        if p.is_dir():
            walker = p.rglob("*") if recursive else p.glob("*")
            found = sorted(f for f in walker if f.is_file() and media_kind(f) and not f.name.startswith("."))
            if not found:
                logger.warning("folder %s has no image or video files", p)
            for f in found:
                add(f)
        elif p.exists():
            add(p)
        elif glob.has_magic(arg):
            matches = sorted(Path(m) for m in glob.glob(arg, recursive=True) if Path(m).is_file())
            if not matches:
                missing.append(arg)
            for m in matches:
                add(m)
        else:
            missing.append(arg)
    return Expansion(items, missing)
