"""The paper's Table 2 layout in Markdown, CSV and LaTeX, the leaderboard file, deltas and per-class tables."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable

from clsbench.tasks.protocol.paper import MLLM_ROWS
from clsbench.tasks.protocol.registry import DATASETS, datasets_in_group, paper_datasets
from clsbench.tasks.report.lmms_results import GROUP_COLUMNS, table_columns, table_row
from clsbench.tasks.report.records import (
    CLIP,
    KIND_ORDER,
    LEADERBOARD_FORMAT,
    MLLM,
    REFERENCE,
    ClassScore,
    ModelResult,
    Record,
    ReportError,
)

# A cell scored on fewer rows than the paper's split (the registry's expected_size): ``clsbench demo``'s 8-row
# fixture copies, a ``prepare --limit`` copy. Complete on its copy (it stays in the averages, which wear the mark
# too), but not a number to set beside the paper's.
SUBSET_MARK = "†"
SUBSET_NOTE = (
    f"{SUBSET_MARK} from a subset of the paper's split: the data copy scored has fewer rows than the paper's "
    "(Table 1, the registry's expected_size), so the cell is not comparable with the paper; an average with "
    f"such a cell wears {SUBSET_MARK} too"
)


def subset_records(model: ModelResult, column: str) -> list[Record]:
    """The records behind a cell that come from a subset of the paper's split: the cell's own record, or for a
    group average every member cell's."""
    group = next((g for g, c in GROUP_COLUMNS.items() if c == column), None)
    if group is None:
        record = _cell_record(model, column)
        return [record] if record is not None and record.split_subset else []
    members = [model.datasets.get(spec.key) for spec in datasets_in_group(group)]
    return [record for record in members if record is not None and record.split_subset]


def _subset_summary(model: ModelResult) -> str:
    """``all 10 of the paper's (8 rows each)``, or ``IMN (8 of 50,000 rows), Logo (100 of 500 rows)``."""
    cells = [record for record in model.records() if record.split_subset]
    paper = {spec.key for spec in paper_datasets()}
    sizes = {record.n_expected for record in cells if record.dataset in paper}
    parts, rest = [], cells
    if {record.dataset for record in cells} >= paper and len(sizes) == 1:
        parts = [f"all {len(paper)} of the paper's ({sizes.pop():,} rows each)"]
        rest = [record for record in cells if record.dataset not in paper]
    parts += [f"{DATASETS[r.dataset].abbreviation} ({r.n_expected:,} of {r.full_size:,} rows)" for r in rest]
    return ", ".join(parts)


def missing_line(models: list[ModelResult]) -> str:
    """One line naming each row's missing, partial and conflicting datasets (by paper abbreviation), and the cells
    from a subset of the paper's split (never called complete against the paper)."""
    gaps = []
    for model in models:
        parts = [DATASETS[k].abbreviation for k in model.missing if k not in model.conflicts]
        parts += [
            f"{DATASETS[k].abbreviation} partial (n={r.n} of {r.n_expected})"
            for k, r in model.datasets.items()
            if r.partial
        ]
        parts += [f"{DATASETS[k].abbreviation} conflict" for k in model.conflicts]
        if parts:
            gaps.append(f"{model.name}: {', '.join(parts)}")
    paper = len(paper_datasets())
    subsets = [f"{model.name}: {_subset_summary(model)}" for model in models if any(model_subsets(model))]
    if not subsets:
        return "Missing datasets: " + (
            "; ".join(gaps) if gaps else f"none (every model has all {paper} of the paper's, complete)"
        )
    head = "; ".join(gaps) if gaps else f"none (every model has all {paper} of the paper's datasets"
    return (
        f"Missing datasets: {head}"
        + ("; " if gaps else ", ")
        + f"but {SUBSET_MARK} cells are from subsets of the paper's splits, not comparable with it: "
        + "; ".join(subsets)
        + ("" if gaps else ")")
    )


def model_subsets(model: ModelResult) -> list[Record]:
    return [record for record in model.datasets.values() if record.split_subset]


