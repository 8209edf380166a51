"""`emollama score`: score any model's free-text answers (a CSV) with the same parser, metrics and report as `eval`.

CSV columns (header names are matched case-insensitively; override with --id-column etc.):
  id      sample id or file name (unique)            default names: id, sample_id, sample, name, video_name, image
  label   ground truth: a class name or synonym ("Happy"), or an integer index into the class list, 0-based
          unless --one-based (RAF-DB and DFEW official ids are 1-based)
  answer  the model's raw answer text                  default names: answer, raw_answer, response, output, text
  fold    optional; with several folds the headline is the fold mean (DFEW/MAFW convention)
"""

from __future__ import annotations

import csv
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from emollama import __version__
from emollama.cli.options import arg
from emollama.data.benchmarks import dataset_classes
from emollama.faces.contract import POLICIES, AnswerParser, load_vocabulary, resolve_label

if TYPE_CHECKING:
    from emollama.evaluation.report import Report

HELP = "score a CSV of free-text answers (any MLLM) against ground truth: WAR/UAR/macro-F1 with CIs + report files"
logger = logging.getLogger(__name__)

ID_COLUMNS = ("id", "sample_id", "sample", "name", "video_name", "image", "file")
TRUTH_COLUMNS = ("label", "ground_truth", "truth", "gt", "target", "emotion")
ANSWER_COLUMNS = ("answer", "raw_answer", "response", "prediction", "output", "text")


@dataclass(kw_only=True)
class Options:
    """`emollama score` options."""

    predictions: Path = arg(positional=True, help="CSV with id, ground-truth and answer columns "
                                                  "(docs/evaluation.md)")
    dataset: str = arg(help="benchmark name (rafdb, affectnet7, affectnet8, ferplus, dfew, ferv39k, mafw) or any "
                            "name together with --classes")
    classes: str | None = arg(None, help="comma-separated class list in index order; overrides the built-in list")
    policy: str = arg("strict", choices=POLICIES,
                      help="strict: exactly one class must be mentioned; first: first mention wins (ranked lists)")
    fold_column: str | None = arg(None, help="column holding the fold; default: 'fold' if the CSV has it")
    group_column: list[str] = arg(default_factory=list, metavar="COL",
                                  help="also break metrics down by this column, e.g. gender (repeatable)")
    id_column: str | None = arg(None, help=f"sample-id column (default: first of {', '.join(ID_COLUMNS)})")
    truth_column: str | None = arg(None, help=f"ground-truth column (default: first of {', '.join(TRUTH_COLUMNS)})")
    answer_column: str | None = arg(None, help=f"answer column (default: first of {', '.join(ANSWER_COLUMNS)})")
    one_based: bool = arg(False, help="integer ground-truth ids start at 1, not 0")
    prompt_template: str | None = arg(None, help="prompt template id used to produce the answers (recorded only)")
    prompt_seed: int | None = arg(None, help="seed used to produce the answers (recorded only)")
    n_boot: int = arg(1000, help="bootstrap resamples for the 95%% CIs (0 = none)")
    seed: int = arg(0, help="bootstrap seed (default {default})")
    out: Path | None = arg(None, help="output directory (default: <csv stem>_report next to the CSV)")


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


def run(opts: Options) -> int:
    """Score ``opts.predictions``, save the report files and print the Markdown report."""
    if not opts.predictions.is_file():
        raise FileNotFoundError(f"predictions file {str(opts.predictions)!r} does not exist")
    classes = [c.strip() for c in opts.classes.split(",") if c.strip()] if opts.classes else None
    report = score_csv(
        opts.predictions, dataset=opts.dataset, classes=classes, policy=opts.policy, fold_column=opts.fold_column,
        group_columns=opts.group_column, one_based=opts.one_based, n_boot=opts.n_boot, seed=opts.seed,
        columns={"id": opts.id_column, "truth": opts.truth_column, "answer": opts.answer_column},
        provenance={"prompt_template": opts.prompt_template, "prompt_seed": opts.prompt_seed,
                    "one_based_ids": opts.one_based},
    )
    out = opts.out or opts.predictions.with_name(opts.predictions.stem + "_report")
    paths = report.save(out)
    print(paths["md"].read_text(encoding="utf-8"), end="")
    print("\nwrote " + ", ".join(str(p) for p in paths.values()))
    return 0
