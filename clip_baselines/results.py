"""The CLIP baselines' results on disk (format ``clsbench-clip-v1``): written incrementally, resumable.

Layout, for ``clsbench clip ... --output-dir OUT``::

    OUT/<run_name>/<dataset>.predictions.jsonl   one line per sample, appended as batches finish
    OUT/<run_name>/<dataset>.json                the summary, written once the dataset is complete

``run_name`` is ``<model>__<pretrained>`` made filesystem-safe (characters other than letters,
digits, ``.``, ``-``, ``_`` become ``_``; local files and ``local-dir:`` folders get their name
plus an 8-hex hash of the absolute path; no ``--pretrained`` gives ``hub``/``local``/``random``),
then ``__single`` with ``--templates single``, ``__names-<set>`` with another ``--class-names``
set, then ``__full`` in ``full`` mode, then, in ``mcq`` mode only, ``__seed<S>`` / ``__n<N>`` when the
seed or option count differ from 0 / 26. So one
OUT holds any mix of modes and settings without collisions.

A ``<dataset>.predictions.jsonl`` line is one JSON object::

    {"sample_key": "17", "label": 3, "prediction": 5, "correct": 0}                 # full mode
    {"sample_key": "17", "label": 3, "prediction": 5, "correct": 0,                 # mcq mode
     "options": [40, 3, 5, ...], "answer": "B", "letter": "C"}

``sample_key`` is the row index in the evaluation split as a string (the key every clsbench
toolkit uses); ``label``/``prediction``/``options`` are class indices; ``answer`` is the right
letter and ``letter`` the chosen one (position in ``options``, A first) - the very questions the
MLLM tasks ask for the same seed and option count. Lines are flushed and fsynced as written;
a torn last line (a crash mid-write) is dropped on resume, a garbled line elsewhere is skipped and
reported (the lines after it are kept), and resuming skips every key present.

``<dataset>.json``::

    {"format": "clsbench-clip-v1", "model": ..., "pretrained": ... (null when the model brings its
     weights), "mode": "mcq"|"full", "templates": "ensemble"|"single", "seed": int, "n_options": int
     (both null in full mode, where they do not apply), "dataset": key, "class_names": "paper"|"openai",
     "accuracy": 0..1, "n_samples": int, "metrics": {"acc1", "acc5" (full mode), "mean_per_class_recall"}
     (CLIP_benchmark's block), "paper_row": the Table 2 row or null, "per_class_accuracy": {classname: 0..1}}

``per_class_accuracy`` lists the classes that have samples; a class name used twice in a class
list (ImageNet's two "missile" classes) is keyed ``"<name> [<class index>]"`` for both.

Beside them, ``OUT/<run_name>/clip_benchmark/<name>_en_zeroshot_classification.json`` holds each
dataset's result in CLIP_benchmark's own format (what ``clip_benchmark eval`` dumps), so its
``clip_benchmark build OUT/<run_name>/clip_benchmark`` makes its CSV from our runs: ``dataset`` is
CLIP_benchmark's name for it (``cars``, ``vtab/flowers``; our key where it has none), ``pretrained``
is ``""`` when the model brings its own weights, and the ``clsbench_*`` fields say our protocol
(``clsbench_mode`` ``mcq``: the 26-option questions, not CLIP_benchmark's all-class task).
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from clsbench.tasks.protocol.catalog import RANDOM, Negatives
from clsbench.tasks.protocol.draws import LETTERS, MAX_OPTIONS
from clsbench.tasks.protocol.registry import DATASETS, DEFAULT_NAMES
from clsbench.tasks.report.readers import CLIP_EXPORT_MARK
from clsbench.tasks.runtime.errors import ClsbenchError

FORMAT = "clsbench-clip-v1"
PREDICTIONS_SUFFIX = ".predictions.jsonl"
MODES = ("mcq", "full")
TEMPLATE_CHOICES = ("ensemble", "single")


class ResultsError(ClsbenchError, ValueError):
    """Existing results do not match this run (other settings or other data); the message says which."""


@dataclass(frozen=True)
class RunSettings:
    """Everything that decides the predictions, and so the run folder's name."""

    model: str
    pretrained: str | None
    run_label: str  # ``<model>__<pretrained>``, filesystem-safe (see ModelRef.run_label)
    mode: str = "mcq"
    templates: str = "ensemble"
    seed: int = 0
    n_options: int = MAX_OPTIONS
    negatives: Negatives = RANDOM  # or a hard-negatives method, read from its file
    class_names: str = DEFAULT_NAMES  # the class-name set shown (registry name sets; ImageNet also has "openai")

    @property
    def run_name(self) -> str:
        name = self.run_label + ("__single" if self.templates == "single" else "")
        if self.class_names != DEFAULT_NAMES:
            name += f"__names-{self.class_names}"
        if self.mode == "full":
            return name + "__full"
        if self.seed != 0:
            name += f"__seed{self.seed}"
        if self.n_options != MAX_OPTIONS:
            name += f"__n{self.n_options}"
        if self.negatives != RANDOM:
            name += f"__{self.negatives}"
        return name

    def header(self, dataset: str) -> dict:
        mcq = self.mode == "mcq"
        return {
            "format": FORMAT,
            "model": self.model,
            "pretrained": self.pretrained,
            "mode": self.mode,
            "templates": self.templates,
            "seed": self.seed if mcq else None,
            "n_options": self.n_options if mcq else None,
            "negatives": self.negatives if mcq else None,
            "dataset": dataset,
            "class_names": self.class_names,
        }


