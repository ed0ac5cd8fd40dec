"""Score one CLIP model on a list of datasets, data-parallel when launched on several processes.

One process or many (``accelerate launch`` / ``torchrun``), the predictions are the same: the main
process decides what is left to do (resume) and tells the others; sample ``i`` of the pending
list goes to rank ``i % world``; every rank runs the same number of batches (padded), and the main
process gathers each flush's predictions and appends them to the results before moving on.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from clsbench.clip_baselines.models import (
    LoadedModel,
    ModelRef,
    load_model,
    resolve_model,
    table2_row,
    weights_identity,
)
from clsbench.clip_baselines.results import (
    MODES,
    TEMPLATE_CHOICES,
    PredictionLog,
    ResultsError,
    RunSettings,
    UnreadableSummary,
    prediction_record,
    predictions_path,
    read_summary,
    summarize,
    summary_path,
    write_clip_benchmark_result,
    write_json_atomic,
)
from clsbench.clip_baselines.zeroshot import ImageRows, class_embeddings, pairs, predict_batches, shard, templates_for
from clsbench.tasks.data.loading import DataError, classnames_for, find_prepared, load_rows, missing_data_message
from clsbench.tasks.data.negatives import load_negatives
from clsbench.tasks.protocol.catalog import RANDOM, Negatives, check_protocol_names, resolve_datasets
from clsbench.tasks.protocol.draws import MAX_OPTIONS
from clsbench.tasks.protocol.questions import check_label, make_samples
from clsbench.tasks.protocol.registry import DEFAULT_NAMES, get_dataset
from clsbench.tasks.runtime.environment import write_versions
from clsbench.tasks.runtime.errors import BadSettingError, UnknownNameError
from clsbench.tasks.runtime.stores import (
    OutputLock,
    OutputLocked,
    OutputWriteError,
    StoreMismatch,
    check_fingerprint,
    writing,
)


@dataclass(frozen=True)
class Split:
    """What a dataset contributes to a run: labels, class names and, in mcq mode, each sample's options."""

    key: str
    rows: object  # datasets.Dataset
    labels: list[int]
    classnames: tuple[str, ...]
    options: torch.Tensor | None  # (n_rows, n_options) class indices, A first
    answers: list[str] | None


def load_split(key: str, settings: RunSettings, data_dir=None) -> Split:
    """Rows, labels and (mcq) the questions every clsbench toolkit asks for these settings."""
    spec = get_dataset(key)
    classnames = classnames_for(spec, data_dir, settings.class_names)
    rows = load_rows(spec, data_dir)
    labels = list(rows["label"])
    if settings.mode == "full":
        for index, label in enumerate(labels):
            check_label(key, str(index), label, len(classnames))
        return Split(key, rows, labels, classnames, None, None)
    # The same route to a question as the MLLM tasks and VLMEvalKit (make_samples checks every label).
    ranked = None if settings.negatives == RANDOM else load_negatives(key, settings.negatives, classnames, data_dir)
    samples = make_samples(spec, labels, classnames, seed=settings.seed, n_options=settings.n_options, negatives=ranked)
    options = torch.tensor([sample.option_labels for sample in samples], dtype=torch.long)
    return Split(key, rows, labels, classnames, options, [sample.answer for sample in samples])


def check_data(key: str, data_dir=None) -> None:
    """Fail before any model download when a dataset that only exists locally has not been prepared."""
    spec = get_dataset(key)
    if spec.is_local and find_prepared(spec, data_dir) is None:
        raise DataError(missing_data_message(spec, data_dir))


def _check_existing(split: Split, records: dict[str, dict], path: Path) -> None:
    """Refuse to resume on predictions made for other data or other questions."""
    for key, record in records.items():
        index = int(key) if key.isdigit() else -1
        if (
            not 0 <= index < len(split.labels)
            or record["label"] != split.labels[index]
            or (split.options is not None and record.get("options") != split.options[index].tolist())
        ):
            raise ResultsError(
                f"{path} has a prediction for sample {key} that does not match this data or these options; "
                "it was written for another dataset copy or other settings: move it away to start over"
            )


