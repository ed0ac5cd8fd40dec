"""``clsbench vlmeval``: export what is missing or stale, register, run VLMEvalKit's own ``run.py``, print the table.

VLMEvalKit's ``run.py`` runs in this process (``PRED_FORMAT=tsv``), so its work-dir layout and leaderboard
workflow are unchanged. Two things clsbench adds around it:

* exports are checked and written under a file lock (:func:`~.export.ensure_exported`), so the ranks of a
  ``torchrun`` export a dataset once;
* VLMEvalKit's ``--reuse`` copies a dataset's predictions from the newest earlier run directory and matches
  them to the TSV by row index only. The work dir records which export each dataset's predictions were made
  from (:data:`PREDICTIONS_RECORD`); when the export changed (or is unrecorded), :func:`set_aside_predictions`
  moves that dataset's earlier prediction files into ``<work_dir>/<model>/clsbench_stale/``, saying so, so no
  reply to another dataset's question is ever reused or scored.
"""

from __future__ import annotations

import csv
import json
import os
import re
import runpy
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from filelock import FileLock

from clsbench.tasks.runtime.errors import BadSettingError, UnknownNameError
from clsbench.tasks.toolkits.vlmeval.export import ensure_exported, export_identity
from clsbench.tasks.toolkits.vlmeval.names import NAME_TO_KEY, VLMEVAL_DATASETS, lmu_data_root

# In the work dir: {VLMEvalKit name: export_identity of the TSV its predictions there were made from}.
PREDICTIONS_RECORD = ".clsbench_vlmeval_exports.json"
STALE_FOLDER = "clsbench_stale"  # in <work_dir>/<model>/: not a run directory, so --reuse never looks there
# VLMEvalKit's run directories (vlmeval/smp/file.py:23-24, NEW_EVAL_ID_PATTERN and LEGACY_EVAL_ID_PATTERN):
# the only folders its --reuse searches (list_eval_run_dirs, file.py:485).
RUN_DIR = re.compile(r"^T\d{8}-\d{6}$|^T\d{8}_G[0-9a-fA-F]+$")
PREDICTION_SUFFIXES = (".tsv", ".xlsx", ".json")  # get_pred_file_path (file.py:208): PRED_FORMAT's three


