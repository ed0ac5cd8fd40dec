"""The text-only LLM test (the paper's section 5.1 and Appendix C.2): is the class knowable from words alone?

1. ``cls_<dataset>_describe``: a privileged MLLM sees the image *and its class* and writes what in
   the image identifies it (:data:`DESCRIBE_PROMPT`, the paper's Appendix C.2 prompt).
2. ``clsbench descriptions RUN... --data-dir ROOT`` collects those replies from lmms-eval's logged
   samples into ``ROOT/descriptions/<dataset>.json`` (``{sample_key: description}``), replacing
   any mention of the class name with "[the class]" so the answer is not given away.
3. ``cls_<dataset>_textonly``: any LLM gets the paper's section 5.1 question
   (:data:`TEXTONLY_QUESTION`) with the description, the usual instruction and the same options, and no image.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

from clsbench.tasks.data.loading import DataError, data_root
from clsbench.tasks.protocol.catalog import task_name
from clsbench.tasks.protocol.registry import DATASETS

# P1 Appendix C.2, verbatim: the privileged MLLM justifies the (given) class without naming it.
DESCRIBE_PROMPT = (
    "You will be given a {class_name} image. Your task is to identify the {class_name} in it and summarize the "
    "reason for this judgment. You should focus on several aspects, including:\n"
    "- Appearance: Describe the object's shape, color, texture, and any distinct features.\n"
    "- Context or environment: Where is this object commonly found or used? Describe its typical environment or "
    "surroundings.\n"
    "- Function or behavior: Explain how this object is typically used or behaves (if it's an animal or device, "
    "for example).\n"
    "- Any other relevant information: Mention any notable facts or characteristics that help define this object "
    "class.\n"
    "NOTE:\n"
    "- Keep the reason concise, with one or two sentences for each aspect.\n"
    "- Do not use the category or synonym names of {class_name} in your answer, instead using 'it'.\n"
    "- Just output the reason."
)
# P1 section 5.1, verbatim: the question the bare LLM gets, followed by the usual instruction and options.
TEXTONLY_QUESTION = "Here is a description of someone object. {description} Can you tell me what object it describes?"
REDACTED = "[the class]"


def redact(text: str, class_name: str) -> str:
    return re.sub(re.escape(class_name), REDACTED, text, flags=re.IGNORECASE)


def descriptions_path(dataset: str, data_dir: str | os.PathLike | None = None) -> Path:
    return data_root(data_dir) / "descriptions" / f"{dataset}.json"


FORMAT = "clsbench-descriptions-v1"


def load_descriptions(dataset: str, data_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """``{sample_key: description}`` from the dataset's descriptions file (its ``produced_by`` says which runs)."""
    path = descriptions_path(dataset, data_dir)
    if not path.is_file():
        raise DataError(
            f"{dataset}: no descriptions at {path}. Run the task {task_name(dataset, '_describe')} with a privileged "
            f"MLLM and --log_samples, then\n  clsbench descriptions OUTPUT_PATH --data-dir {data_root(data_dir)}"
        )
    try:
        content = json.loads(path.read_text("utf-8"))
    except ValueError as error:
        raise DataError(
            f"{dataset}: {path} is not readable JSON ({error}); run `clsbench descriptions` again"
        ) from error
    if isinstance(content, dict) and content.get("format") == FORMAT:
        return content["descriptions"]
    if isinstance(content, dict) and all(isinstance(v, str) for v in content.values()):
        return content  # written by clsbench 0.1, without provenance
    raise DataError(f"{dataset}: {path} is not a clsbench descriptions file")


def add_descriptions(rows, dataset: str, *, data_dir: str | os.PathLike | None = None):
    """``process_docs`` of the text-only task: the MCQ columns plus each sample's ``description``."""
    from clsbench.tasks.data.samples import add_questions

    descriptions = load_descriptions(dataset, data_dir)
    docs = add_questions(rows, dataset, data_dir=data_dir)
    missing = [key for key in docs["sample_key"] if key not in descriptions]
    if missing:
        raise DataError(
            f"{dataset}: {len(missing)} samples have no description (first: sample {missing[0]}); "
            f"run {task_name(dataset, '_describe')} on all of them"
        )
    return docs.add_column("description", [descriptions[key] for key in docs["sample_key"]])


def collect_descriptions(
    run_dirs: Iterable[str | os.PathLike], out_root: str | os.PathLike | None = None
) -> dict[str, Path]:
    """Gather the describe tasks' logged replies (newest run wins per sample) into description files."""
    found: dict[str, dict[str, str]] = {}
    sources: dict[str, list[dict]] = {}
    for run_dir in run_dirs:
        for key in DATASETS:
            files = sorted(
                Path(run_dir).rglob(f"*_samples_{task_name(key, '_describe')}.jsonl"), key=lambda p: p.stat().st_mtime
            )
            for path in files:
                for line in path.read_text("utf-8").splitlines():
                    record = json.loads(line)["described"]
                    found.setdefault(key, {})[record["sample_key"]] = redact(
                        record["description"], record["class_name"]
                    )
                sources.setdefault(key, []).append(_describe_run(path))
    if not found:
        raise DataError("no logged samples of a cls_<dataset>_describe task found (run it with --log_samples)")
    written = {}
    for key, descriptions in found.items():
        path = descriptions_path(key, out_root)
        path.parent.mkdir(parents=True, exist_ok=True)
        content = {"format": FORMAT, "dataset": key, "produced_by": sources.get(key, []), "descriptions": descriptions}
        path.write_text(json.dumps(content, indent=1, ensure_ascii=False), "utf-8")
        written[key] = path
    return written


def _describe_run(samples: Path) -> dict:
    """Which model wrote a describe run: its lmms-eval results file's model and model_args, beside the samples."""
    prefix = samples.name.split("_samples_")[0]
    results = samples.with_name(f"{prefix}_results.json")
    config = {}
    if results.is_file():
        try:
            config = json.loads(results.read_text("utf-8")).get("config") or {}
        except ValueError:
            config = {}
    return {"samples": str(samples), "model": config.get("model"), "model_args": config.get("model_args")}
