"""lmms-eval hooks for the clsbench classification tasks (cls_<dataset>_mcq).

The protocol itself (options, prompt, answer parsing) lives in ``clsbench.tasks`` so that
VLMEvalKit and the CLIP baselines ask byte-identical questions; these hooks only adapt it.
"""

from pathlib import Path

from clsbench.tasks.lmms_tasks import DATA_ROOT_MARKER, process_docs_hook
from clsbench.tasks.mcq import INSTRUCTION, format_prompt, open_image, score_reply

# A folder made by `clsbench tasks-path --data-dir DIR` records DIR here (prepared data, negatives files).
_MARKER = Path(__file__).with_name(DATA_ROOT_MARKER)
_DATA_DIR = _MARKER.read_text("utf-8").strip() if _MARKER.is_file() else None


def __getattr__(name):
    """``process_docs_<dataset><variant suffix>``, e.g. process_docs_imagenet or process_docs_cub200_4opt."""
    if name.startswith("process_docs_"):
        return process_docs_hook(name[len("process_docs_") :], _DATA_DIR)
    raise AttributeError(name)


def doc_to_visual(doc):
    return [open_image(doc["image"], dataset=doc["dataset"], sample_key=doc["sample_key"], source_id=doc.get("source_id"))]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    kwargs = lmms_eval_specific_kwargs or {}
    return format_prompt(
        doc["question"],
        doc["options"],
        pre_prompt=kwargs.get("pre_prompt", ""),
        instruction=kwargs.get("instruction", INSTRUCTION),
        post_prompt=kwargs.get("post_prompt", ""),
    )


def process_results(doc, results):
    record = score_reply(results[0] if results else None, doc["options"], doc["answer"])
    record.update(sample_key=doc["sample_key"], label=doc["label"])
    return {"accuracy": record, "unparseable_rate": record["unparseable"]}


def aggregate_accuracy(records):
    return sum(record["correct"] for record in records) / len(records) if records else float("nan")
