"""Reading results back from every toolkit: lmms-eval folders, VLMEvalKit work dirs, ``clsbench clip`` runs,
CLIP_benchmark JSONs and earlier reports' ``results.jsonl``; the newest complete result per cell wins."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

from clsbench.tasks.protocol.catalog import (
    VLMEVAL_DATASETS,
    checkpoint_slug,
    parse_vlmeval_model_name,
    task_name,
    vlmeval_model_name,
)
from clsbench.tasks.protocol.draws import LETTERS
from clsbench.tasks.protocol.paper import mllm_row, table2
from clsbench.tasks.protocol.parsing import parse_answer
from clsbench.tasks.protocol.registry import DATASETS, DEFAULT_NAMES
from clsbench.tasks.report.lmms_results import dataset_accuracies, sample_decision
from clsbench.tasks.report.records import (
    CLIP,
    DEFAULT_PROTOCOL,
    KIND_ORDER,
    LEADERBOARD_FORMAT,
    MLLM,
    REFERENCE,
    ClassNames,
    ClassScore,
    ModelResult,
    Record,
    ReportError,
    dataset_key,
    is_number,
    tally,
)
from clsbench.tasks.runtime.environment import VERSIONS_FILE

CLIP_FORMAT = "clsbench-clip-v1"
CLIP_EXPORT_MARK = "clsbench clip"  # ``written_by`` of clsbench clip's copies in CLIP_benchmark's format


LMMS_DATE = "%Y%m%d_%H%M%S"


VLMEVAL_RUN_DIR = re.compile(r"T(\d{8}-\d{6})")


# The files VLMEvalKit's run.py (commit e8e78f0) writes per model and dataset: predictions
# ``<work_dir>/<model>/T<%Y%m%d-%H%M%S>/<model>_<data>.xlsx|.tsv`` (vlmeval/smp/file.py:208-219 get_pred_file_path,
# the run folder from build_eval_id at vlmeval/smp/file.py:453-454 and run.py:669), scores ``<model>_<data>_acc.csv``
# beside them (our ClsbenchMCQDataset.evaluate, via get_intermediate_file_path at vlmeval/smp/file.py:687), and
# links to the newest run's files in ``<work_dir>/<model>/`` (run.py:995-1010). ``<data>`` is any of our VLMEvalKit
# names (the catalog's VLMEVAL_DATASETS, with the class-name set: ClsBench_imagenet, ClsBench_imagenet_openai) or
# cls_<key>_mcq.
VLMEVAL_FILE = re.compile(
    r"(?P<model>.+)_(?:(?P<data>"
    + "|".join(re.escape(name) for name in sorted(VLMEVAL_DATASETS, key=len, reverse=True))
    + r")|cls_(?P<task_key>[a-z0-9]+)_mcq)(?P<kind>_acc\.csv|\.xlsx|\.tsv)"
)


def _read_json(path: Path, notes: list[str] | None = None) -> object | None:
    """The file's JSON, or None; with ``notes``, an unreadable file is named there (it is skipped, not fatal)."""
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as error:
        if notes is not None:
            notes.append(
                f"{path}: skipped, not readable JSON ({type(error).__name__}: {str(error)[:80]}); "
                "a run still writing or killed mid-write?"
            )
        return None


def _read_jsonl(path: Path, notes: list[str] | None = None) -> Iterator[dict]:
    """The records of a JSONL file; a torn line (a run still writing, or killed) is skipped and, with ``notes``,
    named there by file and line, so what is computed from the rest says it is computed from part of the file."""
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            try:
                record = json.loads(line)
            except ValueError as error:
                if notes is not None and line.strip():
                    notes.append(f"{path}, line {number}: not readable JSON ({error}); a run killed mid-write?")
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
# clsbench_vllm takes the same three modes as clsbench_hf (a loglik run labelled generate was clsbench 0.3's bug).
_MODE_ARG = {"clsbench_hf": "mode", "clsbench_vllm": "mode"}
LMMS_ENGINE = "clsbench_hf"  # the lmms-eval model that runs the engine clsbench's VLMEvalKit models wrap


