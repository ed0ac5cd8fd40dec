"""A dataset's questions as a table: ``clsbench questions --datasets DATASET`` writes it as parquet.

One row per sample of the evaluation split, made by :func:`clsbench.tasks.data.samples.add_questions` (the route
every toolkit takes), so a Hub dataset or the upstream lmms-eval kit can carry the options instead of drawing
them. Columns: ``dataset``, ``sample_key``, ``label``, ``class_name``, ``question``, ``wording_index``,
``options`` (names, A first), ``option_labels`` (their class indices), ``answer`` (the letter), ``n_options``,
``seed``, ``class_names`` (the name set), ``protocol_version``, and ``source_id`` where the copy has it.
"""

from __future__ import annotations

import os
from pathlib import Path

from clsbench.tasks.protocol.catalog import PROTOCOL_VERSION
from clsbench.tasks.protocol.draws import MAX_OPTIONS
from clsbench.tasks.protocol.questions import DEFAULT_SEED
from clsbench.tasks.protocol.registry import DEFAULT_NAMES, get_dataset

COLUMNS = (
    "dataset",
    "sample_key",
    "label",
    "class_name",
    "question",
    "wording_index",
    "options",
    "option_labels",
    "answer",
    "n_options",
    "seed",
    "class_names",
    "protocol_version",
)


def question_rows(
    key: str,
    data_dir: str | os.PathLike | None = None,
    *,
    seed: int = DEFAULT_SEED,
    n_options: int = MAX_OPTIONS,
    name_set: str = DEFAULT_NAMES,
):
    """The split's questions as a ``datasets.Dataset`` with :data:`COLUMNS` (no images)."""
    from clsbench.tasks.data.loading import load_rows
    from clsbench.tasks.data.samples import add_questions

    spec = get_dataset(key)
    docs = add_questions(load_rows(key, data_dir), key, seed=seed, n_options=n_options, name_set=name_set, checked=True)
    keep = [column for column in (*COLUMNS, "source_id") if column in docs.column_names]
    docs = docs.select_columns(keep)
    count = docs.num_rows
    docs = docs.add_column("wording_index", [spec.questions.index(question) for question in docs["question"]])
    for name, value in (
        ("n_options", n_options),
        ("seed", seed),
        ("class_names", name_set),
        ("protocol_version", PROTOCOL_VERSION),
    ):
        docs = docs.add_column(name, [value] * count)
    return docs.select_columns([column for column in (*COLUMNS, "source_id") if column in docs.column_names])


def write_question_table(key: str, output: str | os.PathLike, data_dir=None, **settings) -> Path:
    """Write :func:`question_rows` to ``output`` (parquet); returns the path."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    question_rows(key, data_dir, **settings).to_parquet(str(output))
    return output