def default_workers(device, n_items: int, batch_size: int, local_processes: int = 1) -> int:
    """DataLoader workers: up to 4 per process within the machine's cores when a GPU does the maths.

    None on CPU, where the model already uses every core and worker processes only add start-up
    and contention (measured: 2x slower on a 2-core machine), nor for a single batch.
    """
    if torch.device(device).type == "cpu" or n_items <= batch_size:
        return 0
    return max(1, min(4, (os.cpu_count() or 1) // max(1, local_processes)))


def evaluate_dataset(
    loaded: LoadedModel,
    split: Split,
    settings: RunSettings,
    run_dir: Path,
    state,
    *,
    cache_dir=None,
    batch_size: int = 64,
    workers: int | None = None,
    precision: str = "auto",
    flush_every: int = 1024,
    progress: bool = True,
) -> dict | None:
    """Predict the samples not yet in ``run_dir`` and write the summary; returns it on the main process."""
    from accelerate.utils import broadcast_object_list, gather_object
    from tqdm import tqdm

    log = PredictionLog(predictions_path(run_dir, split.key))
    plan: list = [None]
    if state.is_main_process:
        try:
            try:
                done = read_summary(run_dir, split.key)
            except UnreadableSummary as error:  # resumed past, not fatal: the predictions log is the record
                print(
                    f"clsbench clip: warning: {error}; recomputing it from {log.path} "
                    "(samples without a prediction there are predicted again)",
                    file=sys.stderr,
                )
                done = None
            if done is not None and {k: done.get(k) for k in settings.header(split.key)} != settings.header(split.key):
                raise ResultsError(
                    f"{summary_path(run_dir, split.key)} was written with other settings; move it away to rerun"
                )
            existing = log.read()
            _check_existing(split, existing, log.path)
            pending = (
                [] if done is not None else [index for index in range(len(split.labels)) if str(index) not in existing]
            )
            plan = [{"done": done, "pending": pending}]
        except (ResultsError, ValueError) as error:
            plan = [{"error": str(error)}]
    broadcast_object_list(plan)  # every process fails, or none does: a lone failure would hang the others
    if "error" in plan[0]:
        raise ResultsError(plan[0]["error"])
    done, pending = plan[0]["done"], plan[0]["pending"]
    if done is not None:
        return done if state.is_main_process else None

    if pending:
        items = shard(pending, state.process_index, state.num_processes)
        local = int(os.environ.get("LOCAL_WORLD_SIZE") or state.num_processes)
        loader = torch.utils.data.DataLoader(
            ImageRows(split.rows, split.key, items, loaded.preprocess),
            batch_size=batch_size,
            shuffle=False,
            num_workers=default_workers(loaded.device, len(items), batch_size, local) if workers is None else workers,
            pin_memory=loaded.device.type == "cuda",
        )
        n_batches = len(loader)
        images = iter(loader)  # workers start decoding now, while the text side is encoded
        templates = templates_for(split.key, settings.templates)
        with state.local_main_process_first():
            weights = class_embeddings(loaded, split.classnames, templates, cache_dir=cache_dir, precision=precision)
        batches_per_flush = max(1, flush_every // (batch_size * state.num_processes))
        bar = tqdm(
            total=len(pending),
            desc=f"{settings.run_name} {split.key}",
            unit="img",
            disable=not (progress and state.is_main_process),
            file=sys.stderr,
        )
        buffer: list = []
        for number, batch in enumerate(predict_batches(loaded, images, weights, split.options, precision), start=1):
            buffer.append(batch)
            if number % batches_per_flush and number != n_batches:
                continue
            mine, buffer = pairs(buffer), []
            gathered = gather_object(mine) if state.num_processes > 1 else mine
            if state.is_main_process:
                log.append(_records(split, sorted(gathered)))
                bar.update(len(gathered))
        bar.close()
    state.wait_for_everyone()
    if not state.is_main_process:
        return None
    records = log.read()
    missing = len(split.labels) - len(records)
    if missing:
        raise ResultsError(f"{log.path}: {missing} samples have no prediction after the run")
    summary = summarize(settings, split.key, records, split.classnames, table2_row(settings.model, settings.pretrained))
    write_json_atomic(summary_path(run_dir, split.key), summary)
    return summary


def _records(split: Split, predictions: Sequence[tuple[int, int | list[int]]]) -> list[dict]:
    return [
        prediction_record(
            str(index),
            split.labels[index],
            predicted[0] if isinstance(predicted, list) else predicted,
            None if split.options is None else split.options[index].tolist(),
            None if split.answers is None else split.answers[index],
            top5=predicted if isinstance(predicted, list) else None,
        )
        for index, predicted in predictions
    ]


def parse_datasets(text: str | Sequence[str]) -> list[str]:
    """Dataset keys from ``--datasets`` (the catalog's one grammar: keys, aliases, groups, task names), checked.

    A variant's task or group name (``cls_food101_mcq_4opt``) is refused with the flags that ask it: the name
    means one protocol on every path, and these runs take the protocol from ``--n-options``/``--negatives``.
    """
    check_protocol_names(text, "clip", example="--model MODEL --datasets {datasets}")
    return resolve_datasets(text)


def run_clip(
    model: str | LoadedModel,
    pretrained: str | None = None,
    datasets: str | Sequence[str] = "all",
    out: str | os.PathLike = "clip_results",
    *,
    mode: str = "mcq",
    templates: str = "ensemble",
    seed: int = 0,
    n_options: int = MAX_OPTIONS,
    negatives: Negatives = RANDOM,
    class_names: str = DEFAULT_NAMES,
    data_dir=None,
    cache_dir=None,
    model_cache_dir: str | None = None,
    batch_size: int = 64,
    workers: int | None = None,
    precision: str = "auto",
    cpu: bool = False,
    flush_every: int = 1024,
    progress: bool = True,
    on_dataset: Callable[[str, dict, Path], None] | None = None,
) -> dict[str, dict]:
    """Score a CLIP model on ``datasets``; ``{dataset: summary}`` on the main process, ``{}`` on others.

    Already-completed datasets are read back, interrupted ones resume where they stopped.

    Args:
        model: a paper short name (``openai-vit-l-14``), an open_clip name (with ``pretrained``), or a loaded model.
        pretrained: the open_clip tag or checkpoint file.
        datasets: any names :func:`clsbench.tasks.protocol.catalog.resolve_datasets` accepts.
        out: the results root; the run goes to ``<out>/<run name>/``.
        mode: ``mcq`` (the MLLM tasks' questions) or ``full`` (zero-shot over all classes).
        templates, seed, n_options, negatives, class_names: the protocol settings, as the MLLM tasks'.
        data_dir, cache_dir, model_cache_dir: data root, text-embedding cache, open_clip weights cache.
        batch_size, workers, precision, cpu, flush_every, progress: how the run executes (not what it computes).
        on_dataset: called with ``(dataset, summary, run_dir)`` as each dataset completes.

    Returns:
        ``{dataset: summary}`` on the main process, ``{}`` on the others.
    """
    from accelerate import PartialState

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if templates not in TEMPLATE_CHOICES:
        raise ValueError(f"templates must be one of {TEMPLATE_CHOICES}, got {templates!r}")
    if not 2 <= n_options <= MAX_OPTIONS:
        raise BadSettingError(f"--n-options must be in 2..{MAX_OPTIONS}, got {n_options}")
    keys = parse_datasets(datasets)
    for key in keys:
        check_data(key, data_dir)
        if class_names not in get_dataset(key).name_sets:
            raise UnknownNameError(
                f"{key} has no class-name set {class_names!r} (it offers: {', '.join(get_dataset(key).name_sets)})"
            )
    state = PartialState(cpu=cpu)
    if isinstance(model, LoadedModel):
        loaded = model
    else:
        ref: ModelRef = resolve_model(model, pretrained)
        with state.local_main_process_first():
            loaded = load_model(ref, state.device, cache_dir=model_cache_dir)
    ref = loaded.ref
    settings = RunSettings(
        ref.model_name, ref.pretrained, ref.run_label, mode, templates, seed, n_options, negatives, class_names
    )
    run_dir = Path(out) / settings.run_name
    lock = OutputLock(run_dir, "predictions")
    problem: list = [None]
    if state.is_main_process:
        try:
            lock.acquire()  # one writer per run folder: a concurrent run fails here, naming the holder
            check_run_fingerprint(run_dir, run_fingerprint(loaded, settings, precision))
            with writing(run_dir, "the run's versions record"):
                write_versions(run_dir, {"settings": settings.header("*")})
        except (ResultsError, OutputLocked, OutputWriteError) as error:
            problem = [str(error)]
    if state.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        broadcast_object_list(problem)  # every process stops, or none does
    try:
        if problem[0]:
            raise ResultsError(problem[0])
        return _run_datasets(
            keys,
            loaded,
            settings,
            run_dir,
            state,
            data_dir=data_dir,
            cache_dir=cache_dir,
            batch_size=batch_size,
            workers=workers,
            precision=precision,
            flush_every=flush_every,
            progress=progress,
            on_dataset=on_dataset,
        )
    finally:
        lock.release()


FINGERPRINT_FILE = "fingerprint.json"


def run_fingerprint(loaded: LoadedModel, settings: RunSettings, precision: str) -> dict:
    """What decides a run folder's predictions beyond its name: the weights and the effective precision."""
    from clsbench.clip_baselines.zeroshot import autocast_for

    _, effective = autocast_for(loaded.device, precision)
    return {
        "model": settings.model,
        "pretrained": settings.pretrained,
        "weights": weights_identity(loaded.ref),
        "precision": effective,
        "class_names": settings.class_names,
        "templates": settings.templates,
    }


def check_run_fingerprint(run_dir: Path, current: dict) -> None:
    """Refuse to add predictions to a run folder made with other weights or precision; record it when new."""
    path = run_dir / FINGERPRINT_FILE
    if path.is_file():
        try:
            stored = json.loads(path.read_text("utf-8"))
        except ValueError as error:
            raise ResultsError(f"{path} is not readable JSON ({error}); move {run_dir} away to start over") from error
        try:
            check_fingerprint(stored, current, str(run_dir), f"move {run_dir} away (or use another --output-dir)")
        except StoreMismatch as error:
            raise ResultsError(str(error)) from None
        return
    write_json_atomic(path, current)


def _run_datasets(
    keys,
    loaded,
    settings,
    run_dir,
    state,
    *,
    data_dir,
    cache_dir,
    batch_size,
    workers,
    precision,
    flush_every,
    progress,
    on_dataset,
) -> dict[str, dict]:
    summaries: dict[str, dict] = {}
    for key in keys:
        with state.local_main_process_first():  # the first process builds the datasets cache, the rest reuse it
            split = load_split(key, settings, data_dir)
        summary = evaluate_dataset(
            loaded,
            split,
            settings,
            run_dir,
            state,
            cache_dir=cache_dir,
            batch_size=batch_size,
            workers=workers,
            precision=precision,
            flush_every=flush_every,
            progress=progress,
        )
        if summary is not None:
            write_clip_benchmark_result(run_dir, summary)  # also for a summary written before this existed
            summaries[key] = summary
            if on_dataset is not None:
                on_dataset(key, summary, run_dir)
    return summaries