_DEFAULT_PROMPT = {
    "pre_prompt": "",
    "instruction": "Answer with the option's letter from the given choices directly.",
    "post_prompt": "",
}


def lmms_protocol(results: dict, task: str, suffix: str) -> dict:
    """The protocol of one task in an lmms-eval results file: answer mode, option count, negatives, names, prompt."""
    from clsbench.tasks.protocol.catalog import MCQ_VARIANTS

    config = results.get("config") or {}
    args = _model_args(config.get("model_args") or "")
    variant = MCQ_VARIANTS[suffix]
    protocol = {
        **DEFAULT_PROTOCOL,
        "mode": args.get(_MODE_ARG.get(str(config.get("model")), ""), "generate"),
        "n_options": variant.n_options,
        "negatives": variant.negatives,
        "class_names": variant.name_set,
    }
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
            return _versions_of(found)
    return {}


def _versions_of(record: dict) -> dict:
    """A versions record (``clsbench_versions.json`` or a results file's ``clsbench_versions``), flat."""
    return {"clsbench": record.get("clsbench"), **(record.get("packages") or {})} if record else {}


def read_lmms(root: Path, names: ClassNames, notes: list[str]) -> Iterator[Record]:
    """Every clsbench task in every lmms-eval results file under ``root``; malformed files are named in ``notes``."""
    for path in sorted(root.rglob("*_results.json")):
        results = _read_json(path, notes)
        if results is None:
            continue
        try:
            found = list(_lmms_records(path, results, names, notes))
        except (AttributeError, TypeError, KeyError, ValueError) as error:
            notes.append(
                f"{path}: skipped, not an lmms-eval results file of the expected shape "
                f"({type(error).__name__}: {error})"
            )
            continue
        yield from found


def _lmms_records(path: Path, results: object, names: ClassNames, notes: list[str]) -> Iterator[Record]:
    from clsbench.tasks.protocol.catalog import MCQ_VARIANTS

    if not isinstance(results, dict) or not isinstance(results.get("results", {}), dict):
        raise TypeError("expected an object with a 'results' object")
    prefix = path.name.removesuffix("_results.json")
    model, stamp = lmms_model_name(results), _stamp(results.get("date") or prefix, LMMS_DATE, path)
    config = results.get("config") or {}
    args = _model_args(config.get("model_args") or "")
    identity = model_identity(str(config.get("model") or model), args)
    checkpoint = args.get("pretrained") or args.get("model_version") or args.get("model")
    recorded = results.get("clsbench_versions")  # the run's own record (clsbench's lmms-eval plugin writes it)
    versions = {
        **_versions_near(path),
        **_versions_of(recorded if isinstance(recorded, dict) else {}),
        # lmms-eval's own field is the git state of the folder it ran in: kept only when it says something
        **{
            k: results[k]
            for k in ("lmms_eval_version", "transformers_version")
            if isinstance(results.get(k), str) and results[k] != "unknown@unknown"
        },
    }
    if args.get("revision"):
        versions["model_revision"] = args["revision"]
    for suffix in MCQ_VARIANTS:
        for key, accuracy in dataset_accuracies(results, suffix).items():
            task = task_name(key, suffix)
            if not 0 <= accuracy <= 1:
                raise ValueError(f"{task} accuracy {accuracy} is outside 0..1")
            metrics = results["results"][task]
            counts = (results.get("n-samples") or {}).get(task) or {}
            samples = path.with_name(f"{prefix}_samples_{task}.jsonl")
            per_class = (
                _lmms_per_class(samples, key, names, notes, _int(counts.get("effective")))
                if samples.is_file() and not suffix
                else {}
            )
            stderr = metrics.get("accuracy_stderr,none")
            yield Record(
                model,
                MLLM,
                "lmms-eval",
                key,
                accuracy,
                stamp,
                path,
                per_class,
                model_id=identity,
                protocol=lmms_protocol(results, task, suffix),
                n=_int(counts.get("effective")),
                n_expected=_int(counts.get("original")),
                unparseable_rate=_float(metrics.get("unparseable_rate,none")),
                stderr=_float(stderr),
                versions=versions,
                paper_row=mllm_row(checkpoint),
            )