def table_rows(models: list[ModelResult], allow_partial: bool = False) -> dict[str, dict[str, float | None]]:
    """Percent per column; group averages leave out partial cells unless ``allow_partial``.

    Only our own rows are averaged: the paper's rows (``--reference paper``) show Table 2's averages as printed.
    """
    rows = {}
    for model in models:
        cells = table_row({key: record.accuracy for key, record in model.datasets.items()})
        complete = table_row({key: r.accuracy for key, r in model.datasets.items() if allow_partial or not r.partial})
        averages = {column: complete[column] for column in GROUP_COLUMNS.values()}
        if model.kind == REFERENCE:
            printed = _printed_averages(model)
            averages = {column: printed.get(group) for group, column in GROUP_COLUMNS.items()}
        rows[model.name] = {**cells, **averages}
    return rows


def _printed_averages(model: ModelResult) -> dict[str, float]:
    """The paper's own group averages for a reference row (Table 2 as printed)."""
    from clsbench.tasks.protocol.paper import table2

    row = next((record.paper_row for record in model.datasets.values() if record.paper_row), None)
    return table2()[row]["averages"] if row in table2() else {}


SHOW_CHOICES = ("n", "ci")  # what ``--show`` adds to each cell: its sample count, its 95 % interval


def show_set(show: str | Iterable[str] | None) -> frozenset[str]:
    """``--show`` as a set: one choice, several (``--show n --show ci``) or none; an unknown one is a ReportError."""
    chosen = [show] if isinstance(show, str) else list(show or ())
    unknown = [item for item in chosen if item not in SHOW_CHOICES]
    if unknown:
        raise ReportError(f"--show {unknown[0]}: choose {' or '.join(SHOW_CHOICES)} (repeat --show for both)")
    return frozenset(chosen)


def _cell_record(model: ModelResult, column: str) -> Record | None:
    key = next((k for k, spec in DATASETS.items() if spec.abbreviation == column), None)
    return model.datasets.get(key) if key else None


def cell_text(
    model: ModelResult, column: str, rows: dict[str, dict[str, float | None]], show: frozenset[str], missing: str
) -> str:
    """A cell: the percentage, with ``(n=...)`` for a partial cell, and on request its n and/or 95 % interval."""
    value = rows[model.name].get(column)
    if value is None:
        return missing
    text = f"{value:.1f}" + (SUBSET_MARK if subset_records(model, column) else "")
    record = _cell_record(model, column)
    if record is None:
        return text
    if record.partial:
        text += f" (n={record.n}/{record.n_expected})"
    elif "n" in show and record.n:
        text += f" (n={record.n})"
    if "ci" in show and record.interval():
        low, high = record.interval()
        text += f" [{100 * low:.1f}, {100 * high:.1f}]"
    return text


def _cell(value: float | None, missing: str) -> str:
    return missing if value is None else f"{value:.1f}"


def table_csv(
    models: list[ModelResult], rows: dict[str, dict[str, float | None]], show: frozenset[str] = frozenset()
) -> str:
    """The table as numbers only: a cell's interval and counts go in their own columns (``IMN_ci_low``,
    ``IMN_ci_high`` in percent; ``IMN_n``, ``IMN_n_expected``), the counts also whenever a cell is partial.

    When a cell is from a subset of the paper's split, every column gets ``<column>_split_subset`` (true/false;
    for an average: whether any member cell is) and every dataset column ``<column>_full_split`` (the paper's size)
    besides the counts."""
    columns = table_columns(rows)
    datasets = {spec.abbreviation for spec in DATASETS.values()}
    subsets = any(model_subsets(model) for model in models)
    counts = subsets or "n" in show or any(record.partial for model in models for record in model.datasets.values())
    extras = {
        column: (["ci_low", "ci_high"] if "ci" in show else [])
        + (["n", "n_expected"] if counts else [])
        + (["split_subset", "full_split"] if subsets else [])
        for column in columns
        if column in datasets
    }
    if subsets:
        extras |= {column: ["split_subset"] for column in GROUP_COLUMNS.values()}
    header = ["Model", "Type", "Toolkit"]
    for column in columns:
        header += [column, *(f"{column}_{extra}" for extra in extras.get(column, []))]
    lines = [header]
    for model in models:
        line: list[object] = [model.name, model.kind, model.toolkit]
        for column in columns:
            line.append(_cell(rows[model.name].get(column), ""))
            record = _cell_record(model, column) if rows[model.name].get(column) is not None else None
            interval = record.interval() if record else None
            values = {
                "split_subset": ""
                if rows[model.name].get(column) is None
                else str(bool(subset_records(model, column))).lower(),
                "full_split": record.full_size if record and record.full_size is not None else "",
                "ci_low": f"{100 * interval[0]:.1f}" if interval else "",
                "ci_high": f"{100 * interval[1]:.1f}" if interval else "",
                "n": record.n if record and record.n is not None else "",
                "n_expected": record.n_expected if record and record.n_expected is not None else "",
            }
            line += [values[extra] for extra in extras.get(column, [])]
        lines.append(line)
    return _csv_text(lines)


