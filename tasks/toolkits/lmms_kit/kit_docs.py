"""The cls_mcq hooks' work: rows become documents with questions, documents become prompts, replies become scores.

Everything protocol-specific is in the modules beside this one, copied from clsbench by
``clsbench upstream-lmms-eval``: ``draws.py`` (the options, a pure function of dataset, sample and seed),
``questions.py`` (the question and the prompt layout), ``parsing.py`` (the 26-letter answer parser) and
``images.py`` (the one image decoder). This module only adapts them to lmms-eval's hooks.

A split may carry its questions as data: when its rows have the columns that ``clsbench questions`` writes
(``sample_key``, ``question``, ``options``, ``answer``, and ``n_options`` / ``seed`` / ``class_names``),
those are read instead of drawn, provided they were made for this task's option count, seed and names.
"""

from __future__ import annotations

import os
import sys

from .draws import DERIVATION_VERSION, LETTERS, MAX_OPTIONS
from .images import ImageDecodeError, decode_image
from .questions import INSTRUCTION, MCQ_SEPARATOR, SampleError, format_prompt, make_sample, score_reply
from .registry import KitDataset, get_dataset, kit_data

MISSING_DATA_COLUMN = "clsbench_missing_local_data"  # the one column of _missing_local_data.parquet
QUESTION_COLUMNS = ("sample_key", "question", "options", "answer")
IMAGE_KEYS = ("image", "img", "webp", "jpg", "jpeg", "png")
LABEL_KEYS = ("label", "cls")


class KitDataError(RuntimeError):
    """A split is missing or does not fit the task; the message says what to do."""


def said_first(error: Exception) -> None:
    """lmms-eval shows a hook's error only inside its traceback: print it as one line first."""
    print(f"\ncls_mcq: error: {error}\n", file=sys.stderr, flush=True)


def missing_local_message(spec: KitDataset) -> str:
    source = spec.source
    return (
        f"{spec.key}: {spec.title} is not on the Hugging Face Hub in the reference form, so this task reads a local "
        f"copy. Make one from {source['raw_form']} (get it from {source['obtain']}) with\n"
        f"  python convert_dataset.py {spec.key} --source RAW_DIR\n"
        f"in this task folder, or point _{spec.key}_source_yaml's data_files at your parquet files "
        "(README, 'Local data')."
    )


def standard_columns(rows, spec: KitDataset):
    """The split with its image and label columns named ``image`` and ``label``."""
    import datasets

    source = spec.source
    image = source.get("image_column") if not spec.is_local else "image"
    label = source.get("label_column") if not spec.is_local else "label"
    features = rows.features
    if image is None or image not in rows.column_names:
        found = [name for name, feature in features.items() if isinstance(feature, datasets.Image)]
        found = found or [name for name in rows.column_names if name.lower() in IMAGE_KEYS]
        if len(found) != 1:
            raise KitDataError(f"{spec.key}: cannot tell the image column among {rows.column_names}")
        image = found[0]
    if label is None or label not in rows.column_names:
        found = [
            name
            for name, feature in features.items()
            if name.lower() in LABEL_KEYS
            and (isinstance(feature, datasets.ClassLabel) or str(getattr(feature, "dtype", "")).startswith("int"))
        ]
        if len(found) != 1:
            raise KitDataError(f"{spec.key}: cannot tell the label column among {rows.column_names}")
        label = found[0]
    renames = {old: new for old, new in {image: "image", label: "label"}.items() if old != new}
    return rows.rename_columns(renames) if renames else rows


def _precomputed(rows, n_options: int, seed: int, name_set: str) -> bool:
    """Whether the rows carry questions made for this task (option count, seed, class names)."""
    if not all(column in rows.column_names for column in QUESTION_COLUMNS):
        return False
    wanted = {"n_options": n_options, "seed": seed, "class_names": name_set}
    return all(set(rows[column]) == {value} for column, value in wanted.items() if column in rows.column_names)