def prediction_record(
    sample_key: str,
    label: int,
    prediction: int,
    options: Sequence[int] | None,
    answer: str | None,
    top5: Sequence[int] | None = None,
) -> dict:
    """One jsonl line; ``options``/``answer`` only in mcq mode, ``top5`` only in full mode."""
    record = {"sample_key": sample_key, "label": label, "prediction": prediction, "correct": int(prediction == label)}
    if options is not None:
        record.update(options=list(options), answer=answer, letter=LETTERS[list(options).index(prediction)])
    if top5 is not None:
        record["top5"] = list(top5)
    return record


class PredictionLog:
    """The append-only ``<dataset>.predictions.jsonl`` of one run."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def read(self) -> dict[str, dict]:
        """Records by sample key; a torn last line is cut off the file so appends stay valid JSONL, a garbled
        line elsewhere is skipped and reported (its sample is recomputed) and the lines after it are kept."""
        from clsbench.tasks.runtime.stores import read_jsonl_records

        if not self.path.is_file():
            return {}
        records = read_jsonl_records(self.path, "sample_key", cut_torn_tail=True)
        return {record["sample_key"]: record for record in records if "sample_key" in record}

    def append(self, records: Iterable[dict]) -> None:
        lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
        if not lines:
            return
        from clsbench.tasks.runtime.stores import writing

        with writing(self.path, "predictions"):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(lines)
                handle.flush()
                os.fsync(handle.fileno())


def per_class_accuracy(records: Iterable[dict], classnames: Sequence[str]) -> dict[str, float]:
    totals: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for record in records:
        totals[record["label"]][0] += record["correct"]
        totals[record["label"]][1] += 1
    repeated = {name for name, count in Counter(classnames).items() if count > 1}
    return {
        (f"{classnames[label]} [{label}]" if classnames[label] in repeated else classnames[label]): correct / count
        for label, (correct, count) in sorted(totals.items())
    }


def summarize(
    settings: RunSettings,
    dataset: str,
    records: dict[str, dict],
    classnames: Sequence[str],
    paper_row: str | None = None,
) -> dict:
    """The ``<dataset>.json`` content for a complete set of records.

    ``metrics`` is CLIP_benchmark's block (``acc1``, ``acc5`` in full mode, ``mean_per_class_recall``),
    so the two tools' outputs read side by side; ``paper_row`` names the model's row in the paper's
    Table 2 when it is one of the six CLIP-style models.
    """
    ordered = [records[key] for key in sorted(records, key=int)]
    correct = sum(record["correct"] for record in ordered)
    accuracy = correct / len(ordered) if ordered else 0.0
    per_class = per_class_accuracy(ordered, list(classnames))
    metrics = {
        "acc1": accuracy,
        "mean_per_class_recall": sum(per_class.values()) / len(per_class) if per_class else 0.0,
    }
    if ordered and all("top5" in record for record in ordered):
        metrics["acc5"] = sum(record["label"] in record["top5"] for record in ordered) / len(ordered)
    return {
        **settings.header(dataset),
        "accuracy": accuracy,
        "n_samples": len(ordered),
        "metrics": metrics,
        "paper_row": paper_row,
        "per_class_accuracy": per_class,
    }


def write_json_atomic(path: Path, content: dict) -> None:
    from clsbench.tasks.runtime.stores import writing

    temporary = path.with_name(path.name + f".{os.getpid()}.tmp")
    try:
        with writing(path, "results"):
            temporary.write_text(json.dumps(content, indent=1, ensure_ascii=False) + "\n", "utf-8")
            os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)  # a full disk leaves no partial file behind


CLIP_BENCHMARK_DIR = "clip_benchmark"  # per run folder: the results in CLIP_benchmark's format
CLIP_BENCHMARK_TASK = "zeroshot_classification"


def clip_benchmark_result(summary: dict) -> dict:
    """One dataset's summary as CLIP_benchmark's ``eval`` writes a result (``clip_benchmark/cli.py``: dataset,
    model, pretrained, task, metrics, language), plus our protocol; its ``build`` needs ``metrics`` and a
    string ``pretrained``."""
    spec = DATASETS[summary["dataset"]]
    return {
        "dataset": spec.clip_benchmark[0] if spec.clip_benchmark else spec.key,
        "model": summary["model"],
        "pretrained": summary["pretrained"] or "",
        "task": CLIP_BENCHMARK_TASK,
        "metrics": summary["metrics"],
        "language": "en",
        "written_by": CLIP_EXPORT_MARK,  # the report reads our summary instead
        "clsbench_dataset": spec.key,
        **{f"clsbench_{field}": summary.get(field) for field in ("mode", "templates", "seed", "n_options")},
        **{f"clsbench_{field}": summary.get(field) for field in ("negatives", "class_names", "n_samples")},
        "clsbench_paper_row": summary.get("paper_row"),
    }


def clip_benchmark_path(run_dir: Path, summary: dict) -> Path:
    """CLIP_benchmark's default file name (``{dataset}_..._{language}_{task}.json``, ``/`` as ``_``), per run."""
    name = clip_benchmark_result(summary)["dataset"].replace("/", "_")
    return run_dir / CLIP_BENCHMARK_DIR / f"{name}_en_{CLIP_BENCHMARK_TASK}.json"


