"""Rows of a split become documents with questions: the one route from data to a question for every toolkit.

:func:`add_questions` is what lmms-eval's ``process_docs`` hooks and the VLMEvalKit export call;
:func:`open_image` decodes a stored image with the one decoder, naming the sample on failure."""

from __future__ import annotations

import os

from PIL import Image

from clsbench.tasks.data.images import ImageDecodeError, decode_image
from clsbench.tasks.data.negatives import load_negatives
from clsbench.tasks.protocol.catalog import RANDOM, Negatives
from clsbench.tasks.protocol.draws import MAX_OPTIONS
from clsbench.tasks.protocol.questions import DEFAULT_SEED, SampleError, make_samples
from clsbench.tasks.protocol.registry import DEFAULT_NAMES, DatasetSpec, as_spec


def image_id(doc: dict) -> str | None:
    """The image's file name without folder and extension (how multi-label files name images), if known."""
    image = doc.get("image")
    path = (image.get("path") if isinstance(image, dict) else None) or doc.get("source_id")
    return os.path.splitext(os.path.basename(path))[0] if path else None


def open_image(value, *, dataset: str, sample_key: str, source_id: str | None = None) -> Image.Image:
    """Decode a stored image ({bytes, path}, a path, or a PIL image) to RGB, naming the sample on failure.

    Decoding is :func:`clsbench.tasks.data.images.decode_image` (full decode, EXIF orientation, 16-bit and
    other modes, decompression bombs), the one decoder of every toolkit path.
    """
    try:
        if isinstance(value, (Image.Image, str)):
            return decode_image(value)
        if isinstance(value, dict) and value.get("bytes") is not None:
            return decode_image(value["bytes"])
        if isinstance(value, dict) and value.get("path"):
            return decode_image(value["path"])
        raise ImageDecodeError(f"no image data ({type(value).__name__})")
    except (ImageDecodeError, OSError) as error:
        where = f" ({source_id})" if source_id else ""
        raise SampleError(f"{dataset} sample {sample_key}{where}: cannot read the image: {error}") from error


def add_questions(
    rows,
    dataset: str | DatasetSpec,
    *,
    seed: int = DEFAULT_SEED,
    n_options: int = MAX_OPTIONS,
    negatives: Negatives = RANDOM,
    name_set: str = DEFAULT_NAMES,
    question: str | None = None,
    data_dir: str | os.PathLike | None = None,
    checked: bool = False,
):
    """Give every row its question: columns dataset, sample_key, question, options, answer, option_labels, class_name.

    ``negatives`` other than ``random`` reads the hard-negatives file from the data root
    (see :mod:`clsbench.tasks.data.negatives`); ``name_set`` picks the class names shown (the paper's by default).

    Works on any ``datasets.Dataset`` from :mod:`clsbench.tasks.data.loading` (a prepared copy or the Hub
    split). Checks the split's label names against the recorded Hub label order and its size
    against the paper's, then reads only the label column; images stay undecoded
    (``Image(decode=False)``) so a corrupt one fails in :func:`open_image`, naming its sample,
    instead of deep in the loader.

    Args:
        rows: the split (``datasets.Dataset``), or the sentinel of a local-only dataset.
        dataset: the spec, or its registry key (looked up once; the spec goes down to every check).
        seed, n_options: as for :func:`clsbench.tasks.protocol.draws.build_question`.
        negatives: ``random`` or a hard-negatives method whose file is in the data root.
        name_set: the class names shown (``paper``, or another set the dataset offers).
        question: one wording for every sample instead of the dataset's ten.
        data_dir: the data root (prepared copies, negatives files).
        checked: the rows come from :func:`clsbench.tasks.data.loading.load_rows`, which already checked their
            label names and size (checked once, so a partial copy warns once).

    Returns:
        The rows with the question columns added (images still undecoded).
    """
    import datasets

    from clsbench.tasks.data.loading import (
        MISSING_DATA_COLUMN,
        DataError,
        check_label_names,
        check_row_count,
        find_prepared,
        load_rows,
        missing_data_message,
        to_standard_columns,
    )

    spec = as_spec(dataset)
    key = spec.key
    if MISSING_DATA_COLUMN in rows.column_names:
        # The task points at the sentinel (a local-only dataset): read the prepared copy from the data root
        # ($CLSBENCH_DATA, else ~/.cache/clsbench/data), else say how to build it.
        if find_prepared(spec, data_dir) is None:
            raise DataError(missing_data_message(spec, data_dir))
        rows, checked = load_rows(spec, data_dir), True
    if "label" not in rows.column_names and not spec.is_local:
        rows = to_standard_columns(rows, spec.source)
    from_hub = "source_id" not in rows.column_names  # prepared copies carry source_id, Hub splits do not
    where = "the Hub split" if from_hub else "the prepared copy"
    feature_names = getattr(rows.features.get("label"), "names", None)
    if not checked:
        check_label_names(spec, feature_names, where)
        check_row_count(spec, rows.num_rows, where, strict=from_hub and not spec.is_local)
    classnames = spec.names(name_set) or feature_names
    if classnames is None:
        raise DataError(f"{key}: no class names in the package or in the data's label feature")
    ranked = None if negatives == RANDOM else load_negatives(key, negatives, classnames, data_dir)
    labels = [int(label) if label is not None else None for label in rows["label"]]
    samples = make_samples(
        spec, labels, classnames, seed=seed, n_options=n_options, negatives=ranked, question=question
    )
    rows = rows.cast_column("image", datasets.Image(decode=False))
    for column in ("dataset", "sample_key", "question", "options", "answer", "option_labels"):
        values = [getattr(sample, column) for sample in samples]
        rows = rows.add_column(column, [list(value) for value in values] if isinstance(values[0], tuple) else values)
    return rows.add_column("class_name", [classnames[sample.label] for sample in samples])
