"""Class subsets (the paper's food lists, or a file) split accuracy inside and outside; Spearman with class counts."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from clsbench.tasks.protocol.registry import DATASETS
from clsbench.tasks.report.records import (
    ClassNames,
    ClassScore,
    ModelResult,
    Record,
    ReportError,
    _normalise,
    dataset_key,
    is_number,
)
from clsbench.tasks.report.tables import _cell, _csv_text

SUBSET_DIR = ("subsets",)


@dataclass(frozen=True)
class Subset:
    """A class list: per dataset (key) or for any dataset (None), as normalised names."""

    name: str
    inside: str  # column label of the subset, "F" for the paper's food classes
    outside: str  # and of the rest, "NF"
    classes: dict[str | None, frozenset[str]]


FOOD_UNAVAILABLE = (
    "the built-in 'food' subset (the food-related ImageNet and ImageNetV2 classes of Appendix D of "
    "arXiv 2412.16418) is not shipped: its exact class list could not be obtained from a verifiable copy of "
    "the paper, and clsbench will not substitute a guess. Write the class names to a file (one per line, "
    'spelled as in the dataset\'s class list, or JSON {"imagenet": [...], "imagenetv2": [...]}) and pass '
    "--subset FILE; see tasks/data/subsets/SOURCE.md"
)


def builtin_subset_path(name: str):
    return resources.files("clsbench.tasks.data").joinpath(*SUBSET_DIR, f"{name}.json")


def load_subset(spec: str) -> Subset:
    """``food`` (the paper's list, if shipped) or a file: text, one class per line, or JSON list / {dataset: list}."""
    if spec == "food":
        packaged = builtin_subset_path("food")
        if not packaged.is_file():
            raise ReportError(f"--subset food: {FOOD_UNAVAILABLE}")
        return Subset("food", "F", "NF", _subset_classes(json.loads(packaged.read_text("utf-8")), spec))
    path = Path(spec)
    if not path.is_file():
        raise ReportError(f"--subset {spec}: no such file (give 'food' or a file of class names)")
    text = path.read_text("utf-8")
    content = json.loads(text) if path.suffix == ".json" else [line.strip() for line in text.splitlines()]
    return Subset(path.stem, "in", "out", _subset_classes(content, spec))


def _subset_classes(content: object, spec: str) -> dict[str | None, frozenset[str]]:
    def names(values: object) -> frozenset[str]:
        if not isinstance(values, list):
            raise ReportError(f"--subset {spec}: expected a list of class names, got {type(values).__name__}")
        return frozenset(_normalise(v) for v in values if str(v).strip() and not str(v).startswith("#"))

    if isinstance(content, list):
        return {None: names(content)}
    if isinstance(content, dict):
        lists = {dataset_key(k): v for k, v in content.items() if isinstance(v, list)}
        if None in lists or not lists:
            raise ReportError(f"--subset {spec}: keys must be dataset keys or abbreviations ({', '.join(DATASETS)})")
        return {key: names(values) for key, values in lists.items()}
    raise ReportError(f"--subset {spec}: expected class names (a text file, a JSON list or a JSON object)")


def subset_targets(subset: Subset, names: ClassNames, notes: list[str]) -> dict[str, frozenset[str]]:
    """Datasets the subset applies to, each with its matching class names; unmatched names are reported."""
    targets, unmatched = {}, set().union(*subset.classes.values())
    for key in DATASETS:
        wanted = subset.classes.get(key, subset.classes.get(None, frozenset()))
        known = {_normalise(n) for n in names.names(key) or ()}
        hits = wanted & known
        if hits:
            targets[key] = frozenset(hits)
        unmatched -= hits
        if key in subset.classes and len(hits) < len(wanted):
            notes.append(
                f"subset {subset.name}: {len(wanted - known)} names match no {DATASETS[key].abbreviation} class: "
                + ", ".join(sorted(wanted - known)[:10])
            )
    if None in subset.classes and unmatched:
        notes.append(
            f"subset {subset.name}: {len(unmatched)} names match no class of any dataset: "
            + ", ".join(sorted(unmatched)[:10])
        )
    return targets


Pooled = tuple[float | None, int | None]  # (accuracy, samples)


def pooled(scores: list[ClassScore]) -> Pooled:
    """Accuracy over samples (or, where counts are unknown, the mean over classes) and the sample count."""
    if not scores:
        return None, 0
    if all(s.n is not None for s in scores):
        n = sum(s.n for s in scores)
        return (sum(s.correct for s in scores) / n if n else None), n
    return sum(s.accuracy for s in scores) / len(scores), None


def subset_split(record: Record, classes: frozenset[str]) -> tuple[Pooled, Pooled]:
    inside = [s for name, s in record.per_class.items() if _normalise(name) in classes]
    outside = [s for name, s in record.per_class.items() if _normalise(name) not in classes]
    return pooled(inside), pooled(outside)


def subset_tables(models: list[ModelResult], subset: Subset, targets: dict[str, frozenset[str]]) -> tuple[str, str]:
    """(Markdown in Table 9's layout, CSV) of subset / rest accuracy per model and dataset."""
    header = [f"{DATASETS[k].abbreviation} {label}" for k in targets for label in (subset.inside, subset.outside)]
    md = [f"| Model | {' | '.join(header)} |", "|---" * (len(header) + 1) + "|"]
    lines: list[list[object]] = [["model", "dataset", "part", "n", "accuracy"]]
    for model in models:
        cells = []
        for key, classes in targets.items():
            record = model.datasets.get(key)
            parts = subset_split(record, classes) if record and record.per_class else ((None, None), (None, None))
            for label, (accuracy, n) in zip((subset.inside, subset.outside), parts):
                cells.append(_cell(None if accuracy is None else 100 * accuracy, "—"))
                if record and record.per_class:
                    lines.append(
                        [model.name, key, label, "" if n is None else n, "" if accuracy is None else f"{accuracy:.4f}"]
                    )
        md.append(f"| {model.name} | {' | '.join(cells)} |")
    return "\n".join(md) + "\n", _csv_text(lines)


def load_frequencies(path: Path) -> dict[str | None, dict[str, float]]:
    """Class name -> count from JSON ({name: count} or {dataset: {name: count}}) or a two-column CSV."""
    if not path.is_file():
        raise ReportError(f"--frequencies {path}: no such file")
    if path.suffix == ".json":
        content = json.loads(path.read_text("utf-8"))
        if isinstance(content, dict) and content and all(isinstance(v, dict) for v in content.values()):
            return {dataset_key(k): _counts(v.items(), path) for k, v in content.items()}
        if isinstance(content, dict):
            return {None: _counts(content.items(), path)}
        raise ReportError(f"--frequencies {path}: expected a JSON object of class name -> count")
    with path.open(encoding="utf-8", newline="") as handle:
        rows = [row[:2] for row in csv.reader(handle) if len(row) >= 2]
    if rows and not is_number(rows[0][1]):
        rows = rows[1:]  # a header row
    return {None: _counts(rows, path)}


def _counts(pairs: Iterable, path: Path) -> dict[str, float]:
    counts = {}
    for name, value in pairs:
        if not is_number(value):
            raise ReportError(f"--frequencies {path}: count {value!r} for {name!r} is not a number")
        counts[_normalise(name)] = float(value)
    return counts


def spearman_rows(models: list[ModelResult], frequencies: dict[str | None, dict[str, float]]) -> list[list[object]]:
    """Spearman rho and p between class frequency and per-class accuracy, per model and dataset."""
    from scipy.stats import spearmanr

    lines: list[list[object]] = [["model", "dataset", "classes", "classes_without_frequency", "rho", "p"]]
    for model in models:
        for record in model.records():
            counts = frequencies.get(record.dataset, frequencies.get(None, {}))
            pairs = [
                (counts[_normalise(n)], s.accuracy) for n, s in record.per_class.items() if _normalise(n) in counts
            ]
            if not pairs:
                continue
            rho = p = ""
            if len(pairs) >= 3 and len({f for f, _ in pairs}) > 1 and len({a for _, a in pairs}) > 1:
                result = spearmanr([f for f, _ in pairs], [a for _, a in pairs])
                rho, p = f"{float(result.statistic):.4f}", f"{float(result.pvalue):.4g}"
            lines.append([model.name, record.dataset, len(pairs), len(record.per_class) - len(pairs), rho, p])
    return lines
