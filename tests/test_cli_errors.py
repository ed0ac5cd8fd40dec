"""A user's first hour (issue 26): every command either works or says in seconds what to do, and a bug shows its
traceback instead of passing for a usage error."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time

import pytest

from clsbench.tasks.cli.main import main

CLSBENCH = [sys.executable, "-m", "clsbench.tasks.cli"]


def test_a_mistyped_task_and_model_end_within_seconds_with_a_did_you_mean(tmp_path):
    """Before: 42-49 s of lmms-eval's task indexing, then a generic 'if a dataset could not be loaded' line."""
    started = time.monotonic()
    run = subprocess.run(
        [*CLSBENCH, "lmms", "--model", "llava_onevison", "--tasks", "cls_food11_mcq", "--output_path", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - started
    assert run.returncode == 2, run.stderr
    assert elapsed < 10, f"{elapsed:.1f} s"
    assert "unknown task 'cls_food11_mcq'" in run.stderr and "did you mean cls_food101_mcq" in run.stderr
    assert "unknown model 'llava_onevison'" in run.stderr and "did you mean llava_onevision" in run.stderr
    assert "dataset could not be loaded" not in run.stderr


def test_a_missing_data_dir_ends_within_seconds_naming_it_and_the_fix(tmp_path):
    """Before: --data-dir X was ignored (the Hub's task folder), and 37.7 s later the error named ~/.cache/..."""
    missing = tmp_path / "no-such-data"
    started = time.monotonic()
    run = subprocess.run(
        [*CLSBENCH, "lmms", "--data-dir", str(missing), "--model", "dummy", "--tasks", "cls_food101_mcq"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - started
    assert run.returncode == 2, run.stderr
    assert elapsed < 10, f"{elapsed:.1f} s"
    assert f"--data-dir {missing} does not exist" in run.stderr
    assert "hf download ethz/food101 --repo-type dataset" in run.stderr
    assert f"clsbench prepare --datasets food101 --source SNAPSHOT --data-dir {missing}" in run.stderr
    assert ".cache/clsbench/data" not in run.stderr


def test_an_empty_data_dir_is_refused_by_lmms_and_tasks_path(tmp_path, capsys):
    assert main(["lmms", "--data-dir", str(tmp_path), "--model", "dummy", "--tasks", "cls_logo_mcq"]) == 2
    err = capsys.readouterr().err
    assert f"--data-dir {tmp_path} holds no prepared dataset" in err and "clsbench prepare --datasets logo" in err
    assert main(["tasks-path", "--data-dir", str(tmp_path)]) == 2  # before: printed the package folder
    assert f"--data-dir {tmp_path} holds no prepared dataset" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("llava") is not None, reason="the LLaVA-NeXT package is installed")
def test_llava_onevision_without_the_llava_package_says_what_to_install(capsys):
    """Before: lmms-eval died with NameError get_model_name_from_path after indexing, with exit 0."""
    assert main(["lmms", "--model", "llava_onevision", "--tasks", "cls_imagenet_mcq"]) == 2
    err = capsys.readouterr().err
    assert "lmms-eval's model 'llava_onevision' needs llava" in err
    assert "pip install git+https://github.com/LLaVA-VL/LLaVA-NeXT.git" in err
    assert "--model clsbench_hf --model_args pretrained=llava-hf/llava-onevision-qwen2-7b-ov-hf" in err


def test_known_names_pass_the_up_front_check():
    from clsbench.tasks.toolkits.lmms_runner import lmms_request_messages

    for args in (
        ["--model", "dummy", "--tasks", "cls_mcq,cls_imagenet_mcq_4opt,mme"],  # ours, a variant, a built-in task
        ["--model=clsbench_hf", "--tasks=cls_general_mcq"],
        ["--model", "llava_hf", "--tasks", "list"],
        ["--model", "dummy", "--tasks", "cls_*"],  # wildcards are lmms-eval's to match
    ):
        assert lmms_request_messages(args) == [], args


def test_a_network_failure_is_the_named_error_with_the_download_line(tmp_path, monkeypatch, capsys):
    """Before: without HF_HUB_OFFLINE the HTTP library's ConnectError came out as two raw tracebacks."""
    import datasets

    http = pytest.importorskip("httpx2" if importlib.util.find_spec("httpx2") else "httpx")

    def unreachable(*args, **kwargs):
        raise http.ConnectError("[Errno -2] Name or service not known")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    assert main(["options", "--datasets", "food101", "--index", "0", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "food101: could not load ethz/food101@1ac27ab from the Hugging Face Hub" in err
    assert "Name or service not known" in err and "hf download ethz/food101 --repo-type dataset" in err
    assert "Traceback" not in err


def test_a_bug_shows_its_traceback_while_a_user_error_stays_one_line(monkeypatch, capsys):
    """Before: both command lines caught KeyError/ValueError, so a bug printed as a one-line usage error."""
    import clsbench.clip_baselines.cli as clip_cli

    cli = sys.modules[main.__module__]  # the package exports main, which hides the module's name

    def bug() -> str:
        return {}["no such key"]

    monkeypatch.setattr(cli, "dataset_table", bug)
    with pytest.raises(KeyError, match="no such key"):
        main(["list", "--markdown"])
    monkeypatch.setattr(clip_cli, "list_models", lambda: int("not a number"))
    with pytest.raises(ValueError, match="invalid literal"):
        clip_cli.main(["--list-models"])
    # The user's mistakes keep their one line (unknown names, out-of-range settings): now the project's types.
    assert main(["options", "--datasets", "food11", "--index", "0", "--label", "3"]) == 2
    assert "unknown dataset 'food11'; did you mean food101?" in capsys.readouterr().err
    assert main(["options", "--datasets", "food101", "--index", "0", "--label", "3", "--n-options", "30"]) == 2
    assert "n_options must be in 2..26, got 30" in capsys.readouterr().err
    assert main(["options", "--datasets", "food101", "--index", "0", "--label", "3", "--class-names", "openai"]) == 2
    assert "food101 has no class-name set 'openai'" in capsys.readouterr().err
    assert clip_cli.main(["--datasets", "food101"]) == 2
    assert "--model is required" in capsys.readouterr().err


def test_a_torn_samples_file_leaves_per_class_out_and_says_where(tmp_path):
    """Before: the torn line was skipped silently, so per_class.csv counted 7 samples beside a cell that says n=8."""
    import csv
    import json

    from clsbench.tasks.protocol.catalog import task_name
    from clsbench.tasks.report.build import write_report

    folder = tmp_path / "lmms" / "org__m"
    folder.mkdir(parents=True)
    task = task_name("logo")
    results = {
        "results": {task: {"alias": task, "accuracy,none": 0.5}},
        "n-samples": {task: {"original": 8, "effective": 8}},
        "config": {"model": "llava_hf", "model_args": "pretrained=org/m"},
        "model_name": "org/m",
        "date": "20260101_000000",
    }
    (folder / "20260101_000000_results.json").write_text(json.dumps(results))
    lines = [
        json.dumps({"doc_id": i, "accuracy": {"correct": i % 2, "sample_key": str(i), "label": i % 10}})
        for i in range(8)
    ]
    samples = folder / f"20260101_000000_samples_{task}.jsonl"
    samples.write_text("\n".join(lines) + "\n")
    write_report([tmp_path / "lmms"], tmp_path / "whole", figures=False, echo=None)
    with open(tmp_path / "whole" / "per_class.csv", newline="") as handle:
        assert sum(int(row["n"]) for row in csv.DictReader(handle) if row.get("dataset") == "logo") == 8
    samples.write_text("\n".join(lines[:7]) + "\n" + lines[7][:20])  # the last write torn by a kill
    notes: list[str] = []
    write_report([tmp_path / "lmms"], tmp_path / "out", figures=False, echo=notes.append)
    text = "\n".join(notes)
    assert f"{samples}, line 8: not readable JSON" in text
    assert f"{samples}: 7 readable samples, the results file counts 8: per-class numbers for logo left out" in text
    with open(tmp_path / "out" / "per_class.csv", newline="") as handle:
        assert not [row for row in csv.DictReader(handle) if row.get("dataset") == "logo"]


def test_user_mistakes_below_the_command_line_are_the_projects_errors(tmp_path):
    """What the command lines used to catch as KeyError/ValueError is now a ClsbenchError (still a KeyError or
    ValueError for callers), so narrowing the catch lost no one-line message."""
    from clsbench.tasks.protocol.catalog import resolve_datasets
    from clsbench.tasks.protocol.draws import build_question
    from clsbench.tasks.protocol.registry import DATASETS, get_dataset
    from clsbench.tasks.runtime.errors import BadSettingError, ClsbenchError, UnknownNameError
    from clsbench.tasks.toolkits.vlmeval.export import image_file_stem
    from clsbench.tasks.toolkits.vlmeval.run import parse_model_args, run_vlmeval

    names = DATASETS["food101"].classnames
    cases = [
        (lambda: get_dataset("food102"), UnknownNameError),
        (lambda: resolve_datasets("food102"), UnknownNameError),
        (lambda: DATASETS["food101"].names("openai"), UnknownNameError),
        (lambda: build_question("food101", "0", 1, names, n_options=27), BadSettingError),
        (lambda: build_question("food101", "0", 1, names, seed=-1), BadSettingError),
        (lambda: parse_model_args("model_path"), BadSettingError),
        (lambda: run_vlmeval(["m"], ["ClsBench_food102"], work_dir=str(tmp_path)), UnknownNameError),
        (lambda: image_file_stem("../x", "a row", tmp_path), ClsbenchError),
    ]
    for call, kind in cases:
        with pytest.raises(kind):
            call()


def test_a_clip_weight_download_that_cannot_reach_the_hub_names_the_hf_download_line(monkeypatch):
    """Before: open_clip's HTTP ConnectError was neither OSError nor ValueError and came out as a raw traceback."""
    import open_clip

    from clsbench.clip_baselines.models import ModelError, load_model, resolve_model

    http = pytest.importorskip("httpx2" if importlib.util.find_spec("httpx2") else "httpx")

    def unreachable(*args, **kwargs):
        raise http.ConnectError("[Errno -2] Name or service not known")

    monkeypatch.setattr(open_clip, "create_model_and_transforms", unreachable)
    with pytest.raises(ModelError) as caught:
        load_model(resolve_model("ViT-B-32", "laion2b_s34b_b79k"))
    assert "could not download ViT-B-32 pretrained=laion2b_s34b_b79k from the Hugging Face Hub" in str(caught.value)
    assert "hf download laion/CLIP-ViT-B-32-laion2B-s34B-b79K" in str(caught.value)


def test_the_readmes_first_lmms_eval_command_names_what_exists_here():
    """The README's headline lmms-eval line used --model llava_onevision, which dies without the LLaVA-NeXT repo:
    the line users copy first must name a model and tasks that this install runs (the up-front check agrees)."""
    import re
    import shlex
    from pathlib import Path

    from clsbench.tasks.toolkits.lmms_runner import lmms_request_messages

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text("utf-8")
    block = re.search(r"```bash\n(lmms-eval --tasks [^`]*?)```", readme).group(1)
    argv = shlex.split(block.replace("\\\n", " "))
    assert argv[0] == "lmms-eval"
    assert lmms_request_messages(argv[1:]) == [], block


def test_export_vlmeval_shows_progress_and_warns_once_per_dataset(fixture_root, tmp_path, capsys):
    """Before: no progress bar, and two PartialSplitWarnings per dataset (load_rows, then add_questions)."""
    import warnings

    from clsbench.tasks.data.loading import PartialSplitWarning

    argv = ["export-vlmeval", "--datasets", "logo", "cub200", "--output-dir", str(tmp_path / "out")]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main([*argv, "--data-dir", str(fixture_root)]) == 0
    partial = [str(w.message) for w in caught if issubclass(w.category, PartialSplitWarning)]
    assert sorted(message.split(":")[0] for message in partial) == ["cub200", "logo"], partial
    err = capsys.readouterr().err
    assert "export ClsBench_logo" in err and "6/6" in err  # tqdm's bar, per dataset
    assert main([*argv, "--data-dir", str(fixture_root), "--no-progress"]) == 0
    assert "export ClsBench_logo" not in capsys.readouterr().err


def test_a_failed_export_leaves_no_folder_it_created(tmp_path, capsys):
    """Before: --output-dir was created first, so a failed export left an empty folder behind."""
    out = tmp_path / "new" / "tsv"
    argv = ["export-vlmeval", "--datasets", "logo", "--output-dir", str(out), "--data-dir", str(tmp_path / "empty")]
    assert main(argv) == 2
    assert "clsbench prepare --datasets logo" in capsys.readouterr().err
    assert not (tmp_path / "new").exists() and not (tmp_path / "empty").exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    assert main([*argv[:3], "--output-dir", str(kept), *argv[5:]]) == 2
    assert kept.is_dir() and not any(kept.iterdir())  # a folder that was there stays


@pytest.mark.parametrize(
    "argv",
    [
        ["options", "--datasets", "food101", "--index", "0"],
        ["export-vlmeval", "--datasets", "logo", "--output-dir", "{tmp}/out"],
        ["questions", "--datasets", "food101", "--output-dir", "{tmp}/q"],
    ],
)
def test_a_mistyped_data_dir_is_named_by_every_command(argv, tmp_path, capsys):
    """Before: options and export-vlmeval fell back to the Hub (its error naming no --data-dir) or, for a local
    dataset, said to build data in the mistyped folder; only `clsbench lmms` named the folder."""
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    missing = tmp_path / "typo"
    assert main([*argv, "--data-dir", str(missing)]) == 2
    err = capsys.readouterr().err
    assert f"--data-dir {missing} does not exist" in err, err
    assert not missing.exists() and not (tmp_path / "out").exists()


def test_an_explicit_data_dir_without_the_copy_names_it_in_the_hub_error(tmp_path, monkeypatch, capsys):
    """Before: the Hub error's prepare line left out the --data-dir the user gave."""
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")  # the Hub cannot be reached, as here
    assert main(["options", "--datasets", "food101", "--index", "0", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"no prepared copy at {tmp_path / 'food101'}" in err, err
    assert f"clsbench prepare --datasets food101 --source SNAPSHOT --data-dir {tmp_path}" in err


def test_clsbench_warnings_print_as_one_plain_line(fixture_root):
    """Before: the partial-copy warning printed Python's file path and the source line that raised it."""
    run = subprocess.run(
        [sys.executable, "-m", "clsbench.tasks.cli", "options", "--datasets", "logo", "--index", "0"]
        + ["--data-dir", str(fixture_root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    warned = [line for line in run.stderr.splitlines() if "partial or fixture copy" in line]
    assert warned and all(line.startswith("clsbench: warning: logo: the prepared copy") for line in warned), run.stderr
    assert ".py:" not in run.stderr and "check_row_count(" not in run.stderr, run.stderr
