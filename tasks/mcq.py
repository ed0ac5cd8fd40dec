"""Samples become questions, questions become prompts, replies become scores.

Toolkit-agnostic: the lmms-eval hooks (``cls_mcq/utils.py``), the VLMEvalKit export and the CLIP
baselines all call these functions, so every toolkit asks and scores the same questions.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from PIL import Image

from .images import ImageDecodeError, decode_image
from .negatives import Negatives, load_negatives
from .options import LETTERS, MAX_OPTIONS, build_question
from .parsing import parse_answer
from .registry import DEFAULT_NAMES, get_dataset

DEFAULT_SEED = 0
INSTRUCTION = "Answer with the option's letter from the given choices directly."


class SampleError(ValueError):
    """One sample is unusable (bad label, unreadable image); the message names it."""


@dataclass(frozen=True)
class McqSample:
    """Everything a toolkit needs to ask one question and score the reply."""

    dataset: str
    sample_key: str
    label: int
    question: str
    options: tuple[str, ...]
    answer: str  # the right letter
    option_labels: tuple[int, ...] = ()  # class index of each option, A first

    def as_doc(self) -> dict:
        return {
            "dataset": self.dataset,
            "sample_key": self.sample_key,
            "label": self.label,
            "question": self.question,
            "options": list(self.options),
            "answer": self.answer,
            "option_labels": list(self.option_labels),
        }


def make_sample(
    dataset: str,
    sample_key: str,
    label: int,
    classnames: Sequence[str],
    *,
    seed: int = DEFAULT_SEED,
    n_options: int = MAX_OPTIONS,
    ranked_negatives: Sequence[int] | None = None,
    question: str | None = None,
) -> McqSample:
    """The question for one sample (options from :func:`options.build_question`).

    ``question`` replaces the drawn wording (the 5-way protocol asks every sample the same question).
    """
    if not isinstance(label, int) or not 0 <= label < len(classnames):
        raise SampleError(
            f"{dataset} sample {sample_key}: label {label!r} is outside the class list (0..{len(classnames) - 1})"
        )
    wording = question
    drawn = build_question(
        dataset, sample_key, label, classnames, seed=seed, n_options=n_options, ranked_negatives=ranked_negatives
    )
    return McqSample(
        dataset=dataset,
        sample_key=sample_key,
        label=label,
        question=wording if wording is not None else get_dataset(dataset).questions[drawn.wording_index],
        options=tuple(classnames[index] for index in drawn.options),
        answer=drawn.answer_letter,
        option_labels=drawn.options,
    )


def make_samples(
    dataset: str,
    labels: Iterable[int],
    classnames: Sequence[str],
    *,
    seed: int = DEFAULT_SEED,
    n_options: int = MAX_OPTIONS,
    negatives: Negatives | None = None,
    question: str | None = None,
) -> list[McqSample]:
    """Questions for a whole split; the sample key of row ``i`` is ``str(i)``."""
    samples = []
    for index, label in enumerate(labels):
        ranked = negatives.for_sample(str(index), label) if negatives is not None and label is not None else None
        samples.append(make_sample(dataset, str(index), label, classnames, seed=seed, n_options=n_options,
                                   ranked_negatives=ranked, question=question))
    return samples


def format_prompt(question: str, options: Sequence[str], pre_prompt: str = "", instruction: str = INSTRUCTION, post_prompt: str = "") -> str:
    """The paper's prompt: question, instruction, then one ``A. class`` line per option."""
    lines = [f"{pre_prompt}{question} {instruction}".strip()]
    lines += [f"{letter}. {name}" for letter, name in zip(LETTERS, options)]
    return "\n".join(lines) + post_prompt


def score_reply(reply: str | None, options: Sequence[str], answer: str) -> dict:
    """Per-sample record: the parsed letter (None if unparseable), and whether it is right."""
    parsed = parse_answer(reply, options)
    return {"parsed": parsed, "answer": answer, "correct": int(parsed == answer), "unparseable": int(parsed is None)}


def image_id(doc: dict) -> str | None:
    """The image's file name without folder and extension (how multi-label files name images), if known."""
    image = doc.get("image")
    path = (image.get("path") if isinstance(image, dict) else None) or doc.get("source_id")
    return os.path.splitext(os.path.basename(path))[0] if path else None


def open_image(value, *, dataset: str, sample_key: str, source_id: str | None = None) -> Image.Image:
    """Decode a stored image ({bytes, path}, a path, or a PIL image) to RGB, naming the sample on failure.

    Decoding is :func:`clsbench.tasks.images.decode_image` (full decode, EXIF orientation, 16-bit and
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
    dataset: str,
    *,
    seed: int = DEFAULT_SEED,
    n_options: int = MAX_OPTIONS,
    negatives: str = "random",
    name_set: str = DEFAULT_NAMES,
    question: str | None = None,
    data_dir: str | os.PathLike | None = None,
):
    """Give every row its question: columns dataset, sample_key, question, options, answer, option_labels, class_name.

    ``negatives`` other than "random" reads the hard-negatives file from the data root
    (see :mod:`clsbench.tasks.negatives`); ``name_set`` picks the class names shown (the paper's by default).

    Works on any ``datasets.Dataset`` from :mod:`clsbench.tasks.data` (a prepared copy or the Hub
    split). Checks the split's label names against the recorded Hub label order and its size
    against the paper's, then reads only the label column; images stay undecoded
    (``Image(decode=False)``) so a corrupt one fails in :func:`open_image`, naming its sample,
    instead of deep in the loader.
    """
    import datasets

    from .data import (
        MISSING_DATA_COLUMN,
        DataError,
        check_label_names,
        check_row_count,
        find_prepared,
        load_rows,
        missing_data_message,
        to_standard_columns,
    )

    spec = get_dataset(dataset)
    if MISSING_DATA_COLUMN in rows.column_names:
        # The task points at the sentinel (a local-only dataset): read the prepared copy from the data root
        # ($CLSBENCH_DATA, else ~/.cache/clsbench/data), else say how to build it.
        if find_prepared(dataset, data_dir) is None:
            raise DataError(missing_data_message(spec, data_dir))
        rows = load_rows(dataset, data_dir)
    if "label" not in rows.column_names and not spec.is_local:
        rows = to_standard_columns(rows, spec.source)
    from_hub = "source_id" not in rows.column_names  # prepared copies carry source_id, Hub splits do not
    where = "the Hub split" if from_hub else "the prepared copy"
    feature_names = getattr(rows.features.get("label"), "names", None)
    check_label_names(dataset, feature_names, where)
    check_row_count(dataset, rows.num_rows, where, strict=from_hub and not spec.is_local)
    classnames = spec.names(name_set) or feature_names
    if classnames is None:
        raise DataError(f"{dataset}: no class names in the package or in the data's label feature")
    ranked = None if negatives == "random" else load_negatives(dataset, negatives, classnames, data_dir)
    labels = [int(label) if label is not None else None for label in rows["label"]]
    samples = make_samples(dataset, labels, classnames, seed=seed, n_options=n_options, negatives=ranked, question=question)
    rows = rows.cast_column("image", datasets.Image(decode=False))
    for column in ("dataset", "sample_key", "question", "options", "answer", "option_labels"):
        values = [getattr(sample, column) for sample in samples]
        rows = rows.add_column(column, [list(value) for value in values] if isinstance(values[0], tuple) else values)
    return rows.add_column("class_name", [classnames[sample.label] for sample in samples])
