"""Read lmms-eval results files and lay them out as the paper's Table 2 (one row per model)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from clsbench.tasks.protocol.catalog import task_name
from clsbench.tasks.protocol.registry import DATASETS, GROUPS, datasets_in_group, paper_datasets

GROUP_COLUMNS = {"general": "General Avg.", "fine-grained": "Fine-grained Avg."}


def results_files(output_path: str | os.PathLike, newer_than: float = 0.0) -> list[Path]:
    """lmms-eval's ``*_results.json`` files under ``--output_path``, oldest first."""
    found = [path for path in Path(output_path).rglob("*_results.json") if path.stat().st_mtime >= newer_than]
    return sorted(found, key=lambda path: path.stat().st_mtime)


def dataset_accuracies(results: dict, suffix: str = "") -> dict[str, float]:
    """Dataset key -> accuracy (0..1) for every clsbench task (of one MCQ variant) in an lmms-eval results dict."""
    by_task = results.get("results", {})
    scores = {}
    for key in DATASETS:
        value = by_task.get(task_name(key, suffix), {}).get("accuracy,none")
        if isinstance(value, (int, float)) and not math.isnan(value):
            scores[key] = float(value)
    return scores


def sample_decision(entry: dict) -> dict | None:
    """A logged sample's decision record (``decision`` since clsbench 0.2, the ``accuracy`` object before)."""
    record = entry.get("decision", entry.get("accuracy"))
    return record if isinstance(record, dict) else None


def table_row(scores: dict[str, float]) -> dict[str, float | None]:
    """Percentages per dataset abbreviation plus the two unweighted group means (None when incomplete)."""
    row: dict[str, float | None] = {spec.abbreviation: _percent(scores.get(key)) for key, spec in DATASETS.items()}
    for group in GROUPS:
        members = [spec.key for spec in datasets_in_group(group)]
        present = [scores[key] for key in members if key in scores]
        row[GROUP_COLUMNS[group]] = _percent(sum(present) / len(present)) if len(present) == len(members) else None
    return row


def _percent(value: float | None) -> float | None:
    return None if value is None else round(100 * value, 1)


def table_columns(rows: dict[str, dict[str, float | None]] | None = None) -> list[str]:
    """The paper's Table 2 columns (its datasets in registry order, then the two group means), then any extra
    dataset (outside the paper's groups) that has a value in ``rows``: an extra never enters an average."""
    paper = [spec.abbreviation for spec in paper_datasets()]
    extras = [
        spec.abbreviation
        for spec in DATASETS.values()
        if not spec.in_paper and any(row.get(spec.abbreviation) is not None for row in (rows or {}).values())
    ]
    return paper + list(GROUP_COLUMNS.values()) + extras


def markdown_table(rows: dict[str, dict[str, float | None]]) -> str:
    """A Markdown table, one row per model; missing cells show as '—', never as zero."""
    columns = table_columns(rows)
    lines = ["| Model | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for model, row in rows.items():
        cells = ["—" if row.get(column) is None else f"{row[column]:.1f}" for column in columns]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def read_results(path: str | os.PathLike) -> dict:
    return json.loads(Path(path).read_text("utf-8"))
