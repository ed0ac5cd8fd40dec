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
import hashlib
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
from .environment import VERSIONS_FILE, write_versions
from .paper import mllm_row, table2
from .lmms_tasks import task_name
from .options import LETTERS, MAX_OPTIONS
from .parsing import parse_answer
from .registry import DATASETS, DEFAULT_NAMES, dataset_for_name
from .results import GROUP_COLUMNS, dataset_accuracies, sample_decision, table_columns, table_row

MLLM, CLIP, REFERENCE = "MLLM", "CLIP", "REFERENCE"
KIND_ORDER = (REFERENCE, CLIP, MLLM)  # the paper's rows (with --reference paper), CLIP-style baselines, then MLLMs
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
    """One model's result on one dataset under one protocol, read from one file."""

    model: str  # the model's display name (the row name adds the protocol)
    kind: str  # MLLM, CLIP or REFERENCE
    toolkit: str  # lmms-eval, vlmeval, clip, clip_benchmark or paper
    dataset: str  # registry key
    accuracy: float  # 0..1
    stamp: float  # when the result was produced
    source: Path
    per_class: dict[str, ClassScore] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # said only if this record makes it into the table
    model_id: str = ""  # normalised identity: Hub id (+ revision) or resolved local path, else the display name
    protocol: dict = field(default_factory=dict)  # everything that changes the questions or the answering
    n: int | None = None  # samples scored
    n_expected: int | None = None  # samples in the split (more than n: a --limit or crashed run)
    unparseable_rate: float | None = None
    stderr: float | None = None  # of the accuracy (lmms-eval's own when it reports one, else binomial)
    versions: dict = field(default_factory=dict)
    paper_row: str | None = None  # the paper's Table 2 row this model is

    @property
    def partial(self) -> bool:
        return self.n is not None and self.n_expected is not None and self.n < self.n_expected

    @property
    def row_key(self) -> tuple[str, str, str]:
        return (self.model_id or self.model, self.toolkit, json.dumps(self.protocol, sort_keys=True))

    @property
    def row_name(self) -> str:
        label = protocol_label(self.kind, self.protocol)
        return f"{self.model} [{label}]" if label else self.model

    def interval(self) -> tuple[float, float] | None:
        """The 95 % Wilson interval of the accuracy, when the sample count is known."""
        if not self.n:
            return None
        z, p, n = 1.959964, self.accuracy, self.n
        centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
        return max(0.0, centre - half), min(1.0, centre + half)


# Protocol fields and their paper defaults; a row's label names only what differs.
DEFAULT_PROTOCOL = {"mode": "generate", "n_options": 26, "negatives": "random", "seed": 0, "class_names": "paper",
                    "prompt": "paper"}


def protocol_label(kind: str, protocol: dict) -> str:
    """The compact protocol shown in a row name: ``score``, ``4 options``, ``clip mcq, single template``, ..."""
    if kind == CLIP:
        parts = [f"{protocol.get('toolkit_label', 'clip')} {protocol.get('mode') or 'mcq'}"]
        if protocol.get("templates") == "single":
            parts.append("single template")
    else:
        parts = [protocol["mode"]] if protocol.get("mode") not in (None, "generate") else []
        if protocol.get("mode") == "loglik":
            parts += [f"{protocol.get('loglik_norm', 'sum')}"] + ([f"cfg {protocol['cfg_weight']}"] if protocol.get("cfg_weight") else [])
    if protocol.get("seed") not in (None, 0):
        parts.append(f"seed {protocol['seed']}")
    if protocol.get("n_options") not in (None, MAX_OPTIONS):
        parts.append(f"{protocol['n_options']} options")
    if protocol.get("negatives") not in (None, "random"):
        parts.append(f"{protocol['negatives']} negatives")
    if protocol.get("class_names") not in (None, DEFAULT_NAMES):
        parts.append(f"{protocol['class_names']} names")
    if protocol.get("prompt") not in (None, "paper"):
        parts.append(f"prompt {protocol['prompt']}")
    return ", ".join(parts)


