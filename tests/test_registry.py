"""The registry is the one source of truth; the lmms-eval folder must agree with it."""

import re
import runpy

from clsbench.tasks.cls_mcq.task_folder import PACKAGE_TASK_FOLDER
from clsbench.tasks.protocol.catalog import task_name
from clsbench.tasks.protocol.registry import DATASETS, HubSource, get_dataset

generated_files = runpy.run_path(str(PACKAGE_TASK_FOLDER / "_generate_configs.py"))["generated_files"]  # a script

PAPER = {  # key: (abbreviation, group, Table 1 size, number of classes)
    "imagenet": ("IMN", "general", 50_000, 1000),
    "imagenetv2": ("IMNv2", "general", 10_000, 1000),
    "objectnet": ("ONet", "general", 50_000, 313),
    "caltech101": ("C101", "general", 4_331, 101),
    "cub200": ("CUB", "fine-grained", 5_794, 200),
    "food101": ("Food", "fine-grained", 25_250, 101),
    "gldv2": ("GLMK", "fine-grained", 1_655, None),  # names come with the prepared data
    "logo": ("Logo", "fine-grained", 500, 10),
    "flowers102": ("Flower", "fine-grained", 6_149, 102),
    "stanfordcars": ("SCar", "fine-grained", 8_041, 196),
}


def test_the_ten_datasets_match_the_paper():
    """The one test that pins the paper's ten; every other test derives its expectations from the registry."""
    assert [key for key, spec in DATASETS.items() if spec.in_paper] == list(PAPER)
    assert all(spec.group is None for spec in DATASETS.values() if not spec.in_paper)  # extras never shift an average
    for key, (abbreviation, group, size, n_classes) in PAPER.items():
        spec = DATASETS[key]
        assert (spec.abbreviation, spec.group, spec.expected_size) == (abbreviation, group, size)
        assert (len(spec.classnames) if spec.classnames else None) == n_classes
        assert len(spec.questions) == 10 and len(set(spec.questions)) == 10
        assert all(question.endswith("?") or question.endswith(".") for question in spec.questions)
        assert spec.templates and all("{}" in template for template in spec.templates)


def test_hub_sources_are_pinned_to_full_commits():
    for spec in DATASETS.values():
        if isinstance(spec.source, HubSource):
            assert re.fullmatch(r"[0-9a-f]{40}", spec.source.revision), spec.key


def test_unknown_dataset_names_the_choices():
    assert get_dataset("imagenet1k").key == "imagenet"  # CLIP_benchmark's name is an alias
    try:
        get_dataset("imagenet-21k")
    except KeyError as error:
        assert "imagenet, imagenetv2" in str(error)
    else:
        raise AssertionError("no error")


def test_packaged_yamls_are_generated_from_the_registry():
    files = generated_files()
    for name, text in files.items():
        assert (PACKAGE_TASK_FOLDER / name).read_text("utf-8") == text, (
            f"{name} is stale: run python -m clsbench.tasks.cls_mcq._generate_configs"
        )
    on_disk = {str(path.relative_to(PACKAGE_TASK_FOLDER)) for path in PACKAGE_TASK_FOLDER.rglob("*.yaml")}
    assert on_disk == {name for name in files if name.endswith(".yaml")}


def _load(name):
    """The config as lmms-eval itself reads it: includes merged, every ``!function`` imported from its utils.py."""
    from lmms_eval.utils import load_yaml_config

    return load_yaml_config(yaml_path=str(PACKAGE_TASK_FOLDER / name), mode="full")


def test_task_yamls_read_the_pinned_split():
    for key, spec in DATASETS.items():
        config = _load(f"{task_name(key)}.yaml")
        assert config["task"] == task_name(key)
        assert config["process_docs"].__name__ == f"cls_process_docs_{key}"
        if isinstance(spec.source, HubSource):
            assert config["test_split"] == spec.source.split
            text = str(config["dataset_kwargs"])
            assert spec.source.revision in text and (
                spec.source.repo_id in text or config["dataset_path"] == spec.source.repo_id
            )
        else:
            assert config["dataset_kwargs"]["data_files"]["test"] == str(
                PACKAGE_TASK_FOLDER / "_missing_local_data.parquet"
            )


def test_groups_are_the_paper_groups_with_unweighted_means():
    general = _load("cls_general_mcq.yaml")
    finegrained = _load("cls_finegrained_mcq.yaml")
    assert general["task"] == [task_name(k) for k in ("imagenet", "imagenetv2", "objectnet", "caltech101")]
    assert finegrained["task"] == [
        task_name(k) for k in ("cub200", "food101", "gldv2", "logo", "flowers102", "stanfordcars")
    ]
    assert _load("cls_mcq.yaml")["task"] == ["cls_general_mcq", "cls_finegrained_mcq"]
    for config in (general, finegrained):
        assert {m["metric"]: m["weight_by_size"] for m in config["aggregate_metric_list"]} == {
            "accuracy": False,
            "unparseable_rate": False,
        }


def test_every_hook_in_every_yaml_is_a_def_lmms_eval_finds():
    """Each YAML loaded by lmms-eval's own loader; each ``!function`` must be a def in its folder's utils.py."""
    import ast

    defined = {}
    for utils in PACKAGE_TASK_FOLDER.rglob("utils.py"):
        tree = ast.parse(utils.read_text("utf-8"))
        defined[utils.parent] = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
        assert not any(node.name == "__getattr__" for node in tree.body if isinstance(node, ast.FunctionDef))
    for path in PACKAGE_TASK_FOLDER.rglob("*.yaml"):
        config = _load(str(path.relative_to(PACKAGE_TASK_FOLDER)))
        if "process_docs" in config:
            assert config["process_docs"].__name__ in defined[path.parent], path
        names = re.findall(r"!function utils\.(\w+)", path.read_text("utf-8"))
        assert all(name in defined[path.parent] for name in names), path


def test_the_readme_dataset_table_follows_the_registry():
    """A new registry entry shows in the README (paste `clsbench list --markdown`), and no count is hard-coded."""
    from pathlib import Path

    from clsbench.tasks.protocol.catalog import dataset_table

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text("utf-8")
    assert dataset_table() in readme, "README's dataset table is stale: paste `clsbench list --markdown`"
    assert all(f"`{key}`" in dataset_table() for key in DATASETS)


def test_extra_datasets_never_enter_a_group_average():
    """Pet has its tasks in every variant, but no group (MCQ or free-form) averages over it (issue 29)."""
    from clsbench.tasks.protocol.catalog import FREE_FORM_KINDS, resolve_datasets

    files = generated_files()
    extras = [key for key, spec in DATASETS.items() if not spec.in_paper]
    assert extras == ["pets"]
    for kind in FREE_FORM_KINDS.values():
        if kind.group:
            group = next(text for name, text in files.items() if name.endswith(f"/{kind.group}.yaml"))
            assert "pets" not in group, kind.group
            assert "pets" not in resolve_datasets(kind.group)
    closed = next(text for name, text in files.items() if name.endswith("/cls_closed.yaml"))
    assert closed.count("  - cls_") == 6  # tasks/README.md: the paper's six datasets with <= 256 classes
    assert "cls_pets_closed.yaml" in {name.split("/")[-1] for name in files}
