"""lmms-eval hooks for the clsbench classification tasks (cls_<dataset>_mcq and its variants).

One ``utils.py`` per task folder, as lmms-eval's own tasks have it: the hooks the YAMLs name with
``!function utils.…``, explicit defs, and (below the marker line) each dataset's generated ``process_docs``.
Each variant folder's generated ``utils.py`` imports :func:`questions_for`, :func:`said_first` and
:func:`data_dir_of` from here. The protocol itself (options, prompt, answer parsing) lives in
``clsbench.tasks`` so that VLMEvalKit and the CLIP baselines ask byte-identical questions; these hooks only
adapt it.
"""

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path

from clsbench.tasks.cls_mcq.task_folder import DATA_ROOT_MARKER
from clsbench.tasks.data.loading import DataError, classnames_for
from clsbench.tasks.data.samples import add_questions, image_id, open_image
from clsbench.tasks.protocol.catalog import FREE_FORM_KINDS, MCQ_VARIANTS
from clsbench.tasks.protocol.questions import (
    INSTRUCTION,
    MCQ_SEPARATOR,
    TEXTONLY_SEPARATOR,
    SampleError,
    format_prompt,
    score_reply,
)
from clsbench.tasks.variants.descriptions import DESCRIBE_PROMPT, TEXTONLY_QUESTION, add_descriptions
from clsbench.tasks.variants.open_world import (
    OPEN_PROMPT,
    closed_world_prompt,
    contains_class,
    exact_class,
    mapped_predictions,
    p2_closed_world_prompt,
)


def data_dir_of(folder: Path) -> str | None:
    """The data root a materialized task folder was made for (its marker file), else None: $CLSBENCH_DATA applies."""
    marker = Path(folder) / DATA_ROOT_MARKER
    return marker.read_text("utf-8").strip() if marker.is_file() else None


# A copy made by `clsbench tasks-path --data-dir DIR` records DIR beside this file (prepared data, negatives files).
_DATA_DIR = data_dir_of(Path(__file__).resolve().parent)


def said_first(hook: Callable) -> Callable:
    """A hook that, when it fails with clsbench's own error, prints the message as one clear line to stderr first:
    lmms-eval otherwise shows it only inside its traceback."""

    @functools.wraps(hook)
    def run(*args, **kwargs):
        try:
            return hook(*args, **kwargs)
        except (DataError, SampleError) as error:
            print(f"\nclsbench: error: {error}\n", file=sys.stderr, flush=True)
            raise

    return run


def questions_for(rows, key: str, suffix: str, data_dir: str | os.PathLike | None = None):
    """The rows of ``cls_<key>…<suffix>`` with their questions, under the variant's settings from the catalog.

    What every generated ``process_docs`` (here and in each variant folder's ``utils.py``) calls."""
    if suffix in MCQ_VARIANTS:
        variant = MCQ_VARIANTS[suffix]
        return add_questions(
            rows,
            key,
            n_options=variant.n_options,
            negatives=variant.negatives,
            name_set=variant.name_set,
            question=variant.question,
            data_dir=data_dir,
        )
    if suffix == "_textonly":
        return add_descriptions(rows, key, data_dir=data_dir)
    if suffix in FREE_FORM_KINDS:
        return add_questions(rows, key, data_dir=data_dir)
    raise KeyError(
        f"no clsbench variant with suffix {suffix!r} (known: {', '.join(map(repr, [*MCQ_VARIANTS, *FREE_FORM_KINDS]))})"
    )


@said_first
def cls_doc_to_visual(doc):
    return [
        open_image(doc["image"], dataset=doc["dataset"], sample_key=doc["sample_key"], source_id=doc.get("source_id"))
    ]


def cls_doc_to_text(doc, lmms_eval_specific_kwargs=None, separator=MCQ_SEPARATOR):
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


def cls_process_results(doc, results):
    """Per sample: 0/1 accuracy and unparseable (lmms-eval averages them, with a stderr) and the decision record."""
    record = score_reply(results[0] if results else None, doc["options"], doc["answer"])
    record.update(sample_key=doc["sample_key"], label=doc["label"], image_id=image_id(doc))
    record["prediction"] = doc["option_labels"][ord(record["parsed"]) - 65] if record["parsed"] else None
    return {"accuracy": record["correct"], "unparseable_rate": record["unparseable"], "decision": record}


def cls_aggregate_decisions(records):
    """The ``decision`` metric's value: how many questions were decided (the records themselves are logged)."""
    return len(records)


# Free-form answers: open world (no options) and closed world (every class name listed).


def _wrapped(prompt: str, lmms_eval_specific_kwargs) -> str:
    kwargs = lmms_eval_specific_kwargs or {}
    return f"{kwargs.get('pre_prompt', '')}{prompt}{kwargs.get('post_prompt', '')}"