def questions_for(rows, key: str, *, n_options: int = MAX_OPTIONS, name_set: str = "paper", seed: int = 0):
    """The rows of ``cls_<key>_mcq...`` with columns dataset, sample_key, question, options, answer,
    option_labels and class_name (images stay undecoded until ``doc_to_visual``)."""
    import datasets

    spec = get_dataset(key)
    try:
        if MISSING_DATA_COLUMN in rows.column_names:
            raise KitDataError(missing_local_message(spec))
        rows = standard_columns(rows, spec)
        feature_names = getattr(rows.features["label"], "names", None)
        classnames = spec.names(name_set) or feature_names
        if classnames is None:
            raise KitDataError(f"{key}: no class names in datasets.json or in the data's label feature")
        if feature_names is not None and len(feature_names) != len(classnames):
            raise KitDataError(f"{key}: the split has {len(feature_names)} label names, the task {len(classnames)}")
        labels = [int(label) for label in rows["label"]]
        keys = [str(k) for k in rows["sample_key"]] if "sample_key" in rows.column_names else None
        if _precomputed(rows, n_options, seed, name_set):
            columns = {
                "question": list(rows["question"]),
                "options": [list(options) for options in rows["options"]],
                "answer": list(rows["answer"]),
            }
            for label, options, answer, sample_key in zip(labels, columns["options"], columns["answer"], keys):
                if options[LETTERS.index(answer)] != classnames[label]:
                    raise KitDataError(f"{key} sample {sample_key}: the stored answer {answer} is not its label")
            if "option_labels" in rows.column_names:
                columns["option_labels"] = [list(labels) for labels in rows["option_labels"]]
            else:
                index = {name: i for i, name in enumerate(classnames)}
                columns["option_labels"] = [[index[name] for name in options] for options in columns["options"]]
        else:
            samples = [
                make_sample(key, keys[i] if keys else str(i), label, classnames, seed=seed, n_options=n_options)
                for i, label in enumerate(labels)
            ]
            keys = [sample.sample_key for sample in samples]
            columns = {
                "question": [sample.question for sample in samples],
                "options": [list(sample.options) for sample in samples],
                "answer": [sample.answer for sample in samples],
                "option_labels": [list(sample.option_labels) for sample in samples],
            }
    except (KitDataError, SampleError) as error:
        said_first(error)
        raise
    rows = rows.cast_column("image", datasets.Image(decode=False))
    columns = {"dataset": [key] * len(labels), "sample_key": keys, **columns}
    columns["class_name"] = [classnames[label] for label in labels]
    rows = rows.remove_columns([column for column in columns if column in rows.column_names])
    for name, values in columns.items():
        rows = rows.add_column(name, values)
    return rows


def image_id(doc: dict) -> str | None:
    """The image's file name without folder and extension, if known."""
    image = doc.get("image")
    path = (image.get("path") if isinstance(image, dict) else None) or doc.get("source_id")
    return os.path.splitext(os.path.basename(path))[0] if path else None


def doc_to_visual(doc: dict) -> list:
    value = doc["image"]
    try:
        if isinstance(value, dict) and value.get("bytes") is not None:
            return [decode_image(value["bytes"])]
        if isinstance(value, dict) and value.get("path"):
            return [decode_image(value["path"])]
        return [decode_image(value)]
    except (ImageDecodeError, OSError) as error:
        failure = SampleError(f"{doc['dataset']} sample {doc['sample_key']}: cannot read the image: {error}")
        said_first(failure)
        raise failure from error


def doc_to_text(doc: dict, lmms_eval_specific_kwargs: dict | None = None, separator: str = MCQ_SEPARATOR) -> str:
    """P1 section 3.2: the question, the instruction on its own line, one ``A. name`` line per option."""
    kwargs = lmms_eval_specific_kwargs or {}
    return format_prompt(
        doc["question"],
        doc["options"],
        pre_prompt=kwargs.get("pre_prompt", ""),
        instruction=kwargs.get("instruction", INSTRUCTION),
        post_prompt=kwargs.get("post_prompt", ""),
        separator=separator,
    )


def process_results(doc: dict, results: list) -> dict:
    """Per sample: 0/1 accuracy, unparseable (lmms-eval averages both) and the decision record."""
    record = score_reply(results[0] if results else None, doc["options"], doc["answer"])
    record.update(sample_key=doc["sample_key"], label=doc["label"], image_id=image_id(doc))
    record["prediction"] = doc["option_labels"][ord(record["parsed"]) - 65] if record["parsed"] else None
    return {"accuracy": record["correct"], "unparseable_rate": record["unparseable"], "decision": record}


def aggregate_decisions(records: list) -> int:
    """The ``decision`` metric's value: how many questions were decided (the records are logged per sample)."""
    return len(records)


def protocol_version() -> str:
    """The question derivation and task version these hooks implement (``clsbench-v1/3.0``)."""
    return f"{DERIVATION_VERSION}/{kit_data()['task_version']}"
