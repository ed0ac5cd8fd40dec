"""``clsbench report``: the paper's tables and figures from any mix of runs, in one command.

Three kinds of output go into one table with one row per model (the paper's Table 2 layout):

* lmms-eval ``--output_path`` folders: ``<model>/<date>_results.json``, plus
  ``<date>_samples_<task>.jsonl`` (``--log_samples``) for per-class numbers;
* VLMEvalKit ``--work-dir`` folders: ``<model>/[T<stamp>/]<model>_<data>_acc.csv`` and the
  prediction file ``<model>_<data>.xlsx`` / ``.tsv``, where ``<data>`` is ``cls_<key>_mcq`` (what
  ``clsbench vlmeval`` registers) or ``ClsBench_<key>`` (``DatasetSpec.vlmeval_name``); replies are
  re-scored with clsbench's parser for per-class numbers (VLMEvalKit's own is not 26-option safe);
* ``clsbench clip`` folders: ``<run>/<dataset>.json`` (``"format": "clsbench-clip-v1"``) plus
  ``<dataset>.predictions.jsonl``.

The newest result per model and dataset wins, so re-running one task replaces only that cell. A
missing cell stays missing (never zero), and a group average appears only when the group is
complete, as in the paper. :func:`write_report` is what both the CLI and the demo call.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from pathlib import Path

from clsbench.tasks.report.figures import bar_figure, scatter_figure
from clsbench.tasks.report.readers import collect
from clsbench.tasks.report.records import ClassNames, ModelResult, ReportError
from clsbench.tasks.report.subsets import load_frequencies, load_subset, spearman_rows, subset_tables, subset_targets
from clsbench.tasks.report.tables import (
    SHOW_CHOICES,
    SUBSET_NOTE,
    _csv_text,
    delta_markdown,
    leaderboard_lines,
    missing_line,
    model_subsets,
    per_class_csv,
    show_set,
    table_csv,
    table_latex,
    table_markdown,
    table_rows,
    worst_markdown,
)
from clsbench.tasks.runtime.environment import write_versions


def write_report(
    runs: list[Path],
    out: Path,
    *,
    data_dir: str | Path | None = None,
    worst: int = 10,
    subset: str | None = None,
    frequencies: str | Path | None = None,
    scatter: bool = False,
    figures: bool = True,
    rename: dict[str, str] | None = None,
    echo: Callable[[str], None] | None = print,
    reference: str | None = None,
    show: str | Iterable[str] | None = None,
    allow_partial: bool = False,
) -> str:
    """Write every report file under ``out`` and return the Markdown table.

    Args:
        runs: result folders (lmms-eval, VLMEvalKit, clsbench clip, CLIP_benchmark) or ``results.jsonl`` files.
        out: the report folder.
        reference: ``"paper"`` adds Table 2's rows and ``delta.md`` (each matched row minus the paper).
        show: ``"n"`` and/or ``"ci"`` (a string or several) add each cell's sample count and/or 95 % interval to
            the tables; ``table.csv`` gets them as separate numeric columns.
        allow_partial: count partial cells (a ``--limit`` or crashed run) in the group averages.
        echo: receives the table, the missing-datasets line and any notes (default print; None: quiet).

    Returns:
        The Markdown table. Every input is checked before anything is written, so a bad option leaves no
        half report.
    """
    show = show_set(show)
    notes: list[str] = []
    chosen_subset = load_subset(subset) if subset else None
    counts = load_frequencies(Path(frequencies)) if frequencies else None
    models = report_models(runs, data_dir, rename or {}, notes, reference=reference)
    targets = subset_targets(chosen_subset, ClassNames(data_dir, notes), notes) if chosen_subset else {}
    if chosen_subset and not targets:
        raise ReportError(f"--subset {subset}: no listed class is a class of any dataset")
    rows = table_rows(models, allow_partial)
    if any(model_subsets(model) for model in models):
        notes.append(SUBSET_NOTE)
    table, missing = table_markdown(models, rows, show), missing_line(models)
    files = {
        "table.csv": table_csv(models, rows, show),
        "table.tex": table_latex(models, rows, show),
        "results.jsonl": leaderboard_lines(models),
        "per_class.csv": per_class_csv(models),
        "worst_classes.md": worst_markdown(models, worst),
    }
    if reference:
        files["delta.md"] = delta_markdown(models, rows)
    if chosen_subset:
        files["subset.md"], files["subset.csv"] = subset_tables(models, chosen_subset, targets)
    if counts is not None:
        lines = spearman_rows(models, counts)
        files["spearman.csv"] = _csv_text(lines)
        if len(lines) == 1:
            notes.append("frequencies: no class name matched a class with per-class results")
    files["table.md"] = "\n\n".join([table, missing, *(f"Note: {n}" for n in notes)]) + "\n"
    out.mkdir(parents=True, exist_ok=True)
    written = _write(out, files)
    written.append(write_versions(out, {"report_inputs": [str(run) for run in runs]}))
    if figures:
        written += bar_figure(models, rows, out) + (scatter_figure(models, rows, out) if scatter else [])
    if echo is not None:
        subset_lines = (
            ("", f"Subset {chosen_subset.name} ({chosen_subset.inside} / {chosen_subset.outside}):", files["subset.md"])
            if chosen_subset
            else ()
        )
        for line in (
            table,
            *subset_lines,
            "",
            missing,
            *(f"note: {n}" for n in notes),
            f"wrote {len(written)} files to {out}",
        ):
            echo(line)
    return table


def report_models(
    runs: Iterable[str | Path],
    data_dir: str | Path | None,
    rename: dict[str, str],
    notes: list[str],
    reference: str | None = None,
) -> list[ModelResult]:
    """The table's rows, renamed; no results at all is an error that says where it looked."""
    runs = list(runs)
    models = collect(runs, data_dir, notes, reference=reference)
    if not models:
        raise ReportError(
            "no results found in " + ", ".join(map(str, runs)) + (f" ({'; '.join(notes)})" if notes else "")
        )
    for model in models:
        model.name = rename.get(model.name, model.name)
    if len({model.name for model in models}) < len(models):
        raise ReportError("--rename gives two rows the same name")
    return models