def cls_open_doc_to_text(doc, lmms_eval_specific_kwargs=None):
    """P1 Appendix B.1, open world."""
    return _wrapped(OPEN_PROMPT, lmms_eval_specific_kwargs)


def cls_closed_doc_to_text(doc, lmms_eval_specific_kwargs=None):
    """P1 Appendix B.1, closed world: every class name listed."""
    return _wrapped(closed_world_prompt(classnames_for(doc["dataset"], _DATA_DIR)), lmms_eval_specific_kwargs)


def cls_closed_p2_doc_to_text(doc, lmms_eval_specific_kwargs=None):
    """P2 section 2.3, closed world: "What type of object is in this photo? Choose one from ..."."""
    return _wrapped(p2_closed_world_prompt(classnames_for(doc["dataset"], _DATA_DIR)), lmms_eval_specific_kwargs)


def cls_free_form_process_results(doc, results):
    reply = results[0] if results else ""
    record = {
        "dataset": doc["dataset"],
        "sample_key": doc["sample_key"],
        "label": doc["label"],
        "reply": reply,
        "exact": exact_class(reply, classnames_for(doc["dataset"], _DATA_DIR)),
        "contains": int(contains_class(reply, doc["class_name"])),
    }
    return {
        "strict_accuracy": record,
        "mapped_accuracy": record,
        "contains_accuracy": record,
        "out_of_list_rate": record,
    }


def cls_aggregate_strict_accuracy(records):
    return sum(record["exact"] == record["label"] for record in records) / len(records)


def cls_aggregate_contains_accuracy(records):
    return sum(record["contains"] for record in records) / len(records)


def cls_aggregate_out_of_list_rate(records):
    return sum(record["exact"] is None for record in records) / len(records)


def cls_aggregate_mapped_accuracy(records):
    predictions = mapped_predictions(records, classnames_for(records[0]["dataset"], _DATA_DIR))
    return sum(prediction == record["label"] for prediction, record in zip(predictions, records)) / len(records)


# The text-only LLM test: a privileged describe step, then the usual question about a description.


def cls_describe_doc_to_text(doc, lmms_eval_specific_kwargs=None):
    """P1 Appendix C.2: the privileged MLLM is told the class and justifies it."""
    return _wrapped(DESCRIBE_PROMPT.format(class_name=doc["class_name"]), lmms_eval_specific_kwargs)


def cls_describe_process_results(doc, results):
    description = (results[0] if results else "") or ""
    return {"described": {"sample_key": doc["sample_key"], "class_name": doc["class_name"], "description": description}}


def cls_aggregate_described(records):
    return sum(bool(record["description"].strip()) for record in records) / len(records)


def cls_no_visual(doc):
    return []


def cls_textonly_doc_to_text(doc, lmms_eval_specific_kwargs=None):
    """P1 section 5.1: the description in the paper's question, the instruction on the same line, then the options."""
    question = TEXTONLY_QUESTION.format(description=doc["description"])
    return cls_doc_to_text({**doc, "question": question}, lmms_eval_specific_kwargs, separator=TEXTONLY_SEPARATOR)


# --- generated by _generate_configs.py from the registry: do not edit below this line ---


@said_first
def cls_process_docs_imagenet(dataset):
    return questions_for(dataset, "imagenet", "", _DATA_DIR)


@said_first
def cls_process_docs_imagenetv2(dataset):
    return questions_for(dataset, "imagenetv2", "", _DATA_DIR)


@said_first
def cls_process_docs_objectnet(dataset):
    return questions_for(dataset, "objectnet", "", _DATA_DIR)


@said_first
def cls_process_docs_caltech101(dataset):
    return questions_for(dataset, "caltech101", "", _DATA_DIR)


@said_first
def cls_process_docs_cub200(dataset):
    return questions_for(dataset, "cub200", "", _DATA_DIR)


@said_first
def cls_process_docs_food101(dataset):
    return questions_for(dataset, "food101", "", _DATA_DIR)


@said_first
def cls_process_docs_gldv2(dataset):
    return questions_for(dataset, "gldv2", "", _DATA_DIR)


@said_first
def cls_process_docs_logo(dataset):
    return questions_for(dataset, "logo", "", _DATA_DIR)


@said_first
def cls_process_docs_flowers102(dataset):
    return questions_for(dataset, "flowers102", "", _DATA_DIR)


@said_first
def cls_process_docs_stanfordcars(dataset):
    return questions_for(dataset, "stanfordcars", "", _DATA_DIR)


@said_first
def cls_process_docs_pets(dataset):
    return questions_for(dataset, "pets", "", _DATA_DIR)