def find_run_py(explicit: str | None = None) -> Path:
    """VLMEvalKit's ``run.py``: given, ``$VLMEVAL_RUN_PY``, or next to the ``vlmeval`` package (an editable install)."""
    import vlmeval

    candidates = [
        explicit,
        os.environ.get("VLMEVAL_RUN_PY"),
        str(Path(vlmeval.__file__).resolve().parent.parent / "run.py"),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise FileNotFoundError(
        "VLMEvalKit's run.py was not found next to the vlmeval package; install VLMEvalKit from a clone "
        "(pip install -e VLMEvalKit) or pass --run-py PATH/TO/VLMEvalKit/run.py"
    )


def result_files(work_dir: str | os.PathLike, model: str, data: str, newer_than: float = 0.0) -> list[Path]:
    """The ``_acc`` score files VLMEvalKit wrote for a model and dataset, oldest first (it exits 0 even on failure)."""
    root = Path(work_dir) / model
    if not root.is_dir():
        return []
    found = [
        path for path in root.rglob(f"{model}_{data}_acc.*") if path.is_file() and path.stat().st_mtime >= newer_than
    ]
    return sorted(found, key=lambda path: (path.stat().st_mtime, str(path)))


def prediction_files(model_dir: Path, name: str) -> list[Path]:
    """The files VLMEvalKit keeps of dataset ``name`` in a model's folder ``<work_dir>/<model>/``.

    In each run directory ``T<date>-<time>/`` (``T<date>_G<hash>/`` before): the predictions
    ``<model>_<name>.<tsv|xlsx|json>`` (``find_prediction_files``, vlmeval/smp/file.py:502, which --reuse
    copies: ``prepare_reuse_files``, file.py:752), the inference checkpoints ``<model>_<name>_checkpoint.pkl`` and
    the per-rank pickles ``<rank><world_size>_<name>.pkl`` (``get_infer_aux_file_names``, file.py:586-607, which
    ``--reuse-aux``, on by default, copies), and the scoring files ``<model>_<name>_*`` (``fetch_aux_files``,
    file.py:668); and in the model folder itself, run.py's links to them (run.py's ``link_addr``). Files of
    another dataset whose name only starts with ``name`` (``ClsBench_imagenet_openai`` for
    ``ClsBench_imagenet``) are not ``name``'s.
    """
    model = model_dir.name
    longer = [other for other in VLMEVAL_DATASETS if other != name and other.startswith(name)]
    own = re.compile(rf"^{re.escape(model)}_{re.escape(name)}(\.|_)|^\d+_{re.escape(name)}\.pkl$")
    found = []
    folders = [model_dir, *(path for path in model_dir.iterdir() if path.is_dir() and RUN_DIR.match(path.name))]
    for folder in folders:
        for path in folder.iterdir():
            if not (path.is_file() or path.is_symlink()) or not own.match(path.name):
                continue
            if any(path.name.startswith(f"{model}_{other}") or path.name.endswith(f"_{other}.pkl") for other in longer):
                continue
            found.append(path)
    return sorted(found)


def set_aside_predictions(work_dir: str | os.PathLike, name: str, why: str) -> list[Path]:
    """Move every model's earlier prediction files of ``name`` under ``work_dir`` (:func:`prediction_files`) into
    ``<work_dir>/<model>/clsbench_stale/<stamp>/``, keeping their run folder, and say so on stderr. Returns
    where they went."""
    root = Path(work_dir)
    moved: list[Path] = []
    folders: list[str] = []
    if not root.is_dir():
        return moved
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for model_dir in sorted(path for path in root.iterdir() if path.is_dir() and not path.is_symlink()):
        for path in prediction_files(model_dir, name):
            relative = path.parent.relative_to(model_dir)
            target = model_dir / STALE_FOLDER / stamp / relative / path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            moved.append(target)
            if str(model_dir / STALE_FOLDER / stamp) not in folders:
                folders.append(str(model_dir / STALE_FOLDER / stamp))
    if moved:
        print(
            f"clsbench vlmeval: {name}: {why}; moved {len(moved)} earlier prediction files of it aside (VLMEvalKit's "
            f"--reuse would match them to the new rows by index) to {', '.join(folders)}",
            file=sys.stderr,
        )
    return moved


def invalidate_stale_predictions(work_dir: str | os.PathLike, lmu_root: Path, names: Sequence[str]) -> None:
    """Set aside the predictions of every dataset whose TSV is not the export they were made from, and record the
    current exports; under a lock in the work dir, so one rank of a ``torchrun`` does it and the others find
    nothing to do."""
    root = Path(work_dir)
    root.mkdir(parents=True, exist_ok=True)
    record_path = root / PREDICTIONS_RECORD
    with FileLock(str(record_path) + ".lock"):
        try:
            record = json.loads(record_path.read_text("utf-8"))
        except (OSError, ValueError):
            record = {}
        changed = False
        for name in names:
            identity = export_identity(lmu_root / f"{name}.tsv")
            if record.get(name) == identity:
                continue
            why = (
                "its TSV is not the export the predictions in this work dir were made from"
                if name in record
                else "this work dir does not record which export its predictions were made from"
            )
            set_aside_predictions(root, name, why)
            record[name] = identity
            changed = True
        if changed:
            partial = record_path.with_name(f".{record_path.name}.{os.getpid()}.partial")
            partial.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", "utf-8")
            os.replace(partial, record_path)


def export_and_check(names: Sequence[str], lmu_root: Path, data_dir: str | None, work_dir: str | os.PathLike) -> None:
    """Export what is missing or stale (once, whichever process comes first), then set aside the predictions in
    ``work_dir`` that were made from another export of a dataset."""
    for name in names:
        key, name_set = VLMEVAL_DATASETS[name]
        ensure_exported(key, lmu_root, data_dir, name_set)
    invalidate_stale_predictions(work_dir, lmu_root, names)


def prediction_outputs(work_dir: str | os.PathLike, model: str, name: str, newer_than: float = 0.0) -> list[Path]:
    """The prediction files (``<model>_<name>.<tsv|xlsx|json>``) VLMEvalKit wrote in run directories since
    ``newer_than``."""
    root = Path(work_dir) / model
    if not root.is_dir():
        return []
    return sorted(
        path
        for folder in root.iterdir()
        if folder.is_dir() and RUN_DIR.match(folder.name)
        for path in folder.iterdir()
        if path.name in {f"{model}_{name}{suffix}" for suffix in PREDICTION_SUFFIXES}
        and path.stat().st_mtime >= newer_than
    )


def run_vlmeval(
    models: Sequence[str],
    data: Sequence[str],
    *,
    work_dir: str = "./outputs",
    lmu_data: str | None = None,
    data_dir: str | None = None,
    model_args: dict | None = None,
    run_py: str | None = None,
    extra_args: Sequence[str] = (),
    register_models: Callable[[dict | None], object] | None = None,
) -> int:
    """Export missing TSVs, register datasets and models, run VLMEvalKit's ``run.py`` with ``--model``/``--data``.

    Args:
        register_models: registers the model wrappers, given ``{name: model_args}`` or None (the CLI passes
            :func:`clsbench.models.vlmeval.registration.register_models`); the datasets are registered here.

    Returns:
        0 when every (model, dataset) pair wrote a score, else 1.
    """
    unknown = [name for name in data if name not in NAME_TO_KEY]
    if unknown:
        choices = ", ".join(NAME_TO_KEY)
        raise UnknownNameError(f"unknown clsbench VLMEvalKit dataset(s) {unknown}; choose from {choices}")
    root = lmu_data_root(lmu_data)
    root.mkdir(parents=True, exist_ok=True)
    os.environ["LMUData"] = str(root)
    # Predictions as TSV, not .xlsx: openpyxl escapes control characters ("C\x0b" -> "C_x000B_"), which changes
    # what the parser reads; a TSV keeps every reply exactly.
    os.environ.setdefault("PRED_FORMAT", "tsv")
    export_and_check(data, root, data_dir, work_dir)
    from clsbench.tasks.toolkits.vlmeval.datasets import register_datasets

    register_datasets()
    if register_models is not None:
        register_models({name: model_args for name in models} if model_args else None)
    script = find_run_py(run_py)
    argv = run_py_argv(script, models, data, work_dir, extra_args)
    started = time.time()
    saved_argv = sys.argv
    sys.argv = argv
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = saved_argv
    if mode_of(extra_args) == "infer":  # no scores to look for: the predictions must be there
        missing = [
            (model, name) for model in models for name in data if not prediction_outputs(work_dir, model, name, started)
        ]
        for model, name in missing:
            print(
                f"clsbench vlmeval: no predictions for {model} x {name} under {work_dir}: the run failed (see its log)",
                file=sys.stderr,
            )
        return 1 if missing else 0
    missing = [(model, name) for model in models for name in data if not result_files(work_dir, model, name, started)]
    if missing:
        for model, name in missing:
            print(
                f"clsbench vlmeval: no score file for {model} x {name} under {work_dir}: the run failed (see its log)",
                file=sys.stderr,
            )
        return 1
    return 0


def print_predictions(work_dir: str, models: Sequence[str], names: Sequence[str], newer_than: float = 0.0) -> None:
    """What ``--mode infer`` leaves: inference only, no scores, and where the predictions are."""
    print("clsbench vlmeval: --mode infer ran inference only (no scores); score them with `-- --mode eval`.")
    print("Predictions:")
    for model in models:
        for name in names:
            for path in prediction_outputs(work_dir, model, name, newer_than):
                print(f"  {model} x {name}: {path}")


def print_table(work_dir: str, models: Sequence[str], names: Sequence[str], newer_than: float = 0.0) -> None:
    """The paper's table (accuracy %, group means when complete) from VLMEvalKit's newest ``_acc`` files
    written after ``newer_than``: a score from an earlier run never stands in for this one's. One row per model
    and class-name set (``ClsBench_imagenet_openai`` is a row of its own, labelled as ``clsbench report`` does)."""
    from clsbench.tasks.report.lmms_results import markdown_table, table_row
    from clsbench.tasks.report.readers import vlmeval_protocol
    from clsbench.tasks.report.records import MLLM, protocol_label

    rows = {}
    for model in models:
        by_set: dict[str, dict[str, float]] = {}
        for name in names:
            key, name_set = VLMEVAL_DATASETS[name]
            files = result_files(work_dir, model, name, newer_than)
            if files:
                with files[-1].open(encoding="utf-8") as handle:
                    first = next(csv.DictReader(handle), None)
                if first and first.get("Overall") not in (None, ""):
                    by_set.setdefault(name_set, {})[key] = float(first["Overall"])
        for name_set in dict.fromkeys(VLMEVAL_DATASETS[name][1] for name in names):
            label = protocol_label(MLLM, vlmeval_protocol(model, name_set))
            rows[f"{model} [{label}]" if label else model] = table_row(by_set.get(name_set, {}))
    print(markdown_table(rows))


NO_JUDGE = ["--judge", "exact_matching"]


def run_py_argv(
    script: str | os.PathLike, models: Sequence[str], data: Sequence[str], work_dir: str, extra_args: Sequence[str]
) -> list[str]:
    """run.py's command line. No LLM judge unless one is asked for: our datasets score with clsbench's parser, but
    run.py names gpt-4o-mini as the judge of every MCQ dataset (``get_judge_kwargs``, run.py:345-358) and records
    it in ``status.json``; ``exact_matching`` is VLMEvalKit's own name for no judge
    (``ImageMCQDataset.evaluate``, vlmeval/dataset/image_mcq.py:276-281)."""
    judge = [] if any(arg == "--judge" or arg.startswith("--judge=") for arg in extra_args) else NO_JUDGE
    return [str(script), "--model", *models, "--data", *data, "--work-dir", work_dir, *judge, *extra_args]


def mode_of(args: Sequence[str]) -> str:
    """run.py's ``--mode`` among the arguments passed to it (``all`` unless given)."""
    for index, arg in enumerate(args):
        if arg == "--mode" and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith("--mode="):
            return arg.split("=", 1)[1]
    return "all"


def parse_model_args(text: str | None) -> dict:
    """``k=v,k2=v2`` (lm-eval-harness style) into keyword arguments, with booleans and numbers converted."""
    if not text:
        return {}
    result = {}
    for part in text.split(","):
        if "=" not in part:
            raise BadSettingError(f"--model-args must be key=value pairs, got {part!r}")
        key, value = part.split("=", 1)
        result[key.strip()] = _convert(value.strip())
    return result


def _convert(value: str):
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            pass
    return value