@dataclass
class ModelResult:
    """A table row: one model under one protocol, one record per dataset."""

    name: str
    kind: str
    toolkit: str
    datasets: dict[str, Record]
    conflicts: dict[str, list[Record]] = field(default_factory=dict)  # cells with two different complete results

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
    """A registry key from a key, a paper abbreviation, a VLMEvalKit name or a CLIP_benchmark name."""
    return dataset_for_name(text)


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
    """Row name of an lmms-eval run: ``<model> (<pretrained>)``; API models by ``model_version`` / ``model``."""
    config = results.get("config") or {}
    model = config.get("model") or results.get("model_name") or "unknown model"
    args = _model_args(config.get("model_args") or "")
    name = args.get("pretrained") or args.get("model_version") or args.get("model") or args.get("model_id_name")
    return f"{model} ({short_id(name)})" if name else str(model)


def model_identity(model: str, args: dict[str, str]) -> str:
    """One identity per checkpoint: a resolved local path, or a Hub id with its revision (relative, absolute and
    ``~`` paths to one folder are one model)."""
    name = args.get("pretrained") or args.get("model_version") or args.get("model") or args.get("model_id_name") or ""
    path = Path(name.removeprefix("local-dir:")).expanduser()
    if name and (path.exists() or name.startswith(("/", "./", "../", "~"))):
        name = str(path.resolve())
    revision = args.get("revision")
    return f"{model}:{name}" + (f"@{revision}" if revision else "")


# lmms-eval model -> the model arg that selects the answer mode (clsbench's wrappers); others always generate.
_MODE_ARG = {"clsbench_hf": "mode"}
_DEFAULT_PROMPT = {"pre_prompt": "", "instruction": "Answer with the option's letter from the given choices directly.",
                   "post_prompt": ""}


def lmms_protocol(results: dict, task: str, suffix: str) -> dict:
    """The protocol of one task in an lmms-eval results file: answer mode, option count, negatives, names, prompt."""
    from .lmms_tasks import MCQ_VARIANTS

    config = results.get("config") or {}
    args = _model_args(config.get("model_args") or "")
    variant = MCQ_VARIANTS[suffix]
    protocol = {**DEFAULT_PROTOCOL, "mode": args.get(_MODE_ARG.get(str(config.get("model")), ""), "generate"),
                "n_options": variant.n_options, "negatives": variant.negatives, "class_names": variant.name_set}
    if protocol["mode"] == "loglik":
        protocol.update(loglik_norm=args.get("loglik_norm", "sum"), cfg_weight=float(args.get("cfg_weight", 0) or 0))
    task_config = (results.get("configs") or {}).get(task) or {}
    kwargs = task_config.get("lmms_eval_specific_kwargs")
    if isinstance(kwargs, dict):
        prompt = kwargs.get("default", kwargs)
        if isinstance(prompt, dict) and {k: prompt.get(k, "") for k in _DEFAULT_PROMPT} != _DEFAULT_PROMPT:
            digest = hashlib.sha256(json.dumps(prompt, sort_keys=True).encode()).hexdigest()[:8]
            protocol["prompt"] = f"custom-{digest}"
    seed = (task_config.get("metadata") or {}).get("seed")
    if isinstance(seed, int):
        protocol["seed"] = seed
    return protocol


