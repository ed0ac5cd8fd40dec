"""``clsbench vlmeval``: export what is missing or stale, register, run VLMEvalKit's own ``run.py``, print the table.

VLMEvalKit's ``run.py`` runs in this process (``PRED_FORMAT=tsv``), so its work-dir layout and leaderboard
workflow are unchanged.
"""

from __future__ import annotations

import csv
import os
import runpy
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from clsbench.tasks.runtime.errors import BadSettingError, UnknownNameError
from clsbench.tasks.toolkits.vlmeval.export import export_is_current, write_tsv
from clsbench.tasks.toolkits.vlmeval.names import NAME_TO_KEY, VLMEVAL_DATASETS, lmu_data_root


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
    for name in data:
        key, name_set = VLMEVAL_DATASETS[name]
        tsv = root / f"{name}.tsv"
        stale = export_is_current(tsv, data_dir, name_set) if tsv.is_file() else f"no {tsv}"
        if stale:
            print(f"clsbench vlmeval: exporting {name}.tsv to {root} ({stale})", file=sys.stderr)
            write_tsv(key, root, data_dir, name_set)
    from clsbench.tasks.toolkits.vlmeval.datasets import register_datasets

    register_datasets()
    if register_models is not None:
        register_models({name: model_args for name in models} if model_args else None)
    script = find_run_py(run_py)
    argv = [str(script), "--model", *models, "--data", *data, "--work-dir", work_dir, *extra_args]
    started = time.time()
    saved_argv = sys.argv
    sys.argv = argv
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = saved_argv
    if _mode(extra_args) == "infer":
        return 0
    missing = [(model, name) for model in models for name in data if not result_files(work_dir, model, name, started)]
    if missing:
        for model, name in missing:
            print(
                f"clsbench vlmeval: no score file for {model} x {name} under {work_dir}: the run failed (see its log)",
                file=sys.stderr,
            )
        return 1
    return 0


def print_table(work_dir: str, models: Sequence[str], names: Sequence[str], newer_than: float = 0.0) -> None:
    """The paper's table (accuracy %, group means when complete) from VLMEvalKit's newest ``_acc`` files
    written after ``newer_than``: a score from an earlier run never stands in for this one's."""
    from clsbench.tasks.report.lmms_results import markdown_table, table_row

    rows = {}
    for model in models:
        scores = {}
        for name in names:
            files = result_files(work_dir, model, name, newer_than)
            if files:
                with files[-1].open(encoding="utf-8") as handle:
                    first = next(csv.DictReader(handle), None)
                if first and first.get("Overall") not in (None, ""):
                    scores[NAME_TO_KEY[name]] = float(first["Overall"])
        rows[model] = table_row(scores)
    print(markdown_table(rows))


def _mode(args: Sequence[str]) -> str:
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
