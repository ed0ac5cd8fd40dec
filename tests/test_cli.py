"""The `clsbench` command as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from clsbench.tasks.cls_mcq.task_folder import PACKAGE_TASK_FOLDER
from clsbench.tasks.protocol.draws import build_question
from clsbench.tasks.protocol.registry import DATASETS


def clsbench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "clsbench.tasks.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_list_shows_all_datasets_with_source_and_reachability(fixture_root, tmp_path):
    run = clsbench("list", "--data-dir", str(fixture_root))
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split()[:5] == ["dataset", "abbr", "group", "size", "source"]
    assert len(lines) == len(DATASETS) + 1  # a header, then one line per registry entry
    assert "ILSVRC/imagenet-1k@49e2ee2" in run.stdout and "50,000" in run.stdout and "4,331" in run.stdout
    assert all("local: 6 rows" in line for line in lines[1:])
    empty = clsbench("list", "--data-dir", str(tmp_path), "--no-check")
    assert "missing: run `clsbench prepare --datasets logo`" in empty.stdout and "not checked" in empty.stdout


def test_options_prints_the_question_as_json(fixture_root):
    run = clsbench(
        "options",
        "--datasets",
        "imagenet",
        "--index",
        "3",
        "--data-dir",
        str(fixture_root),
        "--n-options",
        "8",
        "--seed",
        "2",
    )
    assert run.returncode == 0, run.stderr
    question = json.loads(run.stdout)
    names = DATASETS["imagenet"].classnames
    expected = build_question("imagenet", "3", question["label"], names, seed=2, n_options=8)
    assert list(question["options"]) == list("ABCDEFGH")
    assert list(question["options"].values()) == [names[i] for i in expected.options]
    assert question["answer"] == expected.answer_letter and question["options"][question["answer"]] == question["class"]
    assert question["question"] == DATASETS["imagenet"].questions[expected.wording_index]
    assert question["prompt"].endswith(f"H. {names[expected.options[7]]}")


@pytest.mark.parametrize(
    "dataset,label,name_set,expected",
    [
        ("imagenet", 7, None, "cock"),  # the paper's first WordNet lemma
        ("imagenet", 7, "openai", "rooster"),  # OpenAI's CLIP name, one choice away
        ("imagenetv2", 389, None, "snoek fish"),  # the paper used OpenAI names for ImageNetV2
        ("food101", 16, None, "cheesecake"),  # the Hub's label order (official classes.txt), not sorted()
    ],
)
def test_options_names_classes_as_the_paper(tmp_path, dataset, label, name_set, expected):
    extra = ["--class-names", name_set] if name_set else []
    run = clsbench(
        "options", "--datasets", dataset, "--index", "0", "--label", str(label), "--data-dir", str(tmp_path), *extra
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["class"] == expected


def test_options_reports_the_options_actually_shown(tmp_path):
    run = clsbench("options", "--datasets", "logo", "--index", "0", "--label", "1", "--data-dir", str(tmp_path))
    assert json.loads(run.stdout)["n_options"] == 10  # Logo has ten classes, whatever was asked


def test_options_without_data_needs_a_label_or_says_what_to_run(tmp_path):
    with_label = clsbench(
        "options", "--datasets", "cub200", "--index", "0", "--label", "12", "--data-dir", str(tmp_path)
    )
    assert json.loads(with_label.stdout)["class"] == DATASETS["cub200"].classnames[12]
    missing = clsbench("options", "--datasets", "logo", "--index", "0", "--data-dir", str(tmp_path))
    assert missing.returncode == 2 and "clsbench prepare --datasets logo --source RAW_DIR" in missing.stderr
    bad = clsbench("options", "--datasets", "logo", "--index", "0", "--label", "10", "--data-dir", str(tmp_path))
    assert bad.returncode == 2 and "label 10 is outside the class list" in bad.stderr


def test_tasks_path_is_the_package_folder_or_a_copy_reading_local_data(fixture_root, tmp_path):
    from clsbench.tasks.cls_mcq.task_folder import task_folder_for

    assert task_folder_for(tmp_path) == PACKAGE_TASK_FOLDER  # nothing prepared: the package's (the CLI refuses it)
    folder = clsbench("tasks-path", "--data-dir", str(fixture_root)).stdout.strip()
    assert folder == str(fixture_root / "_lmms_tasks")
    text = (fixture_root / "_lmms_tasks" / "_imagenet_source_yaml").read_text()  # each dataset's source, written once
    assert f"test: {fixture_root}/imagenet/data/test-*.parquet" in text
    from lmms_eval.utils import load_yaml_config

    config = load_yaml_config(yaml_path=str(fixture_root / "_lmms_tasks" / "4opt" / "cls_imagenet_mcq_4opt.yaml"))
    assert config["dataset_kwargs"]["data_files"]["test"] == f"{fixture_root}/imagenet/data/test-*.parquet"


def test_unreachable_hub_says_how_to_run_offline(tmp_path):
    run = clsbench(
        "options", "--datasets", "cub200", "--index", "0", "--data-dir", str(tmp_path)
    )  # conftest sets HF_HUB_OFFLINE=1
    assert run.returncode == 2
    assert "could not load bentrevett/caltech-ucsd-birds-200-2011@1ef09e0" in run.stderr
    assert (
        "hf download bentrevett/caltech-ucsd-birds-200-2011 --repo-type dataset --revision 1ef09e0" in run.stderr
        and "--include 'data/test-*.parquet'" in run.stderr
    )
    assert "clsbench prepare --datasets cub200 --source SNAPSHOT" in run.stderr


@pytest.mark.parametrize(
    "argv,expected",
    [
        (
            ["options", "--datasets", "cls_food101_mcq_4opt", "--index", "0", "--label", "3"],
            "clsbench options --datasets food101 --index 0 --n-options 4",
        ),
        (
            ["options", "--datasets", "cls_imagenet_mcq_openai", "--index", "5"],
            "clsbench options --datasets imagenet --index 5 --class-names openai",
        ),
        (
            ["options", "--datasets", "cls_food101_mcq_textsim", "--index", "0"],
            "clsbench lmms --model MODEL --model_args ... --tasks",
        ),
        (["options", "--datasets", "cls_food101_open", "--index", "0"], "--tasks cls_food101_open"),
        (
            ["export-vlmeval", "--datasets", "cls_food101_mcq_4opt", "--output-dir", "OUT"],
            "cannot ask (it would run the paper's 26-option protocol)",
        ),
        (
            ["export-vlmeval", "--datasets", "cls_imagenet_mcq_openai", "--output-dir", "OUT"],
            "clsbench export-vlmeval --datasets imagenet --output-dir OUT --class-names openai",
        ),
        (
            ["clip", "--model", "ViT-B-32", "--datasets", "cls_food101_mcq_cliphard", "--output-dir", "OUT"],
            "clsbench clip --model MODEL --datasets food101 --n-options 5 --negatives clip-hard",
        ),
        (
            ["clip", "--model", "ViT-B-32", "--datasets", "food101,cls_general_mcq_8opt", "--output-dir", "OUT"],
            "--n-options 8",
        ),
    ],
)
def test_a_variant_name_is_never_run_as_the_26_option_protocol(argv, expected, capsys, tmp_path, monkeypatch):
    """A protocol name means the same everywhere: a command that cannot take it refuses, naming the right one."""
    from clsbench.tasks.cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert expected in error and argv[argv.index("--datasets") + 1].split(",")[-1] in error, error
    assert not (tmp_path / "OUT").exists()  # nothing was written under the wrong protocol


def test_the_papers_own_names_still_run(capsys, tmp_path):
    from clsbench.tasks.cli.main import main

    assert (
        main(["options", "--datasets", "cls_food101_mcq", "--index", "0", "--label", "3", "--data-dir", str(tmp_path)])
        == 0
    )
    assert json.loads(capsys.readouterr().out)["n_options"] == 26
