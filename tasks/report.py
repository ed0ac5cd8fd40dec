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
import csv
import io
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path

from .data import DataError, classnames_for
from .environment import write_versions
from .lmms_tasks import task_name
from .options import LETTERS
from .parsing import parse_answer
from .registry import DATASETS
from .results import GROUP_COLUMNS, dataset_accuracies, markdown_table, table_columns, table_row

MLLM, CLIP = "MLLM", "CLIP"
KIND_ORDER = (CLIP, MLLM)  # CLIP-style baselines first, then the MLLMs
CLIP_FORMAT = "clsbench-clip-v1"
LMMS_DATE = "%Y%m%d_%H%M%S"
VLMEVAL_RUN_DIR = re.compile(r"T(\d{8}-\d{6})")
# <model>_<dataset>{_acc.csv,.xlsx,.tsv}, the dataset named ClsBench_<key> (registry) or cls_<key>_mcq (tasks/vlmeval.py)
VLMEVAL_FILE = re.compile(
    r"(?P<model>.+)_(?:ClsBench_(?P<key>[a-z0-9]+)|cls_(?P<task_key>[a-z0-9]+)_mcq)(?P<kind>_acc\.csv|\.xlsx|\.tsv)"
)
DUPLICATE_SUFFIX = re.compile(r" \[\d+\]$")  # "missile [657]", as clsbench clip writes it
SUBSET_DIR = ("data", "subsets")


class ReportError(ValueError):
    """A report input is unusable; the message says which and what to do."""


@dataclass(frozen=True)
class ClassScore:
    """One class's result; ``n`` and ``correct`` are None where a source gives only the accuracy."""

    accuracy: float
    n: int | None = None
    correct: int | None = None


@dataclass
class Record:
    """One model's result on one dataset, read from one file."""

    model: str
    kind: str  # MLLM or CLIP
    toolkit: str  # lmms-eval, vlmeval or clip
    dataset: str  # registry key
    accuracy: float  # 0..1
    stamp: float  # when the result was produced: the newest wins
    source: Path
    per_class: dict[str, ClassScore] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # said only if this record makes it into the table


@dataclass
class ModelResult:
    """A table row: the newest record per dataset for one model."""

    name: str
    kind: str
    toolkit: str
    datasets: dict[str, Record]

    @property
    def missing(self) -> list[str]:
        return [key for key in DATASETS if key not in self.datasets]

    def records(self) -> list[Record]:
        """This row's records in the paper's dataset order."""
        return [self.datasets[key] for key in DATASETS if key in self.datasets]


# ---------------------------------------------------------------- class names


class ClassNames:
    """Label index -> class name, from the registry or (gldv2) the prepared copy; index text otherwise."""

    def __init__(self, data_dir: str | Path | None, notes: list[str]):
        self.data_dir = data_dir
        self.notes = notes
        self._cache: dict[str, tuple[str, ...] | None] = {}

    def names(self, key: str) -> tuple[str, ...] | None:
        """Display names in label order; a name the list holds twice gets `` [<label>]`` (ImageNet's "missile")."""
        if key not in self._cache:
            try:
                self._cache[key] = _disambiguate(classnames_for(key, self.data_dir))
            except DataError:
                self._cache[key] = None
        return self._cache[key]

    def label(self, key: str, index: int) -> str:
        names = self.names(key)
        if names is None:
            note = (f"{DATASETS[key].abbreviation}: class names unavailable (no prepared copy; pass --data-dir), "
                    "per-class rows show class indices")
            if note not in self.notes:
                self.notes.append(note)
        return names[index] if names is not None and 0 <= index < len(names) else f"class {index}"


def _disambiguate(names: tuple[str, ...]) -> tuple[str, ...]:
    counts = Counter(names)
    return tuple(f"{name} [{index}]" if counts[name] > 1 else name for index, name in enumerate(names))


def _normalise(name: str) -> str:
    """Class-name matching key: case, spacing and the `` [<label>]`` suffix do not matter."""
    return " ".join(DUPLICATE_SUFFIX.sub("", str(name)).split()).casefold()