def _write(out: Path, files: dict[str, str]) -> list[Path]:
    paths = []
    for name, text in files.items():
        (out / name).write_text(text, "utf-8")
        paths.append(out / name)
    return paths


def _rename_pair(text: str) -> tuple[str, str]:
    old, sep, new = text.partition("=")
    if not sep or not old or not new:
        raise argparse.ArgumentTypeError(f"expected OLD=NEW, got {text!r}")
    return old, new


def run_report_command(args: argparse.Namespace) -> int:
    write_report(
        [Path(run) for run in args.runs],
        Path(args.output_dir),
        data_dir=args.data_dir,
        worst=args.worst,
        subset=args.subset,
        frequencies=args.frequencies,
        scatter=args.scatter,
        figures=not args.no_figures,
        rename=dict(args.rename),
        reference=args.reference,
        show=args.show,
        allow_partial=args.allow_partial,
    )
    return 0


def add_report_command(commands) -> None:
    """Register ``clsbench report`` on the CLI's subcommand parser."""
    p = commands.add_parser(
        "report",
        help="the paper's table (Markdown, CSV, LaTeX), figures and per-class analyses from result folders",
        description="Collects lmms-eval output folders, VLMEvalKit work dirs and clsbench clip outputs.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="result folders (any mix of the three kinds)")
    p.add_argument(
        "--output-dir", required=True, help="folder for table.md/.csv/.tex, results.jsonl, bars.png/.svg, ..."
    )
    p.add_argument(
        "--data-dir",
        help="root of prepared datasets, for gldv2's class names (default: $CLSBENCH_DATA or ~/.cache/clsbench/data; "
        "without a prepared gldv2 there, its classes show as indices)",
    )
    p.add_argument(
        "--worst", type=int, default=10, metavar="N", help="worst classes per model and dataset (default 10)"
    )
    p.add_argument(
        "--subset",
        metavar="food|FILE",
        help="subset vs rest accuracy (Table 9's F / NF) for a class list (default: none)",
    )
    p.add_argument(
        "--frequencies",
        metavar="FILE",
        help="class name -> count (CSV or JSON): Spearman rho vs per-class accuracy (default: none)",
    )
    p.add_argument("--scatter", action="store_true", help="also scatter.png/.svg: general vs fine-grained average")
    p.add_argument("--no-figures", action="store_true", help="skip the figures")
    p.add_argument(
        "--rename",
        type=_rename_pair,
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="rename a row (repeatable; default: none)",
    )
    p.add_argument(
        "--reference",
        choices=["paper"],
        help="add the paper's Table 2 rows and delta.md, ours minus the paper (default: our rows only)",
    )
    p.add_argument(
        "--show",
        choices=SHOW_CHOICES,
        action="append",
        help="add each cell's sample count (n) or 95%% interval (ci); repeat for both (table.csv: own columns; "
        "default: neither)",
    )
    p.add_argument(
        "--allow-partial",
        action="store_true",
        help="count partial cells (a --limit or crashed run) in the group averages",
    )
    p.set_defaults(run=run_report_command)
