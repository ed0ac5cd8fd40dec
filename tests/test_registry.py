"""The registry is the one source of truth; the lmms-eval folder must agree with it."""

import re

import yaml

from clsbench.tasks.lmms_tasks import PACKAGE_TASK_FOLDER, generated_files, task_name
from clsbench.tasks.registry import DATASETS, HubSource, get_dataset

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
    assert list(DATASETS) == list(PAPER)
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
    for name, text in generated_files().items():
        assert (PACKAGE_TASK_FOLDER / name).read_text("utf-8") == text, f"{name} is stale: run python -m clsbench.tasks.lmms_tasks"
    on_disk = {path.name for path in PACKAGE_TASK_FOLDER.glob("*.yaml")}
    assert on_disk == set(generated_files())


def _load(name):
    loader = type("L", (yaml.SafeLoader,), {})
    loader.add_constructor("!function", lambda loader, node: ("function", loader.construct_scalar(node)))
    return yaml.load((PACKAGE_TASK_FOLDER / name).read_text("utf-8"), Loader=loader)


def test_task_yamls_read_the_pinned_split():
    for key, spec in DATASETS.items():
        config = _load(f"{task_name(key)}.yaml")
        assert config["task"] == task_name(key)
        assert config["process_docs"] == ("function", f"utils.process_docs_{key}")
        if isinstance(spec.source, HubSource):
            assert config["test_split"] == spec.source.split
            text = str(config["dataset_kwargs"])
            assert spec.source.revision in text and (spec.source.repo_id in text or config["dataset_path"] == spec.source.repo_id)
        else:
            assert config["dataset_kwargs"]["data_files"]["test"] == "_missing_local_data.parquet"


def test_groups_are_the_paper_groups_with_unweighted_means():
    general = _load("cls_general_mcq.yaml")
    finegrained = _load("cls_finegrained_mcq.yaml")
    assert general["task"] == [task_name(k) for k in ("imagenet", "imagenetv2", "objectnet", "caltech101")]
    assert finegrained["task"] == [task_name(k) for k in ("cub200", "food101", "gldv2", "logo", "flowers102", "stanfordcars")]
    assert _load("cls_mcq.yaml")["task"] == ["cls_general_mcq", "cls_finegrained_mcq"]
    for config in (general, finegrained):
        assert {m["metric"]: m["weight_by_size"] for m in config["aggregate_metric_list"]} == {"accuracy": False, "unparseable_rate": False}


def test_every_process_docs_hook_exists():
    import importlib.util

    spec = importlib.util.spec_from_file_location("cls_mcq_utils", PACKAGE_TASK_FOLDER / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for key in DATASETS:
        assert callable(getattr(module, f"process_docs_{key}"))