def tally(pairs: Iterable[tuple[str, bool]]) -> dict[str, ClassScore]:
    """Per-class n, correct and accuracy from (class, correct) pairs."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for name, correct in pairs:
        counts[name][0] += 1
        counts[name][1] += int(bool(correct))
    return {name: ClassScore(right / n, n, right) for name, (n, right) in counts.items()}


def dataset_key(text: object) -> str | None:
    """A registry key from a key, a paper abbreviation or a VLMEvalKit name."""
    for key, spec in DATASETS.items():
        if str(text) in (key, spec.abbreviation, spec.vlmeval_name):
            return key
    return None


# ---------------------------------------------------------------- readers


def _read_json(path: Path, notes: list[str] | None = None) -> object | None:
    """The file's JSON, or None; with ``notes``, an unreadable file is named there (it is skipped, not fatal)."""
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as error:
        if notes is not None:
            notes.append(f"{path}: skipped, not readable JSON ({type(error).__name__}: {str(error)[:80]}); "
                         "a run still writing or killed mid-write?")
        return None


def _read_jsonl(path: Path) -> Iterator[dict]:
    """The records of a JSONL file; a torn line (a run still writing, or killed) is skipped."""
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                yield record


def _stamp(text: str | None, pattern: str, path: Path) -> float:
    """A sortable time from a run's own timestamp, else the file's modification time."""
    try:
        return datetime.strptime(str(text), pattern).timestamp()
    except (TypeError, ValueError):
        return path.stat().st_mtime


def _model_args(value: object) -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    pairs = (part.split("=", 1) for part in str(value or "").split(",") if "=" in part)
    return {k.strip(): v.strip() for k, v in pairs}


def short_id(text: str) -> str:
    """A model id for a row name: Hub ids stay whole, local paths (and ``local-dir:PATH``) show their last part."""
    path = text.removeprefix("local-dir:")
    looks_local = path != text or path.startswith(("/", "./", "../", "~")) or "\\" in path
    return Path(path).name if looks_local else text


def lmms_model_name(results: dict) -> str:
    """Row name of an lmms-eval run: ``<model> (<pretrained>)``, else ``<model> (<model_args>)``."""
    config = results.get("config") or {}
    model = config.get("model") or results.get("model_name") or "unknown model"
    raw_args = config.get("model_args") or ""
    pretrained = _model_args(raw_args).get("pretrained")
    if pretrained:
        return f"{model} ({short_id(pretrained)})"
    return f"{model} ({raw_args})" if isinstance(raw_args, str) and raw_args else str(model)


def read_lmms(root: Path, names: ClassNames, notes: list[str]) -> Iterator[Record]:
    """Every clsbench task in every lmms-eval results file under ``root``; malformed files are named in ``notes``."""
    for path in sorted(root.rglob("*_results.json")):
        results = _read_json(path, notes)
        if results is None:
            continue
        try:
            found = list(_lmms_records(path, results, names))
        except (AttributeError, TypeError, KeyError, ValueError) as error:
            notes.append(f"{path}: skipped, not an lmms-eval results file of the expected shape ({type(error).__name__}: {error})")
            continue
        yield from found


def _lmms_records(path: Path, results: object, names: ClassNames) -> Iterator[Record]:
    if not isinstance(results, dict) or not isinstance(results.get("results", {}), dict):
        raise TypeError("expected an object with a 'results' object")
    prefix = path.name.removesuffix("_results.json")
    model, stamp = lmms_model_name(results), _stamp(results.get("date") or prefix, LMMS_DATE, path)
    for key, accuracy in dataset_accuracies(results).items():
        samples = path.with_name(f"{prefix}_samples_{task_name(key)}.jsonl")
        per_class = _lmms_per_class(samples, key, names) if samples.is_file() else {}
        yield Record(model, MLLM, "lmms-eval", key, accuracy, stamp, path, per_class)


def _lmms_per_class(samples: Path, key: str, names: ClassNames) -> dict[str, ClassScore]:
    records = (entry.get("accuracy") for entry in _read_jsonl(samples))
    return tally(
        (names.label(key, int(record["label"])), record["correct"])
        for record in records
        if isinstance(record, dict) and record.get("label") is not None
    )