def _csv_text(lines: Iterable[Iterable[object]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(lines)
    return buffer.getvalue()


_LATEX_SPECIAL = {c: "\\" + c for c in "&%$#_{}"}


_LATEX_SPECIAL |= {"~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(char, char) for char in text)


def table_latex(
    models: list[ModelResult], rows: dict[str, dict[str, float | None]], show: frozenset[str] = frozenset()
) -> str:
    """A booktabs tabular (needs ``\\usepackage{booktabs}``), reference rows, CLIP-style models and MLLMs in blocks."""
    columns = table_columns(rows)
    lines = [
        r"\begin{tabular}{l" + "r" * len(columns) + "}",
        r"\toprule",
        "Model & " + " & ".join(latex_escape(c) for c in columns) + r" \\",
    ]
    for kind in KIND_ORDER:
        block = [m for m in models if m.kind == kind]
        if block:
            label = {CLIP: "CLIP-style models", MLLM: "MLLMs", REFERENCE: "The paper (Table 2)"}[kind]
            lines += [r"\midrule", rf"\multicolumn{{{len(columns) + 1}}}{{l}}{{\textit{{{label}}}}} \\"]
            lines += [
                latex_escape(m.name)
                + " & "
                + " & ".join(
                    latex_escape(cell_text(m, c, rows, show, "--")).replace(SUBSET_MARK, r"$^\dagger$") for c in columns
                )
                + r" \\"
                for m in block
            ]
    return "\n".join(lines + [r"\bottomrule", r"\end{tabular}"]) + "\n"


def table_markdown(
    models: list[ModelResult], rows: dict[str, dict[str, float | None]], show: frozenset[str] = frozenset()
) -> str:
    """The paper's table in Markdown; missing cells show as '—', never as zero."""
    columns = table_columns(rows)
    lines = ["| Model | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for model in models:
        lines.append(
            f"| {model.name.replace('|', chr(92) + '|')} | "
            + " | ".join(cell_text(model, c, rows, show, "—") for c in columns)
            + " |"
        )
    return "\n".join(lines)


def leaderboard_lines(models: list[ModelResult]) -> str:
    """``results.jsonl``: one record per (row, dataset) with everything needed to compare it or rebuild the table."""
    lines = []
    for model in models:
        if model.kind == REFERENCE:
            continue
        cells = [(key, record, False) for key, record in model.datasets.items()]
        cells += [(key, record, True) for key, records in model.conflicts.items() for record in records]
        for key, record, conflict in cells:
            interval = record.interval()
            stderr = (
                record.stderr
                if record.stderr is not None
                else (math.sqrt(record.accuracy * (1 - record.accuracy) / record.n) if record.n else None)
            )
            lines.append(
                json.dumps(
                    {
                        "format": LEADERBOARD_FORMAT,
                        "row": model.name,
                        "model": record.model,
                        "model_id": record.model_id,
                        "kind": record.kind,
                        "toolkit": record.toolkit,
                        "protocol": record.protocol,
                        "dataset": key,
                        "accuracy": record.accuracy,
                        "n": record.n,
                        "n_expected": record.n_expected,
                        "partial": record.partial,
                        "split_subset": record.split_subset,
                        "full_split": record.full_size,
                        "conflict": conflict,
                        "stderr": stderr,
                        "ci95": list(interval) if interval else None,
                        "unparseable_rate": record.unparseable_rate,
                        "versions": record.versions,
                        "paper_row": record.paper_row,
                        "stamp": record.stamp,
                        "source": str(record.source),
                    },
                    ensure_ascii=False,
                    sort_keys=True,
                )
            )
    return "\n".join(lines) + ("\n" if lines else "")


# Said wherever ours is set beside the paper (delta.md, README): two of the ten cells cannot match exactly.
EXACTNESS_NOTE = (
    "Two cells cannot match the paper exactly whatever the model: GLMK (the paper's 1,655-image Google Landmarks "
    "v2 subset is not public; without its ids `clsbench prepare --datasets gldv2` keeps every single-landmark test "
    "image) "
    "and C101 (the paper's 4,331-image Caltech-101 test split follows CoOp's seeded shuffle, which cannot be "
    "reproduced; clsbench picks each class's test images by a hash rule with the same counts)."
)


def _protocol_of(model: ModelResult) -> str:
    """``"paper"`` for a row under the paper's protocol (generate, 26 options, random negatives, paper names,
    seed 0, paper prompt), else the row's protocol label (``score``, ``4 options``, ...)."""
    from clsbench.tasks.report.records import protocol_label

    record = next(iter(model.datasets.values()))
    if model.kind == CLIP:
        label = protocol_label(CLIP, record.protocol)
        return "paper" if label == "clip mcq" else label
    return protocol_label(model.kind, record.protocol) or "paper"


def delta_markdown(models: list[ModelResult], rows: dict[str, dict[str, float | None]]) -> str:
    """Each row matched to a paper row, minus the paper's number (points), per column, compared per protocol.

    The paper's numbers are its protocol's (greedy generation, 26 options); a row under another protocol
    (``[score]``, ``[4 options]``, ...) is listed apart, under a heading that says it is not the paper's protocol.
    """
    paper = {m.datasets[next(iter(m.datasets))].paper_row: m for m in models if m.kind == REFERENCE and m.datasets}
    columns = table_columns(rows)
    header = [
        "| Model | paper row | " + " | ".join(f"Δ {c}" for c in columns) + " |",
        "|---" * (len(columns) + 2) + "|",
    ]
    by_protocol: dict[str, list[str]] = {}
    unmatched: list[str] = []
    for model in models:
        if model.kind == REFERENCE or not model.datasets:
            continue
        row = next((r.paper_row for r in model.datasets.values() if r.paper_row), None)
        if row not in paper:
            unmatched.append(_unmatched_reason(model))
            continue
        ours, theirs = rows[model.name], rows[paper[row].name]
        cells = [_delta_cell(model, c, ours[c], theirs[c]) for c in columns]
        by_protocol.setdefault(_protocol_of(model), []).append(f"| {model.name} | {row} | " + " | ".join(cells) + " |")
    lines = [
        "# Ours minus the paper (Table 2 as printed), in points",
        "",
        "The paper's rows are greedy generation on 26 options (P1 section 3.2); its CLIP rows are 26-option MCQ "
        "with the prompt ensemble. A row is compared with the paper under its own protocol: only the first table "
        "is the paper's protocol.",
        "",
        EXACTNESS_NOTE,
        "",
        "## The paper's protocol",
        "",
    ]
    compared = [m for m in models if m.kind != REFERENCE and m.datasets and any(model_subsets(m))]
    if compared:
        lines += [
            f"{SUBSET_MARK} not comparable: these cells are from subsets of the paper's splits (rows: "
            + "; ".join(f"{m.name}: {_subset_summary(m)}" for m in compared)
            + "); their difference says nothing about reproducing the paper.",
            "",
        ]
    matched_here = by_protocol.pop("paper", None)
    if matched_here:
        lines += [*header, *matched_here]
    else:
        lines.append(
            "No row here is one of the paper's models under its protocol, so there is nothing to subtract"
            + (" in this table." if by_protocol else ": no table.")
        )
    for protocol, entries in sorted(by_protocol.items()):
        lines += [
            "",
            f"## Another protocol: {protocol} (not the paper's; the difference is not a reproduction gap)",
            "",
        ]
        lines += [*header, *entries]
    if unmatched:
        lines += [
            "",
            "## Rows with no paper row",
            "",
            "A row is matched by its model: an MLLM by the checkpoint's Hub id or VLMEvalKit name (one of the "
            f"paper's {len(set(MLLM_ROWS.values()))} MLLMs, `clsbench.tasks.protocol.paper.MLLM_ROWS`), a CLIP model "
            "by its open_clip (model, pretrained) pair (one of the paper's six, `clsbench clip --list-models`). "
            "These rows are neither, so the paper has no number to set them against:",
            "",
            *unmatched,
        ]
    return "\n".join(lines) + "\n"


def _delta_cell(model: ModelResult, column: str, ours: float | None, theirs: float | None) -> str:
    """Ours minus the paper; labelled not comparable where our cell is from a subset of the paper's split."""
    if ours is None or theirs is None:
        return "—"
    if subset_records(model, column):
        return f"not comparable{SUBSET_MARK} ({ours - theirs:+.1f})"
    return f"{ours - theirs:+.1f}"


def _unmatched_reason(model: ModelResult) -> str:
    """A bullet naming a row and the model identity that matched none of the paper's rows."""
    record = next(iter(model.datasets.values()))
    what = "open_clip pair" if model.kind == CLIP else "model"
    return f"- {model.name}: {what} `{record.model_id or record.model}`"


def per_class_csv(models: list[ModelResult]) -> str:
    lines: list[list[object]] = [["model", "dataset", "class", "n", "correct", "accuracy"]]
    for model in models:
        for record in model.records():
            for name, score in sorted(record.per_class.items(), key=lambda item: item[0].casefold()):
                n, correct = ("" if score.n is None else score.n), ("" if score.correct is None else score.correct)
                lines.append([model.name, record.dataset, name, n, correct, f"{score.accuracy:.4f}"])
    return _csv_text(lines)


def worst_classes(record: Record, count: int) -> list[tuple[str, ClassScore]]:
    """The ``count`` lowest-accuracy classes; among ties the better-sampled class first."""
    ranked = sorted(record.per_class.items(), key=lambda item: (item[1].accuracy, -(item[1].n or 0), item[0]))
    return ranked[:count]


def worst_markdown(models: list[ModelResult], count: int) -> str:
    lines = [f"# Worst classes per model and dataset (lowest accuracy, up to {count})", ""]
    references = [model.name for model in models if model.kind == REFERENCE]
    if references:
        lines += [
            f"The paper's {len(references)} reference rows (`--reference paper`) are left out: Table 2 prints one "
            "accuracy per dataset, no per-class results.",
            "",
        ]
    for model in models:
        if model.kind == REFERENCE:
            continue
        lines += [f"## {model.name}", ""]
        with_classes = [record for record in model.records() if record.per_class]
        if not with_classes:
            lines += ["No per-sample results (lmms-eval: rerun with `--log_samples`).", ""]
        for record in with_classes:
            lines += [
                f"**{DATASETS[record.dataset].abbreviation}** ({len(record.per_class)} classes with samples)",
                "",
                "| Class | Accuracy (%) | Correct / n |",
                "|---|---|---|",
            ]
            for name, score in worst_classes(record, count):
                counts = "—" if score.n is None else f"{score.correct} / {score.n}"
                lines.append(f"| {name.replace('|', chr(92) + '|')} | {100 * score.accuracy:.1f} | {counts} |")
            lines.append("")
    return "\n".join(lines)
