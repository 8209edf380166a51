"""`emollama score`: score any model's free-text answers (a CSV) with the same parser, metrics and report as `eval`.

CSV columns (header names are matched case-insensitively; override with --id-column etc.):
  id      sample id or file name (unique)            default names: id, sample_id, sample, name, video_name, image
  label   ground truth: a class name or synonym ("Happy"), or an integer index into the class list, 0-based
          unless --one-based (RAF-DB and DFEW official ids are 1-based)
  answer  the model's raw answer text                  default names: answer, raw_answer, response, output, text
  fold    optional; with several folds the headline is the fold mean (DFEW/MAFW convention)
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from emollama import __version__
from emollama.evaluation.parse import POLICIES, AnswerParser, dataset_classes, load_vocabulary, resolve_label

if TYPE_CHECKING:
    from emollama.evaluation.report import Report

HELP = "score a CSV of free-text answers (any MLLM) against ground truth: WAR/UAR/macro-F1 with CIs + report files"
logger = logging.getLogger(__name__)

ID_COLUMNS = ("id", "sample_id", "sample", "name", "video_name", "image", "file")
TRUTH_COLUMNS = ("label", "ground_truth", "truth", "gt", "target", "emotion")
ANSWER_COLUMNS = ("answer", "raw_answer", "response", "prediction", "output", "text")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("predictions", type=Path, help="CSV with id, ground-truth and answer columns (docs/evaluation.md)")
    p.add_argument("--dataset", required=True, help="benchmark name (rafdb, affectnet7, affectnet8, ferplus, dfew, "
                   "ferv39k, mafw) or any name together with --classes")
    p.add_argument("--classes", help="comma-separated class list in index order; overrides the built-in list")
    p.add_argument("--policy", choices=POLICIES, default="strict",
                   help="strict: exactly one class must be mentioned; first: first mention wins (ranked lists)")
    p.add_argument("--fold-column", help="column holding the fold; default: 'fold' if the CSV has it")
    p.add_argument("--group-column", action="append", default=[], metavar="COL",
                   help="also break metrics down by this column, e.g. gender (repeatable)")
    p.add_argument("--id-column", help=f"sample-id column (default: first of {', '.join(ID_COLUMNS)})")
    p.add_argument("--truth-column", help=f"ground-truth column (default: first of {', '.join(TRUTH_COLUMNS)})")
    p.add_argument("--answer-column", help=f"answer column (default: first of {', '.join(ANSWER_COLUMNS)})")
    p.add_argument("--one-based", action="store_true", help="integer ground-truth ids start at 1, not 0")
    p.add_argument("--prompt-template", help="prompt template id used to produce the answers (recorded only)")
    p.add_argument("--prompt-seed", type=int, help="seed used to produce the answers (recorded only)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the 95%% CIs (0 = none)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--out", type=Path, help="output directory (default: <csv stem>_report next to the CSV)")


def _column(header: list[str], wanted: str | None, defaults: tuple[str, ...], role: str, path: Path) -> str:
    lower = {h.strip().lower(): h for h in header}
    for name in [wanted] if wanted else defaults:
        if name.lower() in lower:
            return lower[name.lower()]
    hint = f"--{role}-column" if not wanted else f"one of the header names for --{role}-column"
    raise ValueError(f"{path}: no {role} column {wanted or ' / '.join(defaults)!r} in header {header}; pass {hint}")


def score_csv(path: Path, *, dataset: str, classes: list[str] | None = None, policy: str = "strict",
              fold_column: str | None = None, group_columns: list[str] | None = None,
              columns: dict[str, str | None] | None = None, one_based: bool = False,
              provenance: dict | None = None, n_boot: int = 1000, seed: int = 0) -> Report:
    """Parse every answer in the CSV at ``path`` and build a ``Report``. Errors name the file, line and value."""
    from emollama.evaluation.report import SampleRecord, build_report  # numpy: keep `emollama --help` light

    explicit = bool(classes)
    try:
        classes = list(classes) if classes else list(dataset_classes(dataset))
    except KeyError as err:
        raise ValueError(err.args[0]) from None
    parser = AnswerParser(classes, policy)
    columns = columns or {}
    raw = path.read_bytes()
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        if not header:
            raise ValueError(f"{path}: empty file, expected a header row")
        id_col = _column(header, columns.get("id"), ID_COLUMNS, "id", path)
        truth_col = _column(header, columns.get("truth"), TRUTH_COLUMNS, "truth", path)
        answer_col = _column(header, columns.get("answer"), ANSWER_COLUMNS, "answer", path)
        fold_col = _column(header, fold_column, (), "fold", path) if fold_column else (
            _column(header, None, ("fold",), "fold", path) if "fold" in map(str.lower, header) else None)
        group_cols = [_column(header, g, (), "group", path) for g in group_columns or []]
        records: list[SampleRecord] = []
        seen: dict[str, int] = {}
        numeric = False  # integer ids seen: used for the 1-based hint
        for row in reader:
            line = reader.line_num
            sid = (row.get(id_col) or "").strip()
            if not sid:
                raise ValueError(f"{path}:{line}: empty sample id in column {id_col!r}")
            if sid in seen:
                raise ValueError(f"{path}:{line}: duplicate sample id {sid!r} (first on line {seen[sid]})")
            seen[sid] = line
            cell = (row.get(truth_col) or "").strip()
            numeric = numeric or cell.isdigit()
            try:
                truth = resolve_label(cell, classes, one_based=one_based)
            except ValueError as err:
                raise ValueError(f"{path}:{line}: column {truth_col!r}: {err}") from None
            fold = (row.get(fold_col) or "").strip() if fold_col else None
            if fold_col and not fold:
                raise ValueError(f"{path}:{line}: empty fold in column {fold_col!r}")
            answer = row.get(answer_col) or ""
            res = parser(answer)
            records.append(SampleRecord(id=sid, truth=truth, answer=answer, pred=-1 if res.index is None else res.index,
                                        status=res.status, matched=res.matched, fold=fold,
                                        groups={g: (row.get(g) or "").strip() or "unknown" for g in group_cols}))
    if not records:
        raise ValueError(f"{path}: no data rows after the header")
    if numeric and not one_based and min(r.truth for r in records) > 0:
        logger.warning("%s: integer ground truth never uses index 0; if the ids are 1-based, pass --one-based", path)
    vocab = load_vocabulary()
    prov = {"source": path.name, "source_sha256": hashlib.sha256(raw).hexdigest(), "emollama_version": __version__,
            "synonyms_version": vocab["version"], "synonyms_sha256": vocab["sha256"],
            "class_source": "explicit" if explicit else "built-in table", **(provenance or {})}
    return build_report(dataset=dataset, classes=classes, policy=policy, records=records, provenance=prov,
                        n_boot=n_boot, seed=seed)


def run(args: argparse.Namespace) -> int:
    if not args.predictions.is_file():
        raise FileNotFoundError(f"predictions file {str(args.predictions)!r} does not exist")
    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes else None
    report = score_csv(
        args.predictions, dataset=args.dataset, classes=classes, policy=args.policy, fold_column=args.fold_column,
        group_columns=args.group_column, one_based=args.one_based, n_boot=args.n_boot, seed=args.seed,
        columns={"id": args.id_column, "truth": args.truth_column, "answer": args.answer_column},
        provenance={"prompt_template": args.prompt_template, "prompt_seed": args.prompt_seed,
                    "one_based_ids": args.one_based},
    )
    out = args.out or args.predictions.with_name(args.predictions.stem + "_report")
    paths = report.save(out)
    print(paths["md"].read_text(encoding="utf-8"), end="")
    print("\nwrote " + ", ".join(str(p) for p in paths.values()))
    return 0