def clip_model_name(result: dict) -> str:
    """Row name of a CLIP baseline, e.g. ``ViT-L-14 (openai) [clip mcq]``; settings other than the defaults are
    named too, so runs with other settings get rows of their own."""
    model = short_id(str(result.get("model") or "unknown CLIP"))
    pretrained = result.get("pretrained")
    settings = [f"clip {result.get('mode') or 'mcq'}"]
    if result.get("templates") == "single":
        settings.append("single template")
    if result.get("seed") not in (None, 0):
        settings.append(f"seed {result['seed']}")
    if result.get("n_options") not in (None, len(LETTERS)):
        settings.append(f"{result['n_options']} options")
    if result.get("negatives") not in (None, "random"):
        settings.append(f"{result['negatives']} negatives")
    label = f"{model} ({short_id(str(pretrained))})" if pretrained else model
    return f"{label} [{', '.join(settings)}]"


def read_clip(root: Path, names: ClassNames, notes: list[str]) -> Iterator[Record]:
    """Every ``clsbench clip`` dataset result under ``root``."""
    for path in sorted(root.rglob("*.json")):
        if path.name.endswith("_results.json"):
            continue
        looks_like_result = dataset_key(path.stem) is not None  # clsbench clip writes <dataset>.json
        result = _read_json(path, notes if looks_like_result else None)
        if not isinstance(result, dict) or result.get("format") != CLIP_FORMAT:
            continue
        key = dataset_key(result.get("dataset"))
        if key is None or not isinstance(result.get("accuracy"), (int, float)):
            notes.append(f"{path}: skipped (unknown dataset {result.get('dataset')!r} or no accuracy)")
            continue
        predictions = path.with_name(f"{path.stem}.predictions.jsonl")
        if predictions.is_file():
            rows = {row.get("sample_key"): row for row in _read_jsonl(predictions)}  # a key written twice counts once
            per_class = tally((names.label(key, int(row["label"])), row["correct"]) for row in rows.values())
        else:
            per_class = {name: ClassScore(float(acc)) for name, acc in (result.get("per_class_accuracy") or {}).items()}
        yield Record(clip_model_name(result), CLIP, "clip", key, float(result["accuracy"]), path.stat().st_mtime, path, per_class)


def read_vlmeval(root: Path) -> Iterator[Record]:
    """Every ClsBench dataset in a VLMEvalKit work dir (symlinked copies in the model folder count once)."""
    groups: dict[tuple[Path, str, str], dict[str, Path]] = defaultdict(dict)
    for path in root.rglob("*_*"):
        match = VLMEVAL_FILE.fullmatch(path.name)
        key = match and (match["key"] or match["task_key"])
        if key in DATASETS and path.is_file():
            real = path.resolve()
            groups[(real.parent, match["model"], key)][match["kind"]] = real
    for (folder, model, key), files in sorted(groups.items()):
        record = _vlmeval_record(folder, model, key, files)
        if record is not None:
            yield record


def _vlmeval_record(folder: Path, model: str, key: str, files: dict[str, Path]) -> Record | None:
    """Accuracy from the acc.csv (else from the predictions), per-class numbers from the predictions."""
    notes: list[str] = []
    acc_file = files.get("_acc.csv")
    predictions = files.get(".xlsx") or files.get(".tsv")
    per_class = tally(_vlmeval_rows(predictions)) if predictions else {}
    scored = sum(s.correct for s in per_class.values()) / sum(s.n for s in per_class.values()) if per_class else None
    accuracy = _vlmeval_overall(acc_file, notes) if acc_file else None
    if accuracy is None and scored is None:
        return None
    if accuracy is None:
        notes.append(f"{predictions.name}: no _acc.csv, accuracy computed from the predictions with clsbench's parser")
    elif scored is not None and abs(accuracy - scored) > 5e-4:
        notes.append(f"{acc_file.name} says {accuracy:.2%}, clsbench's parser on {predictions.name} {scored:.2%}; "
                     "the table uses the acc.csv")
    run_dir = VLMEVAL_RUN_DIR.fullmatch(folder.name)
    stamp = _stamp(run_dir[1] if run_dir else None, "%Y%m%d-%H%M%S", acc_file or predictions)
    value = scored if accuracy is None else accuracy
    return Record(model, MLLM, "vlmeval", key, value, stamp, acc_file or predictions, per_class, notes)


