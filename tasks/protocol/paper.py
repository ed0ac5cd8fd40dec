"""The paper's Table 2 as data, and which checkpoints are its rows (``clsbench report --reference paper``).

Table 2 of "Revisiting MLLMs: An In-Depth Analysis of Image Classification Abilities" (Liu et al.,
arXiv 2412.16418) is package data (``data/paper/table2.csv``, transcribed from the paper): 26-option
accuracy of 6 CLIP-style models and 10 MLLMs. :data:`MLLM_ROWS` maps the checkpoints users run (Hub
ids, as in ``pretrained=``; VLMEvalKit model names) to those rows; the CLIP-style rows are matched by
the open_clip pair ``clsbench clip`` records in its results (``paper_row``).
"""

from __future__ import annotations

import csv
import io
from functools import cache
from importlib import resources

from clsbench.tasks.protocol.catalog import checkpoint_slug, parse_vlmeval_model_name
from clsbench.tasks.protocol.registry import DATASETS

# Hub id or VLMEvalKit model name -> Table 2 row. The paper names the model, not the checkpoint; these are
# the public checkpoints of those models (the -hf conversions hold the same weights in transformers' layout).
MLLM_ROWS: dict[str, str] = {
    "Qwen/Qwen-VL-Chat": "Qwen-VL",
    "qwen_chat": "Qwen-VL",
    "llava-hf/llava-1.5-7b-hf": "LLaVA-1.5",
    "liuhaotian/llava-v1.5-7b": "LLaVA-1.5",
    "llava_v1.5_7b": "LLaVA-1.5",
    "llava-hf/llava-v1.6-vicuna-7b-hf": "LLaVA-1.6",
    "liuhaotian/llava-v1.6-vicuna-7b": "LLaVA-1.6",
    "llava_next_vicuna_7b": "LLaVA-1.6",
    "deepseek-ai/deepseek-vl-7b-chat": "DeepSeek-VL",
    "deepseek-community/deepseek-vl-7b-chat": "DeepSeek-VL",
    "deepseek_vl_7b": "DeepSeek-VL",
    "microsoft/Phi-3-vision-128k-instruct": "Phi-3-Vision",
    "Phi-3-Vision": "Phi-3-Vision",
    "openbmb/MiniCPM-Llama3-V-2_5": "MiniCPM-V-2.5",
    "MiniCPM-Llama3-V-2_5": "MiniCPM-V-2.5",
    "OpenGVLab/InternVL2-8B": "InternVL-2",
    "InternVL2-8B": "InternVL-2",
    "openbmb/MiniCPM-V-2_6": "MiniCPM-V-2.6",
    "MiniCPM-V-2_6": "MiniCPM-V-2.6",
    "lmms-lab/llava-onevision-qwen2-7b-ov": "LLaVA-OV",
    "llava-hf/llava-onevision-qwen2-7b-ov-hf": "LLaVA-OV",
    "llava_onevision_qwen2_7b_ov": "LLaVA-OV",
    "llava-onevision-qwen2-7b-ov-hf": "LLaVA-OV",
    "Qwen/Qwen2-VL-7B-Instruct": "Qwen2-VL",
    "Qwen2-VL-7B-Instruct": "Qwen2-VL",
}
_LOWER = {name.casefold(): row for name, row in MLLM_ROWS.items()}

# group -> the column of table2.csv that holds the paper's printed average of that group
PRINTED_AVERAGES = {"general": "general_avg", "fine-grained": "finegrained_avg"}


# clsbench's own VLMEvalKit names carry the checkpoint's slug (``clsbench_qwen2-vl-7b-instruct[-score]``): the rows
# by the slugs of the Hub ids above (two ids with one slug, as DeepSeek-VL's, name one row).
_BY_SLUG: dict[str, str] = {checkpoint_slug(name): row for name, row in MLLM_ROWS.items() if "/" in name}


def mllm_row(model: str | None) -> str | None:
    """The Table 2 row of a checkpoint (Hub id, case-insensitive), a VLMEvalKit model name or clsbench's VLMEvalKit
    name of a checkpoint (any answer mode: the row is the model; which protocol it ran is the report's to say)."""
    text = str(model or "")
    if text.casefold() in _LOWER:
        return _LOWER[text.casefold()]
    parsed = parse_vlmeval_model_name(text)
    return _BY_SLUG.get(parsed[0]) if parsed else None


@cache
def table2() -> dict[str, dict]:
    """Table 2 rows by model name: ``{"kind": "clip"|"mllm", "accuracy": {dataset key: 0..1}, "averages": ...}``.

    ``averages`` holds the group averages as the paper prints them (``{"general": 93.9, "fine-grained": 91.2}``,
    percent): recomputed from the printed cells, five of them land 0.1 away (the paper averaged unrounded numbers),
    so a report shows these and never recomputes the paper's.
    """
    text = resources.files("clsbench.tasks.data").joinpath("paper", "table2.csv").read_text("utf-8")
    by_abbreviation = {spec.abbreviation: key for key, spec in DATASETS.items()}
    rows = {}
    for line in csv.DictReader(io.StringIO(text)):
        accuracy = {
            by_abbreviation[column]: float(value) / 100
            for column, value in line.items()
            if column in by_abbreviation and value
        }
        averages = {group: float(line[column]) for group, column in PRINTED_AVERAGES.items() if line.get(column)}
        rows[line["model"]] = {"kind": line["kind"], "size": line["size"], "accuracy": accuracy, "averages": averages}
    return rows
