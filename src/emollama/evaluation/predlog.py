"""Crash-safe per-sample prediction log (JSONL) that makes `emollama eval` resumable after kill -9.

One line per (item key, mode), written with ONE write + fsync, so a line is either complete or a torn tail. On
reopen the torn tail is dropped (atomic rewrite: temp file + rename), later duplicates of a (key, mode) are ignored,
and a log written under a different run fingerprint is refused. Same idea as `emollama.analyze.store.ResultStore`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class PredictionLog:
    """Append-only, resumable map (key, mode) -> row.

    Args:
        path: the .jsonl file (created with its parent directories).
        fingerprint: hash of everything that changes predictions (model, dataset, prompts, seed, ...).
        drop: rows for which it returns True are forgotten on open (e.g. failed API calls, to retry them).
    """

    def __init__(self, path: str | os.PathLike, fingerprint: str,
                 drop: Callable[[dict[str, Any]], bool] | None = None) -> None:
        self.path = Path(path)
        self.fingerprint = fingerprint
        self._drop = drop
        self.rows: dict[tuple[str, str], dict[str, Any]] = {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._recover()
        self._fh = open(self.path, "a", encoding="utf-8")

    def _recover(self) -> None:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        text = self.path.read_text(encoding="utf-8")
        lines = text.split("\n")
        body, torn = lines[:-1], lines[-1] != ""  # after a clean newline the last element is ''
        kept: list[str] = []
        for n, line in enumerate(body, 1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                logger.warning("%s line %d is not valid JSON; dropping it", self.path, n)
                torn = True
                continue
            if row.get("fingerprint") != self.fingerprint:
                raise ValueError(f"{self.path} was written by a different evaluation (fingerprint "
                                 f"{row.get('fingerprint')} vs {self.fingerprint}): model, dataset, prompts or seed "
                                 "changed. Use another --out directory, or --overwrite to start again")
            key = (row["key"], row["mode"])
            if key in self.rows or (self._drop is not None and self._drop(row)):
                torn = True  # duplicates cannot happen with a single writer; never count a sample twice
                continue
            self.rows[key] = row
            kept.append(line)
        if torn:
            logger.warning("%s: rewriting without an interrupted run's torn tail or dropped rows", self.path)
            tmp = self.path.with_suffix(".jsonl.tmp")
            tmp.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")
            os.replace(tmp, self.path)
        if self.rows:
            logger.info("%s: resuming with %d logged predictions", self.path, len(self.rows))

    def has(self, key: str, mode: str) -> bool:
        return (key, mode) in self.rows

    def get(self, key: str, mode: str) -> dict[str, Any]:
        return self.rows[(key, mode)]

    def append(self, key: str, mode: str, row: dict[str, Any]) -> None:
        """Durably add one prediction; a (key, mode) already logged is ignored (no duplicates)."""
        if (key, mode) in self.rows:
            return
        row = {"key": key, "mode": mode, **row, "fingerprint": self.fingerprint}
        self._fh.write(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.rows[(key, mode)] = row

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
