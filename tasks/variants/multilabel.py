"""Multi-label scoring (ReGT, ReaL): a prediction is right when it is any valid label of its image.

ImageNet images often show several classes; 'MLLMs as image classifiers' re-annotated them (ReGT)
and found MLLMs gain most from it. ``clsbench multilabel RUN... --labels FILE`` rescores logged
predictions (lmms-eval ``--log_samples`` files of ``cls_imagenet_mcq`` and its variants, and
``clsbench clip`` prediction files) and reports single- and multi-label accuracy side by side.

Labels file, one of:

* a JSON list, entry ``i`` the valid labels of ``ILSVRC2012_val_{i+1:08d}`` (ReaL's ``real.json``);
* a JSON object ``{image id or sample key: [labels]}``, labels as class indices or class names;
* a CSV with two columns ``image,labels`` (labels separated by spaces or ``;``).

Images with an empty label list are left out of the multi-label accuracy (as ReaL does) and counted.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from clsbench.tasks.data.loading import DataError, classnames_for
from clsbench.tasks.data.samples import image_id
from clsbench.tasks.protocol.catalog import MCQ_VARIANTS, task_name
from clsbench.tasks.report.lmms_results import sample_decision


def _label(value, classnames: Sequence[str], lookup: dict[str, int]) -> int:
    if isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit()):
        return int(value)
    try:
        return lookup[str(value).strip().casefold()]
    except KeyError:
        raise DataError(f"multi-label file: {value!r} is neither a class index nor a class name") from None


def load_valid_labels(path: str | os.PathLike, classnames: Sequence[str]) -> dict[str, frozenset[int]]:
    """Image id or sample key -> the set of valid class indices."""
    path = Path(path)
    lookup = {name.casefold(): index for index, name in enumerate(classnames)}
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            rows = [row for row in csv.reader(handle) if row and not row[0].startswith("#")]
        if (
            rows
            and not any(part.strip().isdigit() for part in rows[0][1].replace(";", " ").split())
            and rows[0][0] == "image"
        ):
            rows = rows[1:]
        raw = {row[0]: row[1].replace(";", " ").split() for row in rows}
    else:
        content = json.loads(path.read_text("utf-8"))
        if isinstance(content, list):
            raw = {f"ILSVRC2012_val_{index + 1:08d}": labels for index, labels in enumerate(content)}
        else:
            raw = content
    return {
        os.path.splitext(os.path.basename(str(key)))[0]: frozenset(
            _label(value, classnames, lookup) for value in labels
        )
        for key, labels in raw.items()
    }


@dataclass(frozen=True)
class Prediction:
    sample_key: str
    image_id: str | None
    label: int
    prediction: int | None  # None: unparseable


@dataclass(frozen=True)
class MultiLabelScore:
    model: str
    n: int
    single: float
    multi: float | None
    n_multi: int  # samples with a non-empty valid set
    n_missing: int  # samples the labels file does not mention

    def row(self) -> str:
        multi = "—" if self.multi is None else f"{100 * self.multi:.1f}"
        return f"| {self.model} | {self.n} | {100 * self.single:.1f} | {multi} | {self.n_multi} | {self.n_missing} |"


def score(model: str, predictions: Sequence[Prediction], valid: dict[str, frozenset[int]]) -> MultiLabelScore:
    hits, counted, missing = 0, 0, 0
    for prediction in predictions:
        labels = valid.get(prediction.image_id or "", valid.get(prediction.sample_key))
        if labels is None:
            missing += 1
        elif labels:
            counted += 1
            hits += prediction.prediction in labels
    single = sum(p.prediction == p.label for p in predictions) / len(predictions) if predictions else 0.0
    return MultiLabelScore(model, len(predictions), single, hits / counted if counted else None, counted, missing)


def lmms_predictions(root: Path, dataset: str) -> Iterator[tuple[str, list[Prediction]]]:
    """(model, predictions) per logged lmms-eval run of the dataset's MCQ tasks under ``root``."""
    from clsbench.tasks.report.readers import lmms_model_name

    for results_path in sorted(root.rglob("*_results.json")):
        prefix = results_path.name.removesuffix("_results.json")
        model = lmms_model_name(json.loads(results_path.read_text("utf-8")))
        for suffix in MCQ_VARIANTS:
            samples = results_path.with_name(f"{prefix}_samples_{task_name(dataset, suffix)}.jsonl")
            if samples.is_file():
                records = [
                    sample_decision(json.loads(line))
                    for line in samples.read_text("utf-8").splitlines()
                    if line.strip()
                ]
                name = model + (f" [{suffix.lstrip('_')}]" if suffix else "")
                yield (
                    name,
                    [Prediction(r["sample_key"], r.get("image_id"), r["label"], r.get("prediction")) for r in records],
                )


def clip_predictions(
    root: Path, dataset: str, image_ids: dict[str, str] | None
) -> Iterator[tuple[str, list[Prediction]]]:
    from clsbench.tasks.report.readers import clip_model_name

    for result_path in sorted(root.rglob(f"{dataset}.json")):
        result = json.loads(result_path.read_text("utf-8"))
        predictions_path = result_path.with_name(f"{dataset}.predictions.jsonl")
        if result.get("format", "").startswith("clsbench-clip") and predictions_path.is_file():
            rows = [json.loads(line) for line in predictions_path.read_text("utf-8").splitlines() if line.strip()]
            yield (
                clip_model_name(result),
                [
                    Prediction(r["sample_key"], (image_ids or {}).get(r["sample_key"]), r["label"], r.get("prediction"))
                    for r in rows
                ],
            )


def sample_image_ids(dataset: str, data_dir: str | os.PathLike | None) -> dict[str, str]:
    """Sample key -> image id, read from the data (for predictions that do not carry the image id)."""
    import datasets

    from clsbench.tasks.data.loading import load_rows

    rows = load_rows(dataset, data_dir).cast_column("image", datasets.Image(decode=False))
    source_ids = rows["source_id"] if "source_id" in rows.column_names else [None] * len(rows)
    return {
        str(i): image_id({"image": image, "source_id": source})
        for i, (image, source) in enumerate(zip(rows["image"], source_ids))
    }


def rescore(
    runs: Iterable[str | os.PathLike],
    labels_file: str | os.PathLike,
    dataset: str = "imagenet",
    data_dir: str | os.PathLike | None = None,
    with_data: bool = False,
) -> list[MultiLabelScore]:
    classnames = classnames_for(dataset, data_dir)
    valid = load_valid_labels(labels_file, classnames)
    image_ids = sample_image_ids(dataset, data_dir) if with_data else None
    scores = []
    for run in runs:
        root = Path(run)
        for model, predictions in [*lmms_predictions(root, dataset), *clip_predictions(root, dataset, image_ids)]:
            scores.append(score(model, predictions, valid))
    if not scores:
        raise DataError(
            f"no logged {dataset} predictions under {', '.join(map(str, runs))} (lmms-eval needs --log_samples)"
        )
    return scores


def markdown(scores: Sequence[MultiLabelScore]) -> str:
    lines = [
        "| Model | n | single-label (%) | multi-label (%) | n with labels | n not in file |",
        "|---|---|---|---|---|---|",
    ]
    return "\n".join(lines + [s.row() for s in scores])
