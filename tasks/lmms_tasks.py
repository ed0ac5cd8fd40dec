"""The lmms-eval task folder, generated from the registry.

``cls_mcq/`` in this package is the upstreamable folder: a template, ``utils.py`` hooks, one YAML
per dataset and protocol variant and three group YAMLs per variant (:data:`MCQ_VARIANTS`: the
paper's 26 random options, the 4/8/16-option ablation, text-similar and CLIP-hard negatives).
The per-dataset and group YAMLs are written by
:func:`write_task_folder` from the registry (run ``python -m clsbench.tasks.lmms_tasks`` after
editing it; a test fails when they drift). Datasets with no Hub copy point at a one-row sentinel
file whose ``process_docs`` raises the message naming ``clsbench prepare``.

:func:`task_folder_for` gives lmms-eval's ``--include_path``: the package folder itself, or, when
the data root holds prepared copies, a copy of it whose YAMLs read those copies instead.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from .data import MISSING_DATA_SENTINEL, PreparedData, data_root, find_prepared
from .options import MAX_OPTIONS
from .registry import DATASETS, DEFAULT_NAMES, GROUPS, DatasetSpec, HubSource

PACKAGE_TASK_FOLDER = Path(__file__).with_name("cls_mcq")
GROUP_TASKS = {"general": "cls_general_mcq", "fine-grained": "cls_finegrained_mcq"}
ALL_TASKS_GROUP = "cls_mcq"
DATA_ROOT_MARKER = "clsbench_data_root.txt"  # in a materialized folder: where its hooks find negatives files
# Bumped whenever a question, prompt or score changes (2.0: Food-101 label order fixed, ImageNet shows the
# paper's WordNet names, the papers' verbatim free-form prompts).
TASK_VERSION = "2.0"
_HEADER = "# Generated from clsbench.tasks.registry by `python -m clsbench.tasks.lmms_tasks`: edit the registry, not this file.\n"


@dataclass(frozen=True)
class McqVariant:
    """A protocol variant: one task per dataset, plus three groups, all named with ``suffix``."""

    suffix: str
    n_options: int = MAX_OPTIONS
    negatives: str = "random"  # or a method of clsbench.tasks.negatives
    name_set: str = DEFAULT_NAMES  # another class-name set: only datasets that offer it get the variant, no groups
    question: str | None = None  # one question for every sample instead of the dataset's ten wordings

    def applies_to(self, spec: DatasetSpec) -> bool:
        return self.name_set in spec.name_sets

    @property
    def has_groups(self) -> bool:
        return self.name_set == DEFAULT_NAMES


MCQ_VARIANTS: dict[str, McqVariant] = {
    variant.suffix: variant
    for variant in (
        McqVariant(""),  # the paper's protocol
        McqVariant("_4opt", 4),  # Appendix B.2 option-count ablation
        McqVariant("_8opt", 8),
        McqVariant("_16opt", 16),
        McqVariant("_textsim", MAX_OPTIONS, "text-similar"),  # Appendix B.3
        # The 5-way hard protocol of "Understanding the Fine-Grained Knowledge Capabilities of VLMs".
        McqVariant("_cliphard", 5, "clip-hard", question="What type of object is in this photo?"),
        McqVariant("_openai", name_set="openai"),  # ImageNet with OpenAI's CLIP class names instead of the paper's
    )
}


@dataclass(frozen=True)
class FreeFormKind:
    """Tasks beyond the MCQ variants: open/closed-world answers and the text-only LLM test."""

    suffix: str
    template: str
    metrics: tuple[str, ...]
    group: str | None  # one group over all its datasets, or none
    overrides: tuple[str, ...] = ()
    max_classes: int | None = None  # closed world lists every class name in the prompt


_FREE_FORM_METRICS = ("strict_accuracy", "mapped_accuracy", "contains_accuracy", "out_of_list_rate")
FREE_FORM_KINDS: dict[str, FreeFormKind] = {
    kind.suffix: kind
    for kind in (
        FreeFormKind("_open", "_open_template_yaml", _FREE_FORM_METRICS, "cls_open"),
        FreeFormKind(
            "_closed", "_open_template_yaml", _FREE_FORM_METRICS, "cls_closed",
            overrides=("doc_to_text: !function utils.closed_doc_to_text",), max_classes=256,
        ),
        FreeFormKind(
            "_closed_p2", "_open_template_yaml", _FREE_FORM_METRICS, "cls_closed_p2",
            overrides=("doc_to_text: !function utils.closed_p2_doc_to_text",), max_classes=256,
        ),
        FreeFormKind("_describe", "_describe_template_yaml", ("described",), None),
        FreeFormKind(
            "_textonly", "_default_template_yaml", ("accuracy", "unparseable_rate"), "cls_textonly",
            overrides=("doc_to_visual: !function utils.no_visual", "doc_to_text: !function utils.textonly_doc_to_text"),
        ),
    )
}


def task_name(key: str, suffix: str = "") -> str:
    """``cls_<key>_mcq<suffix>`` for the MCQ variants, ``cls_<key><suffix>`` for the free-form kinds."""
    return f"cls_{key}{suffix}" if suffix in FREE_FORM_KINDS else f"cls_{key}_mcq{suffix}"


def kind_datasets(kind: FreeFormKind) -> list[DatasetSpec]:
    if kind.max_classes is None:
        return list(DATASETS.values())
    return [spec for spec in DATASETS.values() if spec.classnames and len(spec.classnames) <= kind.max_classes]


def group_name(group: str | None, suffix: str = "") -> str:
    """The group task for a paper group ("general", "fine-grained") or all ten (None)."""
    return (GROUP_TASKS[group] if group else ALL_TASKS_GROUP) + suffix


def datasets_of_tasks(names: str | list[str]) -> list[str]:
    """Dataset keys behind task or group names (``cls_mcq``, ``cls_food101_mcq_4opt``, ``cls_open``, ...),
    read from the same registry facts the task and group YAMLs are generated from."""
    members: dict[str, list[str]] = {}
    for suffix, variant in MCQ_VARIANTS.items():
        for spec in DATASETS.values():
            if variant.applies_to(spec):
                members[task_name(spec.key, suffix)] = [spec.key]
        if variant.has_groups:
            for group in GROUPS:
                members[group_name(group, suffix)] = [spec.key for spec in DATASETS.values() if spec.group == group]
            members[group_name(None, suffix)] = list(DATASETS)
    for suffix, kind in FREE_FORM_KINDS.items():
        keys = [spec.key for spec in kind_datasets(kind)]
        members.update({task_name(key, suffix): [key] for key in keys})
        if kind.group:
            members[kind.group] = keys
    wanted = [names] if isinstance(names, str) else list(names)
    found = [key for part in wanted for name in part.split(",") if name for key in members.get(name.strip(), [])]
    return list(dict.fromkeys(found))


def said_first(hook: Callable) -> Callable:
    """A hook that, when it fails with clsbench's own error, prints the message as one clear line to stderr first:
    lmms-eval otherwise shows it only inside its traceback."""

    @functools.wraps(hook)
    def run(*args, **kwargs):
        from .data import DataError
        from .mcq import SampleError

        try:
            return hook(*args, **kwargs)
        except (DataError, SampleError) as error:
            print(f"\nclsbench: error: {error}\n", file=sys.stderr, flush=True)
            raise

    return run


def process_docs_hook(name: str, data_dir: str | os.PathLike | None = None) -> Callable:
    """The ``process_docs`` for ``<dataset><suffix>`` (the part after ``process_docs_`` in a YAML)."""
    return said_first(_process_docs_hook(name, data_dir))


def _process_docs_hook(name: str, data_dir: str | os.PathLike | None = None) -> Callable:
    from .descriptions import add_descriptions
    from .mcq import add_questions

    for key in DATASETS:
        suffix = name[len(key) :] if name.startswith(key) else None
        if suffix is None:
            continue
        if suffix in MCQ_VARIANTS:
            variant = MCQ_VARIANTS[suffix]
            return partial(
                add_questions, dataset=key, n_options=variant.n_options, negatives=variant.negatives,
                name_set=variant.name_set, question=variant.question, data_dir=data_dir,
            )
        if suffix == "_textonly":
            return partial(add_descriptions, dataset=key, data_dir=data_dir)
        if suffix in FREE_FORM_KINDS:
            return partial(add_questions, dataset=key, data_dir=data_dir)
    raise AttributeError(f"no clsbench process_docs hook for {name!r}")


def _data_lines(spec: DatasetSpec, prepared: PreparedData | None) -> list[str]:
    if prepared is not None:
        return ["dataset_path: parquet", "dataset_kwargs:", "  data_files:", f"    test: {prepared.parquet_glob}", "test_split: test"]
    source = spec.source
    if not isinstance(source, HubSource):
        return ["dataset_path: parquet", "dataset_kwargs:", "  data_files:", f"    test: {MISSING_DATA_SENTINEL}", "test_split: test"]
    return [
        f"dataset_path: {source.builder}",
        "dataset_kwargs:",
        "  data_files:",
        f"    {source.split}: {source.data_url}",
        f"test_split: {source.split}",
    ]


def task_yaml(spec: DatasetSpec, prepared: PreparedData | None = None, variant: McqVariant | FreeFormKind = MCQ_VARIANTS[""]) -> str:
    template = variant.template if isinstance(variant, FreeFormKind) else "_default_template_yaml"
    lines = [
        f"task: {task_name(spec.key, variant.suffix)}",
        *_data_lines(spec, prepared),
        f"process_docs: !function utils.process_docs_{spec.key}{variant.suffix}",
        f"include: {template}",
    ]
    if isinstance(variant, FreeFormKind):
        lines += list(variant.overrides)
    elif variant.suffix:
        lines += ["metadata:", f"  version: {TASK_VERSION}", "  seed: 0", f"  n_options: {variant.n_options}", f"  negatives: {variant.negatives}",
                  f"  class_names: {variant.name_set}"]
    return _HEADER + "\n".join(lines) + "\n"


def _group_yaml(name: str, members: list[str], metrics: tuple[str, ...] = ("accuracy", "unparseable_rate")) -> str:
    lines = [f"group: {name}", "task:", *(f"  - {member}" for member in members)]
    lines += ["aggregate_metric_list:"]
    for metric in metrics:
        lines += [f"  - metric: {metric}", "    aggregation: mean", "    weight_by_size: false"]
    lines += ["metadata:", f"  version: {TASK_VERSION}"]
    return _HEADER + "\n".join(lines) + "\n"


def generated_files(data_dir: str | os.PathLike | None = None, *, use_prepared: bool = False) -> dict[str, str]:
    """File name -> text of every generated YAML (the template and utils.py are hand-written)."""
    files = {}
    prepared = {key: find_prepared(key, data_dir) if use_prepared else None for key in DATASETS}
    for suffix, variant in MCQ_VARIANTS.items():
        for spec in DATASETS.values():
            if variant.applies_to(spec):
                files[f"{task_name(spec.key, suffix)}.yaml"] = task_yaml(spec, prepared[spec.key], variant)
        if not variant.has_groups:
            continue
        for group in GROUPS:
            members = [task_name(spec.key, suffix) for spec in DATASETS.values() if spec.group == group]
            files[f"{group_name(group, suffix)}.yaml"] = _group_yaml(group_name(group, suffix), members)
        all_name = group_name(None, suffix)
        files[f"{all_name}.yaml"] = _group_yaml(all_name, [group_name(group, suffix) for group in GROUPS])
    for suffix, kind in FREE_FORM_KINDS.items():
        members = kind_datasets(kind)
        for spec in members:
            files[f"{task_name(spec.key, suffix)}.yaml"] = task_yaml(spec, prepared[spec.key], kind)
        if kind.group:
            files[f"{kind.group}.yaml"] = _group_yaml(kind.group, [task_name(spec.key, suffix) for spec in members], kind.metrics)
    return files


def write_task_folder(folder: Path = PACKAGE_TASK_FOLDER) -> None:
    """Regenerate the package's YAMLs (Hub sources, sentinel for local-only data)."""
    for name, text in generated_files().items():
        (folder / name).write_text(text, "utf-8")


def task_folder_for(data_dir: str | os.PathLike | None = None) -> Path:
    """The folder for ``lmms-eval --include_path``: prepared local copies win over the Hub."""
    root = data_root(data_dir)
    has_files = (root / "negatives").is_dir() or (root / "descriptions").is_dir()
    if not has_files and not any(find_prepared(key, root) for key in DATASETS):
        return PACKAGE_TASK_FOLDER
    folder = root / "_lmms_tasks"
    shutil.copytree(PACKAGE_TASK_FOLDER, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    for name, text in {**generated_files(root, use_prepared=True), DATA_ROOT_MARKER: f"{root}\n"}.items():
        target = folder / name
        if not target.is_file() or target.read_text("utf-8") != text:
            target.write_text(text, "utf-8")
    return folder


if __name__ == "__main__":
    write_task_folder()
    print(f"wrote {len(generated_files())} YAMLs to {PACKAGE_TASK_FOLDER}", file=sys.stderr)
