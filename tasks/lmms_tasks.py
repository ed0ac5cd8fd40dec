"""The lmms-eval task folder, generated from the registry.

``cls_mcq/`` in this package is the upstreamable folder: a template, ``utils.py`` hooks, one YAML
per dataset and three group YAMLs. The per-dataset and group YAMLs are written by
:func:`write_task_folder` from the registry (run ``python -m clsbench.tasks.lmms_tasks`` after
editing it; a test fails when they drift). Datasets with no Hub copy point at a one-row sentinel
file whose ``process_docs`` raises the message naming ``clsbench prepare``.

:func:`task_folder_for` gives lmms-eval's ``--include_path``: the package folder itself, or, when
the data root holds prepared copies, a copy of it whose YAMLs read those copies instead.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from .data import MISSING_DATA_SENTINEL, PreparedData, data_root, find_prepared
from .registry import DATASETS, GROUPS, DatasetSpec, HubSource

PACKAGE_TASK_FOLDER = Path(__file__).with_name("cls_mcq")
GROUP_TASKS = {"general": "cls_general_mcq", "fine-grained": "cls_finegrained_mcq"}
ALL_TASKS_GROUP = "cls_mcq"
_HEADER = "# Generated from clsbench.tasks.registry by `python -m clsbench.tasks.lmms_tasks`: edit the registry, not this file.\n"


def task_name(key: str) -> str:
    return f"cls_{key}_mcq"


def _data_lines(spec: DatasetSpec, prepared: PreparedData | None) -> list[str]:
    if prepared is not None:
        return ["dataset_path: parquet", "dataset_kwargs:", "  data_files:", f"    test: {prepared.parquet_glob}", "test_split: test"]
    source = spec.source
    if not isinstance(source, HubSource):
        return ["dataset_path: parquet", "dataset_kwargs:", "  data_files:", f"    test: {MISSING_DATA_SENTINEL}", "test_split: test"]
    if source.data_files:
        url = f"hf://datasets/{source.repo_id}@{source.revision}/{source.data_files}"
        return ["dataset_path: parquet", "dataset_kwargs:", "  data_files:", f"    {source.split}: {url}", f"test_split: {source.split}"]
    return [f"dataset_path: {source.repo_id}", "dataset_kwargs:", f"  revision: {source.revision}", f"test_split: {source.split}"]


def task_yaml(spec: DatasetSpec, prepared: PreparedData | None = None) -> str:
    lines = [
        f"task: {task_name(spec.key)}",
        *_data_lines(spec, prepared),
        f"process_docs: !function utils.process_docs_{spec.key}",
        "include: _default_template_yaml",
    ]
    return _HEADER + "\n".join(lines) + "\n"


def _group_yaml(name: str, members: list[str]) -> str:
    lines = [f"group: {name}", "task:", *(f"  - {member}" for member in members)]
    lines += ["aggregate_metric_list:"]
    for metric in ("accuracy", "unparseable_rate"):
        lines += [f"  - metric: {metric}", "    aggregation: mean", "    weight_by_size: false"]
    lines += ["metadata:", "  version: 1.0"]
    return _HEADER + "\n".join(lines) + "\n"


def generated_files(data_dir: str | os.PathLike | None = None, *, use_prepared: bool = False) -> dict[str, str]:
    """File name -> text of every generated YAML (the template and utils.py are hand-written)."""
    files = {}
    for spec in DATASETS.values():
        prepared = find_prepared(spec.key, data_dir) if use_prepared else None
        files[f"{task_name(spec.key)}.yaml"] = task_yaml(spec, prepared)
    for group, name in GROUP_TASKS.items():
        members = [task_name(spec.key) for spec in DATASETS.values() if spec.group == group]
        files[f"{name}.yaml"] = _group_yaml(name, members)
    files[f"{ALL_TASKS_GROUP}.yaml"] = _group_yaml(ALL_TASKS_GROUP, [GROUP_TASKS[group] for group in GROUPS])
    return files


def write_task_folder(folder: Path = PACKAGE_TASK_FOLDER) -> None:
    """Regenerate the package's YAMLs (Hub sources, sentinel for local-only data)."""
    for name, text in generated_files().items():
        (folder / name).write_text(text, "utf-8")


def task_folder_for(data_dir: str | os.PathLike | None = None) -> Path:
    """The folder for ``lmms-eval --include_path``: prepared local copies win over the Hub."""
    root = data_root(data_dir)
    if not any(find_prepared(key, root) for key in DATASETS):
        return PACKAGE_TASK_FOLDER
    folder = root / "_lmms_tasks"
    shutil.copytree(PACKAGE_TASK_FOLDER, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    for name, text in generated_files(root, use_prepared=True).items():
        target = folder / name
        if not target.is_file() or target.read_text("utf-8") != text:
            target.write_text(text, "utf-8")
    return folder


if __name__ == "__main__":
    write_task_folder()
    print(f"wrote {len(generated_files())} YAMLs to {PACKAGE_TASK_FOLDER}", file=sys.stderr)