def write_clip_benchmark_result(run_dir: Path, summary: dict) -> Path:
    from clsbench.tasks.runtime.stores import writing

    path = clip_benchmark_path(run_dir, summary)
    with writing(path.parent, "the results in CLIP_benchmark's format"):
        path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, clip_benchmark_result(summary))
    return path


def summary_path(run_dir: Path, dataset: str) -> Path:
    return run_dir / f"{dataset}.json"


def predictions_path(run_dir: Path, dataset: str) -> Path:
    return run_dir / f"{dataset}{PREDICTIONS_SUFFIX}"


class UnreadableSummary(ResultsError):
    """A dataset's summary JSON is torn or garbled (a run killed mid-write, a full disk); the message names it."""


def read_summary(run_dir: Path, dataset: str) -> dict | None:
    """A finished dataset's summary, or None when there is none; an unreadable one raises UnreadableSummary."""
    path = summary_path(run_dir, dataset)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text("utf-8"))
    except ValueError as error:
        raise UnreadableSummary(f"{path} is not readable JSON ({error})") from error


def load_runs(out: str | os.PathLike) -> dict[str, dict[str, dict]]:
    """Every completed dataset under OUT: ``{run_name: {dataset: summary}}`` (for tables and reports)."""
    runs: dict[str, dict[str, dict]] = {}
    for path in sorted(Path(out).glob("*/*.json")):
        if path.stem not in DATASETS:
            continue
        try:
            summary = json.loads(path.read_text("utf-8"))
        except ValueError:
            continue
        if summary.get("format") == FORMAT:
            runs.setdefault(path.parent.name, {})[path.stem] = summary
    return runs


def accuracies(run: dict[str, dict]) -> dict[str, float]:
    """Dataset key -> accuracy (0..1), the input of :func:`clsbench.tasks.report.lmms_results.table_row`."""
    return {dataset: summary["accuracy"] for dataset, summary in run.items()}