def _versions_near(path: Path) -> dict:
    """The ``clsbench_versions.json`` of the output folder holding ``path`` (up to three folders up)."""
    for folder in list(path.parents)[:3]:
        found = _read_json(folder / VERSIONS_FILE) if (folder / VERSIONS_FILE).is_file() else None
        if isinstance(found, dict):
            return {"clsbench": found.get("clsbench"), **(found.get("packages") or {})}
    return {}


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
    from .lmms_tasks import MCQ_VARIANTS

    if not isinstance(results, dict) or not isinstance(results.get("results", {}), dict):
        raise TypeError("expected an object with a 'results' object")
    prefix = path.name.removesuffix("_results.json")
    model, stamp = lmms_model_name(results), _stamp(results.get("date") or prefix, LMMS_DATE, path)
    config = results.get("config") or {}
    args = _model_args(config.get("model_args") or "")
    identity = model_identity(str(config.get("model") or model), args)
    checkpoint = args.get("pretrained") or args.get("model_version") or args.get("model")
    versions = {**_versions_near(path), **{k: results[k] for k in ("lmms_eval_version", "transformers_version")
                                            if isinstance(results.get(k), str)}}
    if args.get("revision"):
        versions["model_revision"] = args["revision"]
    for suffix in MCQ_VARIANTS:
        for key, accuracy in dataset_accuracies(results, suffix).items():
            task = task_name(key, suffix)
            metrics = results["results"][task]
            counts = (results.get("n-samples") or {}).get(task) or {}
            samples = path.with_name(f"{prefix}_samples_{task}.jsonl")
            per_class = _lmms_per_class(samples, key, names) if samples.is_file() and not suffix else {}
            stderr = metrics.get("accuracy_stderr,none")
            yield Record(
                model, MLLM, "lmms-eval", key, accuracy, stamp, path, per_class, model_id=identity,
                protocol=lmms_protocol(results, task, suffix), n=_int(counts.get("effective")),
                n_expected=_int(counts.get("original")), unparseable_rate=_float(metrics.get("unparseable_rate,none")),
                stderr=_float(stderr), versions=versions, paper_row=mllm_row(checkpoint),
            )