def _int(value) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _float(value) -> float | None:
    return (
        float(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        else None
    )


def _lmms_per_class(
    samples: Path, key: str, names: ClassNames, notes: list[str], expected: int | None
) -> dict[str, ClassScore]:
    """Per-class scores from a samples file; none (and a note) when it holds fewer samples than the results count,
    rather than per-class numbers from part of the run beside a table cell that counts all of it."""
    by_doc = {entry.get("doc_id", index): entry for index, entry in enumerate(_read_jsonl(samples, notes))}
    if expected is not None and len(by_doc) != expected:
        notes.append(
            f"{samples}: {len(by_doc)} readable samples, the results file counts {expected}: per-class numbers for "
            f"{key} left out (rerun the task with --log_samples to restore them)"
        )
        return {}
    records = (sample_decision(entry) for entry in by_doc.values())
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
    return {
        "mode": result.get("mode") or "mcq",
        "templates": result.get("templates") or "ensemble",
        "seed": result.get("seed") or 0,
        "n_options": result.get("n_options"),
        "negatives": result.get("negatives") or "random",
        "class_names": result.get("class_names") or DEFAULT_NAMES,
    }


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
        if key is None or not isinstance(result.get("accuracy"), (int, float)) or not 0 <= result["accuracy"] <= 1:
            notes.append(f"{path}: skipped (unknown dataset {result.get('dataset')!r}, or no accuracy in 0..1)")
            continue
        predictions = path.with_name(f"{path.stem}.predictions.jsonl")
        if predictions.is_file():
            rows = {row.get("sample_key"): row for row in _read_jsonl(predictions, notes)}  # a key twice counts once
            good = {k: row for k, row in rows.items() if isinstance(row.get("label"), int) and "correct" in row}
            if len(good) < len(rows):
                notes.append(f"{predictions}: {len(rows) - len(good)} line(s) without a label or correct, skipped")
            per_class = tally((names.label(key, int(row["label"])), row["correct"]) for row in good.values())
            expected = _int(result.get("n_samples"))
            if expected is not None and len(good) != expected:  # the summary's own per-class numbers are whole
                notes.append(
                    f"{predictions}: {len(good)} readable predictions, {path.name} counts {expected}: per-class "
                    f"numbers for {key} taken from {path.name}"
                )
                per_class = {
                    name: ClassScore(float(acc)) for name, acc in (result.get("per_class_accuracy") or {}).items()
                }
        else:
            per_class = {name: ClassScore(float(acc)) for name, acc in (result.get("per_class_accuracy") or {}).items()}
        n = _int(result.get("n_samples"))
        identity = f"open_clip:{result.get('model')}@{result.get('pretrained')}"
        yield Record(
            clip_model_name(result),
            CLIP,
            "clip",
            key,
            float(result["accuracy"]),
            path.stat().st_mtime,
            path,
            per_class,
            model_id=identity,
            protocol=clip_protocol(result),
            n=n,
            n_expected=n,
            versions=_versions_near(path),
            paper_row=result.get("paper_row"),
        )


def read_clip_benchmark(root: Path, notes: list[str]) -> Iterator[Record]:
    """CLIP_benchmark's own result JSONs (``clip_benchmark eval --output``), as full-mode CLIP rows."""
    for path in sorted(root.rglob("*.json")):
        result = _read_json(path)
        if not isinstance(result, dict) or result.get("task") != "zeroshot_classification":
            continue
        if result.get("written_by") == CLIP_EXPORT_MARK:  # clsbench clip's copy: its own summary is read
            continue
        metrics = result.get("metrics") or {}
        key = dataset_key(result.get("dataset"))
        if key is None or not isinstance(metrics.get("acc1"), (int, float)):
            notes.append(
                f"{path}: CLIP_benchmark result skipped (dataset {result.get('dataset')!r} is none of ours, or no acc1)"
            )
            continue
        model = (
            f"{result.get('model')} ({result.get('pretrained')})"
            if result.get("pretrained")
            else str(result.get("model"))
        )
        protocol = {
            "toolkit_label": "CLIP_benchmark",
            "mode": "full",
            "templates": "CLIP_benchmark",
            "language": result.get("language") or "en",
        }
        yield Record(
            model,
            CLIP,
            "clip_benchmark",
            key,
            float(metrics["acc1"]),
            path.stat().st_mtime,
            path,
            model_id=f"open_clip:{result.get('model')}@{result.get('pretrained')}",
            protocol=protocol,
        )


def read_vlmeval(root: Path, notes: list[str] | None = None) -> Iterator[Record]:
    """Every ClsBench dataset in a VLMEvalKit work dir (symlinked copies in the model folder count once)."""
    groups: dict[tuple[Path, str, str], dict[str, Path]] = defaultdict(dict)
    current: set[tuple[Path, str, str]] = set()  # run.py links its newest run's files into the model folder
    for path in root.rglob("*_*"):
        match = VLMEVAL_FILE.fullmatch(path.name)
        if not match or (match["data"] is None and match["task_key"] not in DATASETS) or not path.is_file():
            continue
        data, real = match["data"] or f"cls_{match['task_key']}_mcq", path.resolve()
        groups[(real.parent, match["model"], data)][match["kind"]] = real
        if not VLMEVAL_RUN_DIR.fullmatch(path.parent.name):
            current.add((real.parent, match["model"], data))
    linked = {(model, data) for _, model, data in current}
    for (folder, model, data), files in sorted(groups.items()):
        if (model, data) in linked and (folder, model, data) not in current:
            continue  # an older run VLMEvalKit itself no longer points at
        key, name_set = VLMEVAL_DATASETS.get(data) or (data.removeprefix("cls_").removesuffix("_mcq"), DEFAULT_NAMES)
        record = _vlmeval_record(folder, model, key, name_set, files, notes if notes is not None else [])
        if record is not None:
            yield record


def vlmeval_protocol(model: str, name_set: str) -> dict:
    """The protocol of a VLMEvalKit row: the class-name set from the dataset name, the answer mode from the model
    name (clsbench's ``clsbench_<slug>`` / ``clsbench_<slug>-score``, :func:`parse_vlmeval_model_name`; every other
    model, VLMEvalKit's own wrappers included, replies freely and is read by clsbench's parser: ``generate``). The
    questions are the paper's (26 options, random negatives, seed 0, the paper's prompt): the export writes no
    other."""
    parsed = parse_vlmeval_model_name(model)
    return {**DEFAULT_PROTOCOL, "mode": parsed[1] if parsed else "generate", "class_names": name_set}


def _vlmeval_record(
    folder: Path, model: str, key: str, name_set: str, files: dict[str, Path], skipped: list[str]
) -> Record | None:
    """Accuracy from the acc.csv (else from the predictions), per-class numbers from the predictions; an unreadable
    file is named in ``skipped`` and left out."""
    notes: list[str] = []
    acc_file = files.get("_acc.csv")
    predictions = files.get(".xlsx") or files.get(".tsv")
    try:
        per_class = tally(_vlmeval_rows(predictions)) if predictions else {}
    except Exception as error:  # a truncated xlsx raises zipfile, openpyxl or pandas errors alike
        skipped.append(f"{predictions}: skipped, not a readable VLMEvalKit predictions file ({type(error).__name__})")
        per_class, predictions = {}, None
    try:
        accuracy = _vlmeval_overall(acc_file, notes) if acc_file else None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        skipped.append(f"{acc_file}: skipped, not a readable acc.csv ({type(error).__name__}: {str(error)[:80]})")
        accuracy, acc_file = None, None
    scored = sum(s.correct for s in per_class.values()) / sum(s.n for s in per_class.values()) if per_class else None
    if accuracy is None and scored is None:
        return None
    if accuracy is None:
        notes.append(f"{predictions.name}: no _acc.csv, accuracy computed from the predictions with clsbench's parser")
    elif scored is not None and abs(accuracy - scored) > 5e-4:
        notes.append(
            f"{acc_file.name} says {accuracy:.2%}, clsbench's parser on {predictions.name} {scored:.2%}; "
            "the table uses the acc.csv"
        )
    run_dir = VLMEVAL_RUN_DIR.fullmatch(folder.name)
    stamp = _stamp(run_dir[1] if run_dir else None, "%Y%m%d-%H%M%S", acc_file or predictions)
    value = scored if accuracy is None else accuracy
    n = sum(s.n or 0 for s in per_class.values()) or None
    parsed = parse_vlmeval_model_name(model)
    shown = vlmeval_model_name(parsed[0], "generate") if parsed else model  # the mode is the protocol's label
    return Record(
        shown,
        MLLM,
        "vlmeval",
        key,
        value,
        stamp,
        acc_file or predictions,
        per_class,
        notes,
        model_id=f"vlmeval:{shown}",
        protocol=vlmeval_protocol(model, name_set),
        n=n,
        n_expected=n,
        paper_row=mllm_row(model),
        versions=_versions_near(acc_file or predictions),
    )


def _vlmeval_overall(path: Path, notes: list[str]) -> float | None:
    """The ``Overall`` cell of an acc.csv (row ``split == none`` or the first); percent is detected and said."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "Overall" not in rows[0] or not is_number(rows[0]["Overall"]):
        notes.append(f"{path.name}: no numeric Overall column, ignored")
        return None
    row = next((r for r in rows if r.get("split") == "none"), rows[0])
    value = float(row["Overall"])
    if value > 1:
        notes.append(f"{path.name}: Overall {value} is a percentage, read as {value / 100:.4f}")
        value /= 100
    if not 0 <= value <= 1:
        notes.append(f"{path.name}: Overall {row['Overall']} is outside 0..1 (and 0..100), ignored")
        return None
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
            raise ReportError(
                f"{run}: not a folder or leaderboard file (pass lmms-eval --output_path, VLMEvalKit "
                "--work-dir, clsbench clip or CLIP_benchmark output folders, or a results.jsonl)"
            )
        found = [
            *read_lmms(run, names, notes),
            *read_vlmeval(run, notes),
            *read_clip(run, names, notes),
            *read_clip_benchmark(run, notes),
        ]
        if not found:
            notes.append(f"{run}: no lmms-eval, VLMEvalKit, clsbench clip or CLIP_benchmark results for our datasets")
        records += found
    _join_vlmeval_to_lmms(records)
    if reference == "paper":
        records += paper_records()
    elif reference is not None:
        raise ReportError(f"--reference {reference}: the only reference is 'paper' (Table 2 of arXiv 2412.16418)")
    models = _merge(records, notes)
    notes += [note for model in models for record in model.records() for note in record.notes]
    return models


def _join_vlmeval_to_lmms(records: list[Record]) -> None:
    """clsbench's VLMEvalKit models (``clsbench_<slug>[-score]``) run the engine that ``clsbench_hf`` runs in
    lmms-eval, on the same questions: where the report also holds lmms-eval results of ``clsbench_hf`` on one Hub
    checkpoint with that slug (no revision pinned, not a local path), the VLMEvalKit records take that model's
    identity and name, so each protocol is one row whatever the toolkit (the row says which)."""
    by_slug: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for record in records:
        checkpoint = record.model_id.removeprefix(LMMS_ENGINE + ":")
        if (
            record.toolkit == "lmms-eval"
            and record.model_id.startswith(LMMS_ENGINE + ":")
            and "@" not in checkpoint
            and checkpoint.count("/") == 1
            and not checkpoint.startswith((".", "/", "~"))
        ):
            by_slug[checkpoint_slug(checkpoint)].add((record.model_id, record.model))
    for record in records:
        parsed = parse_vlmeval_model_name(record.model_id.removeprefix("vlmeval:"))
        if record.toolkit == "vlmeval" and record.model_id.startswith("vlmeval:") and parsed:
            found = by_slug.get(parsed[0], set())
            if len(found) == 1:
                record.model_id, record.model = next(iter(found))


def paper_records() -> list[Record]:
    """Table 2's rows as reference rows (P1, 26-option MCQ accuracy)."""
    source = Path("clsbench/tasks/data/paper/table2.csv")
    return [
        Record(
            f"{name} (paper)",
            REFERENCE,
            "paper",
            key,
            accuracy,
            0.0,
            source,
            model_id=f"paper:{name}",
            protocol={"reference": "P1 Table 2"},
            paper_row=name,
        )
        for name, row in table2().items()
        for key, accuracy in row["accuracy"].items()
    ]


def _merge(records: list[Record], notes: list[str]) -> list[ModelResult]:
    """Rows by (model identity, protocol), whichever toolkit produced them (the row names its toolkits when the
    model was read from more than one); per cell a complete result wins over a partial one, and two complete results
    that differ (from one toolkit or two) are a reported conflict, never resolved by file time."""
    by_row: dict[tuple, list[Record]] = defaultdict(list)
    for record in records:
        by_row[record.row_key].append(record)
    identities: dict[str, set[str]] = defaultdict(set)  # row name -> model identities using it
    toolkits: dict[str, set[str]] = defaultdict(set)  # identity -> toolkits its results were read from
    for (model_id, _), rows in by_row.items():
        identities[rows[0].row_name].add(model_id)
        toolkits[model_id].update(record.toolkit for record in rows)
    models = []
    for key, rows in by_row.items():
        first = rows[0]
        name = first.row_name
        if len(identities[first.row_name]) > 1:  # two checkpoints with one short name: tell them apart
            name += f" #{hashlib.sha256(key[0].encode()).hexdigest()[:4]}"
        row_toolkits = " + ".join(sorted({record.toolkit for record in rows}))
        if len(toolkits[key[0]]) > 1:  # one model read from two toolkits' outputs: say which this row's cells are
            name += f" [{row_toolkits}]"
        model = ModelResult(name, first.kind, row_toolkits, {})
        for dataset in DATASETS:
            cell = [r for r in rows if r.dataset == dataset]
            complete = [r for r in cell if not r.partial]
            if len({round(r.accuracy, 9) for r in complete}) > 1:
                model.conflicts[dataset] = sorted(complete, key=lambda r: r.stamp)
                notes.append(
                    f"conflict: {name} on {DATASETS[dataset].abbreviation} has different complete results "
                    + "; ".join(f"{100 * r.accuracy:.1f} in {r.source}" for r in model.conflicts[dataset])
                    + " (the cell is left empty: remove the stale file or rerun)"
                )
            elif complete or cell:
                model.datasets[dataset] = max(complete or cell, key=lambda r: r.stamp)
        models.append(model)
    order = list(table2())  # the paper's rows in Table 2's order (CLIP-style first), ours by name
    return sorted(
        models,
        key=lambda m: (
            KIND_ORDER.index(m.kind),
            order.index(m.name.removesuffix(" (paper)")) if m.kind == REFERENCE else 0,
            m.name.casefold(),
        ),
    )


def read_leaderboard(path: Path, notes: list[str]) -> list[Record]:
    """Records back from a ``results.jsonl`` written by :func:`leaderboard_lines` (so report -> file -> report)."""
    records = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), start=1):
        try:
            entry = json.loads(line)
            if entry.get("format") != LEADERBOARD_FORMAT:
                raise ValueError(f"format is {entry.get('format')!r}")
            records.append(
                Record(
                    entry["model"],
                    entry["kind"],
                    entry["toolkit"],
                    entry["dataset"],
                    float(entry["accuracy"]),
                    float(entry.get("stamp") or 0),
                    Path(entry["source"]),
                    model_id=entry["model_id"],
                    protocol=entry["protocol"],
                    n=entry.get("n"),
                    n_expected=entry.get("n_expected"),
                    unparseable_rate=entry.get("unparseable_rate"),
                    stderr=entry.get("stderr"),
                    versions=entry.get("versions") or {},
                    paper_row=entry.get("paper_row"),
                )
            )
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            notes.append(f"{path}:{number}: skipped, not a leaderboard record ({error})")
    return records
