"""VLMEvalKit names of clsbench's datasets (from the registry) and where VLMEvalKit keeps their files."""

from __future__ import annotations

import os
from pathlib import Path

from clsbench.tasks.protocol.catalog import MCQ_VARIANTS, RANDOM, VLMEVAL_DATASETS, task_name
from clsbench.tasks.protocol.draws import MAX_OPTIONS
from clsbench.tasks.protocol.registry import DATASETS, DEFAULT_NAMES, get_dataset

RESULT_SUFFIX = "_clsbench_result"


def vlmeval_name(key: str) -> str:
    """The VLMEvalKit dataset name (``ClsBench_food101``: the registry's; it trips none of VLMEvalKit's name checks)."""
    return get_dataset(key).vlmeval_name


NAME_TO_KEY = {name: key for name, (key, _) in VLMEVAL_DATASETS.items()}


# lmms-eval task names of the variants that differ from the paper's protocol only in the class names shown
# (``cls_imagenet_mcq_openai``): each is one VLMEvalKit dataset (``ClsBench_imagenet_openai``).
NAME_SET_TASKS: dict[str, str] = {
    task_name(key, suffix): spec.vlmeval_name_for(variant.name_set)
    for suffix, variant in MCQ_VARIANTS.items()
    if variant.name_set != DEFAULT_NAMES
    and (variant.n_options, variant.negatives, variant.question) == (MAX_OPTIONS, RANDOM, None)
    for key, spec in DATASETS.items()
    if variant.applies_to(spec)
}


def export_command(name: str, out_dir: str | os.PathLike) -> str:
    """The command that writes VLMEvalKit dataset ``name``'s TSV into ``out_dir``, class-name set included."""
    key, name_set = VLMEVAL_DATASETS.get(name, ("DATASET", DEFAULT_NAMES))
    names = "" if name_set == DEFAULT_NAMES else f" --class-names {name_set}"
    return f"clsbench export-vlmeval --datasets {key} --output-dir {out_dir}{names}"


def lmu_data_root(explicit: str | os.PathLike | None = None) -> Path:
    """VLMEvalKit's data folder: ``explicit``, else ``$LMUData``, else ``~/LMUData`` (VLMEvalKit's own default)."""
    return Path(explicit or os.environ.get("LMUData") or Path.home() / "LMUData").expanduser().resolve()


def images_folder(lmu_data: Path, name: str) -> Path:
    """Where VLMEvalKit keeps a dataset's image files (``img_root_map`` is the identity for our names)."""
    return Path(lmu_data) / "images" / name