def _int(value) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _float(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def _lmms_per_class(samples: Path, key: str, names: ClassNames) -> dict[str, ClassScore]:
    records = (sample_decision(entry) for entry in _read_jsonl(samples))
    return tally(
        (names.label(key, int(record["label"])), record["correct"])
        for record in records
        if isinstance(record, dict) and record.get("label") is not None
    )


def clip_model_name(result: dict) -> str:
    """Display name of a CLIP baseline, e.g. ``ViT-L-14 (openai)`` (the row name adds the protocol)."""
    model = short_id(str(result.get("model") or "unknown CLIP"))
    pretrained = result.get("pretrained")
    return f"{model} ({short_id(str(pretrained))})" if pretrained else model


def clip_protocol(result: dict) -> dict:
    """Everything in a CLIP result that changes the predictions: mode, prompts, seed, options, negatives, names."""
    return {"mode": result.get("mode") or "mcq", "templates": result.get("templates") or "ensemble",
            "seed": result.get("seed") or 0, "n_options": result.get("n_options"),
            "negatives": result.get("negatives") or "random", "class_names": result.get("class_names") or DEFAULT_NAMES}


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
        n = _int(result.get("n_samples"))
        identity = f"open_clip:{result.get('model')}@{result.get('pretrained')}"
        yield Record(clip_model_name(result), CLIP, "clip", key, float(result["accuracy"]), path.stat().st_mtime, path,
                     per_class, model_id=identity, protocol=clip_protocol(result), n=n, n_expected=n,
                     versions=_versions_near(path), paper_row=result.get("paper_row"))


def read_clip_benchmark(root: Path, notes: list[str]) -> Iterator[Record]:
    """CLIP_benchmark's own result JSONs (``clip_benchmark eval --output``), as full-mode CLIP rows."""
    for path in sorted(root.rglob("*.json")):
        result = _read_json(path)
        if not isinstance(result, dict) or result.get("task") != "zeroshot_classification":
            continue
        metrics = result.get("metrics") or {}
        key = dataset_key(result.get("dataset"))
        if key is None or not isinstance(metrics.get("acc1"), (int, float)):
            notes.append(f"{path}: CLIP_benchmark result skipped (dataset {result.get('dataset')!r} is none of ours, "
                         "or no acc1)")
            continue
        model = f"{result.get('model')} ({result.get('pretrained')})" if result.get("pretrained") else str(result.get("model"))
        protocol = {"toolkit_label": "CLIP_benchmark", "mode": "full", "templates": "CLIP_benchmark",
                    "language": result.get("language") or "en"}
        yield Record(model, CLIP, "clip_benchmark", key, float(metrics["acc1"]), path.stat().st_mtime, path,
                     model_id=f"open_clip:{result.get('model')}@{result.get('pretrained')}", protocol=protocol)


def read_vlmeval(root: Path) -> Iterator[Record]:
    """Every ClsBench dataset in a VLMEvalKit work dir (symlinked copies in the model folder count once)."""
    groups: dict[tuple[Path, str, str], dict[str, Path]] = defaultdict(dict)
    current: set[tuple[Path, str, str]] = set()  # run.py links its newest run's files into the model folder
    for path in root.rglob("*_*"):
        match = VLMEVAL_FILE.fullmatch(path.name)
        key = match and (match["key"] or match["task_key"])
        if key in DATASETS and path.is_file():
            real = path.resolve()
            groups[(real.parent, match["model"], key)][match["kind"]] = real
            if not VLMEVAL_RUN_DIR.fullmatch(path.parent.name):
                current.add((real.parent, match["model"], key))
    linked = {(model, key) for _, model, key in current}
    for (folder, model, key), files in sorted(groups.items()):
        if (model, key) in linked and (folder, model, key) not in current:
            continue  # an older run VLMEvalKit itself no longer points at
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
    n = sum(s.n or 0 for s in per_class.values()) or None
    return Record(model, MLLM, "vlmeval", key, value, stamp, acc_file or predictions, per_class, notes,
                  model_id=f"vlmeval:{model}", n=n, n_expected=n, paper_row=mllm_row(model),
                  versions=_versions_near(acc_file or predictions))


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


def collect(
    runs: Iterable[str | Path], data_dir: str | Path | None, notes: list[str], *, reference: str | None = None
) -> list[ModelResult]:
    """All rows found under the given folders (or leaderboard files): one per model and protocol."""
    names = ClassNames(data_dir, notes)
    records: list[Record] = []
    for run in map(Path, runs):
        if run.is_file() and run.suffix == ".jsonl":
            records += read_leaderboard(run, notes)
            continue
        if not run.is_dir():
            raise ReportError(f"{run}: not a folder or leaderboard file (pass lmms-eval --output_path, VLMEvalKit "
                              "--work-dir, clsbench clip or CLIP_benchmark output folders, or a results.jsonl)")
        found = [*read_lmms(run, names, notes), *read_vlmeval(run), *read_clip(run, names, notes),
                 *read_clip_benchmark(run, notes)]
        if not found:
            notes.append(f"{run}: no lmms-eval, VLMEvalKit, clsbench clip or CLIP_benchmark results for our datasets")
        records += found
    if reference == "paper":
        records += paper_records()
    elif reference is not None:
        raise ReportError(f"--reference {reference}: the only reference is 'paper' (Table 2 of arXiv 2412.16418)")
    models = _merge(records, notes)
    notes += [note for model in models for record in model.records() for note in record.notes]
    return models


def paper_records() -> list[Record]:
    """Table 2's rows as reference rows (P1, 26-option MCQ accuracy)."""
    source = Path("clsbench/tasks/data/paper/table2.csv")
    return [
        Record(f"{name} (paper)", REFERENCE, "paper", key, accuracy, 0.0, source, model_id=f"paper:{name}",
               protocol={"reference": "P1 Table 2"}, paper_row=name)
        for name, row in table2().items() for key, accuracy in row["accuracy"].items()
    ]


def _merge(records: list[Record], notes: list[str]) -> list[ModelResult]:
    """Rows by (model identity, toolkit, protocol); per cell a complete result wins over a partial one, and two
    complete results that differ are a reported conflict, never resolved by file time."""
    by_row: dict[tuple, list[Record]] = defaultdict(list)
    for record in records:
        by_row[record.row_key].append(record)
    identities: dict[str, set[str]] = defaultdict(set)  # row name -> model identities using it
    toolkits: dict[tuple[str, str], set[str]] = defaultdict(set)  # (row name, identity) -> toolkits
    for model_id, toolkit, _ in by_row:
        first = by_row[(model_id, toolkit, _)][0]
        identities[first.row_name].add(model_id)
        toolkits[(first.row_name, model_id)].add(toolkit)
    models = []
    for key, rows in by_row.items():
        first = rows[0]
        name = first.row_name
        if len(identities[first.row_name]) > 1:  # two checkpoints with one short name: tell them apart
            name += f" #{hashlib.sha256(key[0].encode()).hexdigest()[:4]}"
        if len(toolkits[(first.row_name, key[0])]) > 1:  # one model read from two toolkits' outputs
            name += f" [{first.toolkit}]"
        model = ModelResult(name, first.kind, first.toolkit, {})
        for dataset in DATASETS:
            cell = [r for r in rows if r.dataset == dataset]
            complete = [r for r in cell if not r.partial]
            if len({round(r.accuracy, 9) for r in complete}) > 1:
                model.conflicts[dataset] = sorted(complete, key=lambda r: r.stamp)
                notes.append(f"conflict: {name} on {DATASETS[dataset].abbreviation} has different complete results "
                             + "; ".join(f"{100 * r.accuracy:.1f} in {r.source}" for r in model.conflicts[dataset])
                             + " (the cell is left empty: remove the stale file or rerun)")
            elif complete or cell:
                model.datasets[dataset] = max(complete or cell, key=lambda r: r.stamp)
        models.append(model)
    order = list(table2())  # the paper's rows in Table 2's order (CLIP-style first), ours by name
    return sorted(models, key=lambda m: (KIND_ORDER.index(m.kind),
                                         order.index(m.name.removesuffix(" (paper)")) if m.kind == REFERENCE else 0,
                                         m.name.casefold()))


def missing_line(models: list[ModelResult]) -> str:
    """One line naming each row's missing, partial and conflicting datasets (by paper abbreviation)."""
    gaps = []
    for model in models:
        parts = [DATASETS[k].abbreviation for k in model.missing if k not in model.conflicts]
        parts += [f"{DATASETS[k].abbreviation} partial (n={r.n} of {r.n_expected})"
                  for k, r in model.datasets.items() if r.partial]
        parts += [f"{DATASETS[k].abbreviation} conflict" for k in model.conflicts]
        if parts:
            gaps.append(f"{model.name}: {', '.join(parts)}")
    return "Missing datasets: " + ("; ".join(gaps) if gaps else "none (every model has all ten, complete)")


# ---------------------------------------------------------------- the table


def table_rows(models: list[ModelResult], allow_partial: bool = False) -> dict[str, dict[str, float | None]]:
    """Percent per column; group averages leave out partial cells unless ``allow_partial``."""
    rows = {}
    for model in models:
        cells = table_row({key: record.accuracy for key, record in model.datasets.items()})
        complete = table_row({key: r.accuracy for key, r in model.datasets.items() if allow_partial or not r.partial})
        rows[model.name] = {**cells, **{column: complete[column] for column in GROUP_COLUMNS.values()}}
    return rows


def cell_text(model: ModelResult, column: str, rows: dict[str, dict[str, float | None]], show: str | None,
              missing: str) -> str:
    """A cell: the percentage, with ``(n=...)`` for a partial cell, and on request its n or 95 % interval."""
    value = rows[model.name].get(column)
    if value is None:
        return missing
    text = f"{value:.1f}"
    key = next((k for k, spec in DATASETS.items() if spec.abbreviation == column), None)
    record = model.datasets.get(key) if key else None
    if record is None:
        return text
    if record.partial:
        text += f" (n={record.n}/{record.n_expected})"
    elif show == "n" and record.n:
        text += f" (n={record.n})"
    if show == "ci" and record.interval():
        low, high = record.interval()
        text += f" [{100 * low:.1f}, {100 * high:.1f}]"
    return text


def _cell(value: float | None, missing: str) -> str:
    return missing if value is None else f"{value:.1f}"


def table_csv(models: list[ModelResult], rows: dict[str, dict[str, float | None]], show: str | None = None) -> str:
    lines = [["Model", "Type", "Toolkit", *table_columns()]]
    lines += [[m.name, m.kind, m.toolkit, *(cell_text(m, c, rows, show, "") for c in table_columns())] for m in models]
    return _csv_text(lines)


def _csv_text(lines: Iterable[Iterable[object]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(lines)
    return buffer.getvalue()


_LATEX_SPECIAL = {c: "\\" + c for c in "&%$#_{}"}
_LATEX_SPECIAL |= {"~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(char, char) for char in text)


def table_latex(models: list[ModelResult], rows: dict[str, dict[str, float | None]], show: str | None = None) -> str:
    """A booktabs tabular (needs ``\\usepackage{booktabs}``), reference rows, CLIP-style models and MLLMs in blocks."""
    columns = table_columns()
    lines = [r"\begin{tabular}{l" + "r" * len(columns) + "}", r"\toprule",
             "Model & " + " & ".join(latex_escape(c) for c in columns) + r" \\"]
    for kind in KIND_ORDER:
        block = [m for m in models if m.kind == kind]
        if block:
            label = {CLIP: "CLIP-style models", MLLM: "MLLMs", REFERENCE: "The paper (Table 2)"}[kind]
            lines += [r"\midrule", rf"\multicolumn{{{len(columns) + 1}}}{{l}}{{\textit{{{label}}}}} \\"]
            lines += [latex_escape(m.name) + " & " + " & ".join(latex_escape(cell_text(m, c, rows, show, "--"))
                                                                 for c in columns) + r" \\" for m in block]
    return "\n".join(lines + [r"\bottomrule", r"\end{tabular}"]) + "\n"


def table_markdown(models: list[ModelResult], rows: dict[str, dict[str, float | None]], show: str | None = None) -> str:
    """The paper's table in Markdown; missing cells show as '—', never as zero."""
    columns = table_columns()
    lines = ["| Model | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for model in models:
        lines.append(f"| {model.name.replace('|', chr(92) + '|')} | "
                     + " | ".join(cell_text(model, c, rows, show, "—") for c in columns) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------- the leaderboard file and the paper


LEADERBOARD_FORMAT = "clsbench-leaderboard-v1"


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
            stderr = record.stderr if record.stderr is not None else (
                math.sqrt(record.accuracy * (1 - record.accuracy) / record.n) if record.n else None)
            lines.append(json.dumps({
                "format": LEADERBOARD_FORMAT, "row": model.name, "model": record.model, "model_id": record.model_id,
                "kind": record.kind, "toolkit": record.toolkit, "protocol": record.protocol, "dataset": key,
                "accuracy": record.accuracy, "n": record.n, "n_expected": record.n_expected, "partial": record.partial,
                "conflict": conflict, "stderr": stderr, "ci95": list(interval) if interval else None,
                "unparseable_rate": record.unparseable_rate, "versions": record.versions,
                "paper_row": record.paper_row, "stamp": record.stamp, "source": str(record.source),
            }, ensure_ascii=False, sort_keys=True))
    return "\n".join(lines) + ("\n" if lines else "")


def read_leaderboard(path: Path, notes: list[str]) -> list[Record]:
    """Records back from a ``results.jsonl`` written by :func:`leaderboard_lines` (so report -> file -> report)."""
    records = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        try:
            entry = json.loads(line)
            if entry.get("format") != LEADERBOARD_FORMAT:
                raise ValueError(f"format is {entry.get('format')!r}")
            records.append(Record(
                entry["model"], entry["kind"], entry["toolkit"], entry["dataset"], float(entry["accuracy"]),
                float(entry.get("stamp") or 0), Path(entry["source"]), model_id=entry["model_id"],
                protocol=entry["protocol"], n=entry.get("n"), n_expected=entry.get("n_expected"),
                unparseable_rate=entry.get("unparseable_rate"), stderr=entry.get("stderr"),
                versions=entry.get("versions") or {}, paper_row=entry.get("paper_row"),
            ))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            notes.append(f"{path}:{number}: skipped, not a leaderboard record ({error})")
    return records


def delta_markdown(models: list[ModelResult], rows: dict[str, dict[str, float | None]]) -> str:
    """Each row matched to a paper row, minus the paper's number (points), per column."""
    paper = {m.datasets[next(iter(m.datasets))].paper_row: m for m in models if m.kind == REFERENCE and m.datasets}
    columns = table_columns()
    lines = ["| Model | paper row | " + " | ".join(f"Δ {c}" for c in columns) + " |", "|---" * (len(columns) + 2) + "|"]
    for model in models:
        if model.kind == REFERENCE:
            continue
        row = next((r.paper_row for r in model.datasets.values() if r.paper_row), None)
        if row not in paper:
            continue
        ours, theirs = rows[model.name], rows[paper[row].name]
        cells = ["—" if ours[c] is None or theirs[c] is None else f"{ours[c] - theirs[c]:+.1f}" for c in columns]
        lines.append(f"| {model.name} | {row} | " + " | ".join(cells) + " |")
    if len(lines) == 2:
        lines.append("| (no row matched a paper model: see README 'Reports' for the mapping) |" + " |" * (len(columns) + 1))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- figures


def _figure_style() -> dict:
    """Paper-size text: 7 pt fonts, reproducible SVG ids."""
    return {"font.size": 7, "axes.titlesize": 7, "legend.fontsize": 6, "svg.hashsalt": "clsbench", "svg.fonttype": "none"}


def _series_styles(models: list[ModelResult]) -> list[dict]:
    """One style per row, the same in every figure: MLLMs in solid colours, CLIP-style models in hatched
    greys, the paper's reference rows as outlines, so the kinds read apart in print."""
    from matplotlib import colormaps

    colours = colormaps["tab10"].colors
    greys = ("0.45", "0.65", "0.82", "0.3", "0.55", "0.92")
    styles, counts = [], Counter()
    for model in models:
        index = counts[model.kind]
        counts[model.kind] += 1
        if model.kind == CLIP:
            styles.append({"color": greys[index % len(greys)], "hatch": "////", "edgecolor": "0.15", "linewidth": 0.4})
        elif model.kind == REFERENCE:
            outline = colormaps["tab20"].colors[index % 20]
            styles.append({"color": "white", "edgecolor": outline, "linewidth": 0.8, "linestyle": "--"})
        else:
            styles.append({"color": colours[index % len(colours)], "edgecolor": "none"})
    return styles


def chance_levels() -> list[float]:
    """Chance accuracy (%) per dataset column: one over the options shown (26, or the class count if fewer)."""
    levels = []
    for spec in DATASETS.values():
        classes = len(spec.classnames) if spec.classnames else MAX_OPTIONS
        levels.append(100 / min(MAX_OPTIONS, classes))
    return levels


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
            zeros = [x for x, v in present if v == 0]  # a 0.0 cell is a result, not a gap: mark it on the axis
            axes.plot(zeros, [0.8] * len(zeros), linestyle="", marker="_", markersize=6, markeredgewidth=1.5,
                      color=style.get("edgecolor") if style.get("color") == "white" else style["color"])
            absent = [x + offset for x, v in enumerate(values) if v is None]
            axes.plot(absent, [1.5] * len(absent), linestyle="", marker="x", markersize=3, color="0.3")
        for x, level in enumerate(chance_levels()):  # chance: 1/26, and 1/10 for Logo
            axes.plot([x - 0.45, x + 0.45], [level, level], color="0.25", linewidth=0.6, linestyle=(0, (1, 1)),
                      label="chance" if x == 0 else None)
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
        styles = dict(zip((m.name for m in models), _series_styles(models)))
        for number, (model, x, y) in enumerate(points, start=1):
            style = styles[model.name]
            colour = style["edgecolor"] if style.get("color") == "white" else style["color"]  # the bars' colour
            marker = {CLIP: "s", REFERENCE: "D"}.get(model.kind, "o")
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
    reference: str | None = None,
    show: str | None = None,
    allow_partial: bool = False,
) -> str:
    """Write every report file under ``out`` and return the Markdown table.

    Args:
        runs: result folders (lmms-eval, VLMEvalKit, clsbench clip, CLIP_benchmark) or ``results.jsonl`` files.
        out: the report folder.
        reference: ``"paper"`` adds Table 2's rows and ``delta.md`` (each matched row minus the paper).
        show: ``"n"`` or ``"ci"`` adds each cell's sample count or 95 % interval to the tables.
        allow_partial: count partial cells (a ``--limit`` or crashed run) in the group averages.
        echo: receives the table, the missing-datasets line and any notes (default print; None: quiet).

    Returns:
        The Markdown table. Every input is checked before anything is written, so a bad option leaves no
        half report.
    """
    if show not in (None, "n", "ci"):
        raise ReportError(f"--show {show}: choose n or ci")
    notes: list[str] = []
    chosen_subset = load_subset(subset) if subset else None
    counts = load_frequencies(Path(frequencies)) if frequencies else None
    models = report_models(runs, data_dir, rename or {}, notes, reference=reference)
    targets = subset_targets(chosen_subset, ClassNames(data_dir, notes), notes) if chosen_subset else {}
    if chosen_subset and not targets:
        raise ReportError(f"--subset {subset}: no listed class is a class of any dataset")
    rows = table_rows(models, allow_partial)
    table, missing = table_markdown(models, rows, show), missing_line(models)
    files = {"table.csv": table_csv(models, rows, show), "table.tex": table_latex(models, rows, show),
             "results.jsonl": leaderboard_lines(models),
             "per_class.csv": per_class_csv(models), "worst_classes.md": worst_markdown(models, worst)}
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
        subset_lines = ("", f"Subset {chosen_subset.name} ({chosen_subset.inside} / {chosen_subset.outside}):",
                        files["subset.md"]) if chosen_subset else ()
        for line in (table, *subset_lines, "", missing, *(f"note: {n}" for n in notes),
                     f"wrote {len(written)} files to {out}"):
            echo(line)
    return table


def report_models(
    runs: Iterable[str | Path], data_dir: str | Path | None, rename: dict[str, str], notes: list[str],
    reference: str | None = None,
) -> list[ModelResult]:
    """The table's rows, renamed; no results at all is an error that says where it looked."""
    runs = list(runs)
    models = collect(runs, data_dir, notes, reference=reference)
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
        [Path(run) for run in args.runs], Path(args.output_dir), data_dir=args.data_dir, worst=args.worst, subset=args.subset,
        frequencies=args.frequencies, scatter=args.scatter, figures=not args.no_figures, rename=dict(args.rename),
        reference=args.reference, show=args.show, allow_partial=args.allow_partial,
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
    p.add_argument("--output-dir", required=True, help="folder for table.md/.csv/.tex, results.jsonl, bars.png/.svg, ...")
    p.add_argument("--data-dir", help="root of prepared datasets, for gldv2's class names (else class indices)")
    p.add_argument("--worst", type=int, default=10, metavar="N", help="worst classes per model and dataset (default 10)")
    p.add_argument("--subset", metavar="food|FILE", help="subset vs rest accuracy (Table 9's F / NF) for a class list")
    p.add_argument("--frequencies", metavar="FILE", help="class name -> count (CSV or JSON): Spearman rho vs per-class accuracy")
    p.add_argument("--scatter", action="store_true", help="also scatter.png/.svg: general vs fine-grained average")
    p.add_argument("--no-figures", action="store_true", help="skip the figures")
    p.add_argument("--rename", type=_rename_pair, action="append", default=[], metavar="OLD=NEW", help="rename a row")
    p.add_argument("--reference", choices=["paper"], help="add the paper's Table 2 rows and delta.md (ours minus the paper)")
    p.add_argument("--show", choices=["n", "ci"], help="add each cell's sample count (n) or 95%% interval (ci)")
    p.add_argument("--allow-partial", action="store_true",
                   help="count partial cells (a --limit or crashed run) in the group averages")
    p.set_defaults(run=run_report_command)


