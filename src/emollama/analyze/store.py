"""Resumable result files for `emollama analyze` (.jsonl or .csv).

All records of one input item are written with ONE write + fsync and carry `record_index`/`records_in_item`.
On reopen, a torn tail (kill -9 mid-write) or an item with missing records is dropped by rewriting the file
atomically (temp file + rename), so a resumed run never duplicates or loses an item.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def flatten(record: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> 'a.b' columns; lists become JSON strings (CSV cells stay on one line)."""
    out: dict[str, Any] = {}
    for k, v in record.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        elif isinstance(v, (list, tuple)):
            out[key] = json.dumps(v)
        elif isinstance(v, str):
            out[key] = v.replace("\r", " ").replace("\n", " ")
        else:
            out[key] = v
    return out


CSV_COLUMNS = [
    "kind", "source", "media", "face_index", "track_id", "frame", "time_s", "frame_range", "time_range",
    "box", "box_score", "label", "confidence", "expression_model", "explanation", "age.years", "age.group",
    "gender.value",
    "gender.confidence", "race", "pose.yaw", "pose.pitch", "pose.roll", "error.reason", "error.detail",
    "error.fix", "frames_sampled", "frames_expected", "duration_s", "time_covered_s", "video_truncated", "warnings",
    "item_key", "options_hash", "record_index", "records_in_item",
]


class ResultStore:
    """Append-only, crash-safe result file.

    Args:
        path: output file; '.csv' selects CSV, anything else JSONL.
        options_hash: hash of the analysis options; reopening a file written with other options is an error.
        expression_model: the run's expression weights (`expression_identity`); reopening a file whose records
            name other weights (another release's, or another model) is an error too. Files written before records
            named their model resume as before.
    """

    def __init__(self, path: str | os.PathLike, options_hash: str, expression_model: str | None = None) -> None:
        self.path = Path(path)
        self.csv = self.path.suffix.lower() == ".csv"
        self.options_hash = options_hash
        self.expression_model = expression_model
        self.columns = CSV_COLUMNS  # a resumed CSV keeps the columns of its header (it may predate newer ones)
        self.done: set[str] = set()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._recover()
        self._fh = open(self.path, "a", encoding="utf-8", newline="")

    # --- reading / recovery --------------------------------------------------------------------------------
    def _read_rows(self, text: str) -> list[dict[str, Any]]:
        lines = text.split("\n")
        body = lines[:-1]  # the last element is '' after a clean newline, or a torn partial line
        if self.csv:
            if not body:
                return []
            reader = csv.DictReader(io.StringIO("\n".join(body) + "\n"))
            return [dict(r) for r in reader]
        rows = []
        for n, line in enumerate(body, 1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                logger.warning("%s line %d is not valid JSON; dropping it", self.path, n)
        return rows

    def _recover(self) -> None:
        if not self.path.exists() or self.path.stat().st_size == 0:
            return
        text = self.path.read_text(encoding="utf-8")
        if self.csv and "\n" in text:
            self.columns = next(csv.reader([text.split("\n", 1)[0]]))
        rows = self._read_rows(text)
        hashes = {str(r.get("options_hash")) for r in rows if r.get("options_hash") not in (None, "")}
        if hashes and hashes != {self.options_hash}:
            raise ValueError(
                f"{self.path} was written with different analysis options ({sorted(hashes)} vs {self.options_hash}); "
                "use another --out file, or --overwrite to start again"
            )
        self._check_model(rows)
        by_item: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            by_item[str(r.get("item_key"))].append(r)
        complete = {k for k, rs in by_item.items()
                    if len({int(r["record_index"]) for r in rs}) == int(rs[0]["records_in_item"]) == len(rs)}
        torn = not text.endswith("\n")
        if torn or len(complete) != len(by_item):
            kept = [r for r in rows if str(r.get("item_key")) in complete]
            logger.warning("%s: dropping %d incomplete item(s) from an interrupted run", self.path,
                           len(by_item) - len(complete) + (1 if torn and len(complete) == len(by_item) else 0))
            tmp = self.path.with_suffix(self.path.suffix + ".tmp")
            tmp.write_text(self._format(kept, header=self.csv), encoding="utf-8")
            os.replace(tmp, self.path)
        self.done = complete

    def _check_model(self, rows: list[dict[str, Any]]) -> None:
        """Refuse rows that name other expression weights; warn about a file from before rows named them."""
        if not self.expression_model:
            return
        models = {str(r["expression_model"]) for r in rows if r.get("expression_model") not in (None, "")}
        if models and models != {self.expression_model}:
            raise ValueError(
                f"{self.path} holds labels from the expression model {', '.join(sorted(models))}, and this run uses "
                f"{self.expression_model} (other weights, e.g. another emollama release): use another --out file, "
                "or --overwrite to start again"
            )
        old_header = "expression_model" not in self.columns  # a CSV begun by an older release
        if old_header or (not models and any(r.get("kind") in ("face", "track") for r in rows)):
            logger.warning("%s was written before records named their expression model, so its earlier labels "
                           "cannot be checked against %s%s; --overwrite starts a file that names it", self.path,
                           self.expression_model, ", and its CSV header will drop the name from new rows"
                           if old_header else "")

    # --- writing -------------------------------------------------------------------------------------------
    def _format(self, records: list[dict[str, Any]], header: bool = False) -> str:
        if not self.csv:
            return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=self.columns, extrasaction="ignore", lineterminator="\n")
        if header:
            writer.writeheader()
        for r in records:
            writer.writerow(flatten(r))
        return buf.getvalue()

    def write_item(self, item_key: str, records: list[dict[str, Any]]) -> None:
        """Atomically (one write + fsync) append all records of one item."""
        n = len(records)
        stamped = [{**r, "item_key": item_key, "options_hash": self.options_hash, "record_index": i,
                    "records_in_item": n} for i, r in enumerate(records)]
        header = self.csv and self._fh.tell() == 0
        self._fh.write(self._format(stamped, header=header))
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self.done.add(item_key)

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