def _vlmeval_overall(path: Path, notes: list[str]) -> float | None:
    """The ``Overall`` cell of an acc.csv (row ``split == none`` or the first); percent is detected and said."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "Overall" not in rows[0] or not _is_number(rows[0]["Overall"]):
        notes.append(f"{path.name}: no numeric Overall column, ignored")
        return None
    row = next((r for r in rows if r.get("split") == "none"), rows[0])
    value = float(row["Overall"])
    if value > 1:
        notes.append(f"{path.name}: Overall {value} is a percentage, read as {value / 100:.4f}")
        value /= 100
    return value


def _vlmeval_rows(path: Path) -> Iterator[tuple[str, bool]]:
    """(right option's text, correct) per prediction row; the reply is re-parsed with clsbench's parser."""
    import pandas as pd

    read = pd.read_excel if path.suffix == ".xlsx" else lambda p, **kw: pd.read_csv(p, sep="\t", **kw)
    frame = read(path, dtype=str, keep_default_na=False)  # keeps class names such as "NA" as text
    for row in frame.to_dict("records"):
        options = []
        for letter in LETTERS:
            if not str(row.get(letter, "")).strip():
                break
            options.append(str(row[letter]))
        answer = str(row.get("answer", "")).strip()
        if answer and answer in LETTERS[: len(options)]:
            reply = str(row.get("prediction", "")) or None
            yield options[LETTERS.index(answer)], parse_answer(reply, options) == answer


# ---------------------------------------------------------------- collecting


def collect(runs: Iterable[str | Path], data_dir: str | Path | None, notes: list[str]) -> list[ModelResult]:
    """All models found under the given folders, newest result per dataset, CLIP rows first."""
    names = ClassNames(data_dir, notes)
    records: list[Record] = []
    for run in map(Path, runs):
        if not run.is_dir():
            raise ReportError(f"{run}: not a folder (pass lmms-eval --output_path, VLMEvalKit --work-dir or "
                              "clsbench clip output folders)")
        found = [*read_lmms(run, names, notes), *read_vlmeval(run), *read_clip(run, names, notes)]
        if not found:
            notes.append(f"{run}: no lmms-eval, VLMEvalKit or clsbench clip results for the ten datasets")
        records += found
    models = _merge(records)
    notes += [note for model in models for record in model.records() for note in record.notes]
    return models


def _merge(records: list[Record]) -> list[ModelResult]:
    toolkits: dict[str, set[str]] = defaultdict(set)
    for record in records:
        toolkits[record.model].add(record.toolkit)
    models: dict[str, ModelResult] = {}
    for record in sorted(records, key=lambda r: r.stamp):  # later (newer) records overwrite earlier ones
        name = record.model if len(toolkits[record.model]) == 1 else f"{record.model} [{record.toolkit}]"
        model = models.setdefault(name, ModelResult(name, record.kind, record.toolkit, {}))
        model.datasets[record.dataset] = record
    return sorted(models.values(), key=lambda m: (KIND_ORDER.index(m.kind), m.name.casefold()))


def missing_line(models: list[ModelResult]) -> str:
    """One line naming each model's missing datasets (by paper abbreviation)."""
    gaps = [f"{m.name}: {', '.join(DATASETS[k].abbreviation for k in m.missing)}" for m in models if m.missing]
    return "Missing datasets: " + ("; ".join(gaps) if gaps else "none (every model has all ten)")


# ---------------------------------------------------------------- the table


def table_rows(models: list[ModelResult]) -> dict[str, dict[str, float | None]]:
    return {m.name: table_row({key: record.accuracy for key, record in m.datasets.items()}) for m in models}


def _cell(value: float | None, missing: str) -> str:
    return missing if value is None else f"{value:.1f}"


def table_csv(models: list[ModelResult], rows: dict[str, dict[str, float | None]]) -> str:
    lines = [["Model", "Type", "Toolkit", *table_columns()]]
    lines += [[m.name, m.kind, m.toolkit, *(_cell(rows[m.name][c], "") for c in table_columns())] for m in models]
    return _csv_text(lines)


def _csv_text(lines: Iterable[Iterable[object]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(lines)
    return buffer.getvalue()


_LATEX_SPECIAL = {c: "\\" + c for c in "&%$#_{}"}
_LATEX_SPECIAL |= {"~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(char, char) for char in text)


def table_latex(models: list[ModelResult], rows: dict[str, dict[str, float | None]]) -> str:
    """A booktabs tabular (needs ``\\usepackage{booktabs}``), CLIP-style models and MLLMs in two blocks."""
    columns = table_columns()
    lines = [r"\begin{tabular}{l" + "r" * len(columns) + "}", r"\toprule",
             "Model & " + " & ".join(latex_escape(c) for c in columns) + r" \\"]
    for kind in KIND_ORDER:
        block = [m for m in models if m.kind == kind]
        if block:
            label = "CLIP-style models" if kind == CLIP else "MLLMs"
            lines += [r"\midrule", rf"\multicolumn{{{len(columns) + 1}}}{{l}}{{\textit{{{label}}}}} \\"]
            lines += [latex_escape(m.name) + " & " + " & ".join(_cell(rows[m.name][c], "--") for c in columns) + r" \\"
                      for m in block]
    return "\n".join(lines + [r"\bottomrule", r"\end{tabular}"]) + "\n"


def table_markdown(rows: dict[str, dict[str, float | None]]) -> str:
    return markdown_table({name.replace("|", r"\|"): row for name, row in rows.items()})


# ---------------------------------------------------------------- figures


def _figure_style() -> dict:
    """Paper-size text: 7 pt fonts, reproducible SVG ids."""
    return {"font.size": 7, "axes.titlesize": 7, "legend.fontsize": 6, "svg.hashsalt": "clsbench", "svg.fonttype": "none"}


def _series_styles(models: list[ModelResult]) -> list[dict]:
    """MLLMs in solid colours, CLIP-style models in hatched greys, so the two kinds read apart in print."""
    from matplotlib import colormaps

    colours = colormaps["tab10"].colors
    greys = ("0.45", "0.65", "0.82", "0.3", "0.55", "0.92")
    styles, mllm, clip = [], 0, 0
    for model in models:
        if model.kind == CLIP:
            styles.append({"color": greys[clip % len(greys)], "hatch": "////", "edgecolor": "0.15", "linewidth": 0.4})
            clip += 1
        else:
            styles.append({"color": colours[mllm % len(colours)], "edgecolor": "none"})
            mllm += 1
    return styles


def _save(figure, out: Path, stem: str) -> list[Path]:
    paths = [out / f"{stem}.png", out / f"{stem}.svg"]
    figure.savefig(paths[0], dpi=300)
    figure.savefig(paths[1], metadata={"Date": None})
    return paths


def bar_figure(models: list[ModelResult], rows: dict[str, dict[str, float | None]], out: Path) -> list[Path]:
    """Grouped bars, one group per dataset (then the two averages); a missing cell is an ``x`` on the axis."""
    import matplotlib
    from matplotlib.figure import Figure

    columns = table_columns()
    with matplotlib.rc_context(_figure_style()):
        figure = Figure(figsize=(7.0, 2.4 + 0.12 * math.ceil(len(models) / 3)), layout="constrained")
        axes = figure.add_subplot()
        width = 0.84 / max(len(models), 1)
        for index, (model, style) in enumerate(zip(models, _series_styles(models))):
            offset = (index - (len(models) - 1) / 2) * width
            values = [rows[model.name][column] for column in columns]
            present = [(x + offset, v) for x, v in enumerate(values) if v is not None]
            axes.bar([x for x, _ in present], [v for _, v in present], width, label=model.name, **style)
            absent = [x + offset for x, v in enumerate(values) if v is None]
            axes.plot(absent, [1.5] * len(absent), linestyle="", marker="x", markersize=3, color="0.3")
        axes.axvline(len(DATASETS) - 0.5, color="0.6", linewidth=0.6, linestyle=":")
        axes.set_xticks(range(len(columns)), [c.replace(" Avg.", "\nAvg.") for c in columns])
        axes.set_xlim(-0.5, len(columns) - 0.5)
        axes.set_ylim(0, 100)
        axes.set_ylabel("Accuracy (%)")
        axes.grid(axis="y", linewidth=0.3, color="0.85")
        axes.set_axisbelow(True)
        axes.spines[["top", "right"]].set_visible(False)
        figure.legend(loc="outside lower center", ncol=min(3, max(len(models), 1)), frameon=False)
        return _save(figure, out, "bars")


def scatter_figure(models: list[ModelResult], rows: dict[str, dict[str, float | None]], out: Path) -> list[Path]:
    """General vs fine-grained average per model (models with both groups complete): numbered points and a
    key below, so long model names stay readable at single-column width."""
    import matplotlib
    from matplotlib.figure import Figure

    general, fine = GROUP_COLUMNS["general"], GROUP_COLUMNS["fine-grained"]
    points = [(m, rows[m.name][general], rows[m.name][fine]) for m in models]
    points = [(m, x, y) for m, x, y in points if x is not None and y is not None]
    with matplotlib.rc_context(_figure_style()):
        figure = Figure(figsize=(3.5, 3.2 + 0.11 * len(points)), layout="constrained")
        axes = figure.add_subplot()
        for number, (model, x, y) in enumerate(points, start=1):
            marker, colour = ("s", "0.45") if model.kind == CLIP else ("o", "tab:blue")
            axes.scatter([x], [y], marker=marker, s=16, color=colour, zorder=3, clip_on=False, label=f"{number}  {model.name}")
            axes.annotate(str(number), (x, y), xytext=(3, 2), textcoords="offset points", fontsize=6)
        if not points:
            axes.text(50, 50, "no model has both group averages", ha="center", va="center")
        values = [v for _, x, y in points for v in (x, y)] or [0, 100]
        low, high = max(0, min(values) - 5), min(100, max(values) + 5)
        axes.plot([low, high], [low, high], linestyle="--", linewidth=0.6, color="0.7")
        axes.set(xlim=(low, high), ylim=(low, high), aspect="equal", xlabel=f"{general} (%)", ylabel=f"{fine} (%)")
        if points:
            figure.legend(loc="outside lower center", ncol=1, frameon=False, handletextpad=0.3, markerscale=0.8)
        return _save(figure, out, "scatter")


# ---------------------------------------------------------------- per class


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
    for model in models:
        lines += [f"## {model.name}", ""]
        with_classes = [record for record in model.records() if record.per_class]
        if not with_classes:
            lines += ["No per-sample results (lmms-eval: rerun with `--log_samples`).", ""]
        for record in with_classes:
            lines += [f"**{DATASETS[record.dataset].abbreviation}** ({len(record.per_class)} classes with samples)", "",
                      "| Class | Accuracy (%) | Correct / n |", "|---|---|---|"]
            for name, score in worst_classes(record, count):
                counts = "—" if score.n is None else f"{score.correct} / {score.n}"
                lines.append(f"| {name.replace('|', chr(92) + '|')} | {100 * score.accuracy:.1f} | {counts} |")
            lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------- subsets


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
    "spelled as in the dataset's class list, or JSON {\"imagenet\": [...], \"imagenetv2\": [...]}) and pass "
    "--subset FILE; see tasks/data/subsets/SOURCE.md"
)


def builtin_subset_path(name: str):
    return resources.files(__package__).joinpath(*SUBSET_DIR, f"{name}.json")


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
            notes.append(f"subset {subset.name}: {len(wanted - known)} names match no {DATASETS[key].abbreviation} class: "
                         + ", ".join(sorted(wanted - known)[:10]))
    if None in subset.classes and unmatched:
        notes.append(f"subset {subset.name}: {len(unmatched)} names match no class of any dataset: "
                     + ", ".join(sorted(unmatched)[:10]))
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
                    lines.append([model.name, key, label, "" if n is None else n, "" if accuracy is None else f"{accuracy:.4f}"])
        md.append(f"| {model.name} | {' | '.join(cells)} |")
    return "\n".join(md) + "\n", _csv_text(lines)


# ---------------------------------------------------------------- frequency correlation


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
    if rows and not _is_number(rows[0][1]):
        rows = rows[1:]  # a header row
    return {None: _counts(rows, path)}


def _is_number(text: object) -> bool:
    try:
        float(text)
        return True
    except (TypeError, ValueError):
        return False


def _counts(pairs: Iterable, path: Path) -> dict[str, float]:
    counts = {}
    for name, value in pairs:
        if not _is_number(value):
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
            pairs = [(counts[_normalise(n)], s.accuracy) for n, s in record.per_class.items() if _normalise(n) in counts]
            if not pairs:
                continue
            rho = p = ""
            if len(pairs) >= 3 and len({f for f, _ in pairs}) > 1 and len({a for _, a in pairs}) > 1:
                result = spearmanr([f for f, _ in pairs], [a for _, a in pairs])
                rho, p = f"{float(result.statistic):.4f}", f"{float(result.pvalue):.4g}"
            lines.append([model.name, record.dataset, len(pairs), len(record.per_class) - len(pairs), rho, p])
    return lines


# ---------------------------------------------------------------- the whole report


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
) -> str:
    """Write every report file under ``out`` and return the Markdown table.

    ``echo`` (default: print) receives the table, the missing-datasets line and any notes; pass None
    to stay quiet. Every input is checked before anything is written, so a bad option leaves no half report.
    """
    notes: list[str] = []
    chosen_subset = load_subset(subset) if subset else None
    counts = load_frequencies(Path(frequencies)) if frequencies else None
    models = report_models(runs, data_dir, rename or {}, notes)
    targets = subset_targets(chosen_subset, ClassNames(data_dir, notes), notes) if chosen_subset else {}
    if chosen_subset and not targets:
        raise ReportError(f"--subset {subset}: no listed class is a class of any dataset")
    rows = table_rows(models)
    table, missing = table_markdown(rows), missing_line(models)
    files = {"table.csv": table_csv(models, rows), "table.tex": table_latex(models, rows),
             "per_class.csv": per_class_csv(models), "worst_classes.md": worst_markdown(models, worst)}
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
        for line in (table, "", missing, *(f"note: {n}" for n in notes), f"wrote {len(written)} files to {out}"):
            echo(line)
    return table


def report_models(
    runs: Iterable[str | Path], data_dir: str | Path | None, rename: dict[str, str], notes: list[str]
) -> list[ModelResult]:
    """The table's rows, renamed; no results at all is an error that says where it looked."""
    runs = list(runs)
    models = collect(runs, data_dir, notes)
    if not models:
        raise ReportError("no results found in " + ", ".join(map(str, runs)) + (f" ({'; '.join(notes)})" if notes else ""))
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


# ---------------------------------------------------------------- the CLI


def _rename_pair(text: str) -> tuple[str, str]:
    old, sep, new = text.partition("=")
    if not sep or not old or not new:
        raise argparse.ArgumentTypeError(f"expected OLD=NEW, got {text!r}")
    return old, new


def run_report_command(args: argparse.Namespace) -> int:
    write_report(
        [Path(run) for run in args.runs], Path(args.out), data_dir=args.data_dir, worst=args.worst, subset=args.subset,
        frequencies=args.frequencies, scatter=args.scatter, figures=not args.no_figures, rename=dict(args.rename),
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
    p.add_argument("--out", required=True, help="folder for table.md/.csv/.tex, bars.png/.svg, per_class.csv, ...")
    p.add_argument("--data-dir", help="root of prepared datasets, for gldv2's class names (else class indices)")
    p.add_argument("--worst", type=int, default=10, metavar="N", help="worst classes per model and dataset (default 10)")
    p.add_argument("--subset", metavar="food|FILE", help="subset vs rest accuracy (Table 9's F / NF) for a class list")
    p.add_argument("--frequencies", metavar="FILE", help="class name -> count (CSV or JSON): Spearman rho vs per-class accuracy")
    p.add_argument("--scatter", action="store_true", help="also scatter.png/.svg: general vs fine-grained average")
    p.add_argument("--no-figures", action="store_true", help="skip the figures")
    p.add_argument("--rename", type=_rename_pair, action="append", default=[], metavar="OLD=NEW", help="rename a row")
    p.set_defaults(run=run_report_command)


