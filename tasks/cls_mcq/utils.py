"""lmms-eval hooks for the clsbench classification tasks (cls_<dataset>_mcq).

The protocol itself (options, prompt, answer parsing) lives in ``clsbench.tasks`` so that
VLMEvalKit and the CLIP baselines ask byte-identical questions; these hooks only adapt it.
"""

from functools import partial

from clsbench.tasks.mcq import INSTRUCTION, add_questions, format_prompt, open_image, score_reply


def _process_docs(dataset_key, dataset):
    return add_questions(dataset, dataset_key)


process_docs_imagenet = partial(_process_docs, "imagenet")
process_docs_imagenetv2 = partial(_process_docs, "imagenetv2")
process_docs_objectnet = partial(_process_docs, "objectnet")
process_docs_caltech101 = partial(_process_docs, "caltech101")
process_docs_cub200 = partial(_process_docs, "cub200")
process_docs_food101 = partial(_process_docs, "food101")
process_docs_gldv2 = partial(_process_docs, "gldv2")
process_docs_logo = partial(_process_docs, "logo")
process_docs_flowers102 = partial(_process_docs, "flowers102")
process_docs_stanfordcars = partial(_process_docs, "stanfordcars")


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
