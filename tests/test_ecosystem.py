"""The command users already know: bare `lmms-eval --tasks cls_...`, the upstream kit, a CLI without rough edges."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

CLSBENCH = [sys.executable, "-m", "clsbench.tasks.cli"]


def offline(**extra) -> dict:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", **extra}


def lmms_eval(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lmms_eval", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def results_in(folder: Path) -> dict | None:
    files = sorted(folder.rglob("*_results.json"))
    return json.loads(files[-1].read_text()) if files else None


def test_the_bare_lmms_eval_command_finds_clsbench_tasks(fixture_root, tmp_path):
    args = [
        "--model",
        "dummy",
        "--model_args",
        "response=A",
        "--tasks",
        "cls_logo_mcq,cls_general_mcq",
        "--output_path",
        str(tmp_path / "out"),
    ]
    run = lmms_eval(args, tmp_path, offline(CLSBENCH_DATA=str(fixture_root)))
    results = results_in(tmp_path / "out")
    assert results is not None, run.stdout[-3000:] + run.stderr[-3000:]
    assert {"cls_logo_mcq", "cls_general_mcq", "cls_imagenet_mcq"} <= set(results["results"])
    assert isinstance(results["results"]["cls_logo_mcq"]["accuracy,none"], float)
    # Issue 26: a bare run recorded no clsbench version and lmms_eval_version "unknown@unknown" (no git checkout here);
    # the run now records the installed versions and the report's leaderboard file carries them.
    from importlib.metadata import version

    from clsbench.tasks.report.build import write_report

    assert results["clsbench_versions"]["clsbench"] == version("clsbench")
    assert results["clsbench_versions"]["packages"]["lmms_eval"] == version("lmms_eval")
    write_report([tmp_path / "out"], tmp_path / "report", figures=False, echo=None)
    entry = json.loads((tmp_path / "report" / "results.jsonl").read_text().splitlines()[0])
    shown = entry["versions"]
    assert (shown["clsbench"], shown["lmms_eval"]) == (version("clsbench"), version("lmms_eval"))
    assert "unknown@unknown" not in json.dumps(entry["versions"])

    off = lmms_eval(
        [*args[:-1], str(tmp_path / "off")], tmp_path, offline(CLSBENCH_DATA=str(fixture_root), CLSBENCH_LMMS_TASKS="0")
    )
    assert results_in(tmp_path / "off") is None and "cls_logo_mcq" in off.stdout + off.stderr


def test_builtin_tasks_keep_priority():
    import lmms_eval.models  # noqa: F401  (loads the entry point, as lmms-eval's start-up does)
    from lmms_eval.tasks import TaskManager

    registration = sys.modules["clsbench.tasks.toolkits.lmms_plugin"]

    assert registration.add_task_folder()
    manager = TaskManager("ERROR")
    assert "cls_imagenet_mcq" in manager.all_tasks
    builtin = Path(sys.modules["lmms_eval.tasks"].__file__).parent
    mmbench = next(name for name in manager.all_tasks if name.startswith("mmbench"))
    assert str(builtin) in str(manager.task_index[mmbench]["yaml_path"])


def test_importing_the_plugin_first_keeps_clsbench_models_in_lmms_evals_list():
    """The entry point's module imported before lmms-eval's model registry (as a user script might) must not make
    the registry load a half-initialized module and drop clsbench_hf (it did while the module built its manifests
    by importing lmms_eval.models at load time)."""
    script = (
        "import importlib, sys\n"
        "from importlib.metadata import entry_points\n"
        "plugin = entry_points(group='lmms_eval.models')['clsbench']\n"
        "importlib.import_module(plugin.module)\n"
        "import lmms_eval.models\n"
        "print(sorted(name for name in lmms_eval.models.list_available_models() if name.startswith('clsbench')))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.strip().splitlines()[-1] == "['clsbench_hf', 'clsbench_minicpm', 'clsbench_vllm']", (
        run.stdout[-2000:] + run.stderr[-2000:]
    )


def test_the_upstream_kit_drops_into_lmms_eval(fixture_root, tmp_path):
    import lmms_eval as package

    kit = subprocess.run(
        [*CLSBENCH, "upstream-lmms-eval", "--output-dir", str(tmp_path / "kit")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert kit.returncode == 0, kit.stderr
    folder = tmp_path / "kit" / "cls_mcq"
    for path in folder.rglob("*"):
        if path.suffix in (".yaml", ".py", ".md") or path.name.endswith("_yaml"):
            text = path.read_text("utf-8")
            assert str(Path.home()) not in text and "/tmp" not in text and "/work" not in text, path
    assert (
        "Revisiting MLLMs" in (folder / "README.md").read_text()
        and "## How to test" in (tmp_path / "kit" / "PR.md").read_text()
    )

    site = tmp_path / "site"
    shutil.copytree(Path(package.__file__).parent, site / "lmms_eval", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(folder, site / "lmms_eval" / "tasks" / "cls_mcq")
    # the kit reads a local dataset where its source YAML points (README "Local data"); clsbench's data root is not
    # its business. tests/test_upstream_kit.py runs it where clsbench cannot be imported.
    point = [sys.executable, "convert_dataset.py", "logo", "--prepared", str(fixture_root / "logo")]
    subprocess.run(point, cwd=site / "lmms_eval" / "tasks" / "cls_mcq", check=True, capture_output=True)
    env = offline(
        CLSBENCH_LMMS_TASKS="0",
        PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
    )
    run = lmms_eval(
        [
            "--model",
            "dummy",
            "--model_args",
            "response=A",
            "--tasks",
            "cls_logo_mcq",
            "--output_path",
            str(tmp_path / "out"),
        ],
        tmp_path,
        env,
    )
    results = results_in(tmp_path / "out")
    assert results is not None, run.stdout[-3000:] + run.stderr[-3000:]
    assert "cls_logo_mcq" in results["results"]


def test_clsbench_lmms_takes_equals_form_options(fixture_root, tmp_path):
    run = subprocess.run(
        [
            *CLSBENCH,
            "lmms",
            f"--data-dir={fixture_root}",
            "--model=dummy",
            "--model_args=response=B",
            "--tasks=cls_logo_mcq",
            f"--output_path={tmp_path / 'myout'}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=offline(),
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert results_in(tmp_path / "myout") is not None and not (tmp_path / "clsbench_results").exists()


def test_errors_inside_lmms_eval_end_with_clsbenchs_message(tmp_path):
    # The data root comes from $CLSBENCH_DATA: an explicit empty --data-dir is refused before lmms-eval starts.
    run = subprocess.run(
        [
            *CLSBENCH,
            "lmms",
            "--model",
            "dummy",
            "--tasks",
            "cls_logo_mcq",
            "--output_path",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**offline(), "CLSBENCH_DATA": str(tmp_path / "empty")},
        cwd=tmp_path,
    )
    assert run.returncode != 0  # lmms-eval itself exits 0 here; clsbench lmms must not
    tail = run.stderr.strip().splitlines()[-3:]
    assert any("clsbench lmms: error: logo: no prepared data" in line for line in tail), run.stderr[-2000:]
    assert "clsbench prepare --datasets logo --source RAW_DIR" in run.stderr.split("clsbench lmms: error:")[-1]


def test_no_hub_fails_in_seconds_with_the_download_command(tmp_path):
    import time

    began = time.time()
    run = subprocess.run(
        [
            *CLSBENCH,
            "lmms",
            "--data-dir",
            str(tmp_path),
            "--model",
            "dummy",
            "--tasks",
            "cls_cub200_mcq",
            "--output_path",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=offline(),
        cwd=tmp_path,
    )
    assert run.returncode == 2 and time.time() - began < 30
    assert (
        "hf download bentrevett/caltech-ucsd-birds-200-2011" in run.stderr
        and "--include 'data/test-*.parquet'" in run.stderr
    )


def test_llava_onevision_failure_says_what_it_needs():
    from clsbench.tasks.toolkits.lmms_runner import lmms_failure_messages

    output = "Traceback ...\nNameError: name 'get_model_name_from_path' is not defined\n"
    (message,) = lmms_failure_messages(output)
    assert (
        "LLaVA-NeXT repository" in message and "clsbench_hf" in message and "llava-onevision-qwen2-7b-ov-hf" in message
    )


def test_every_option_has_help():
    from clsbench.tasks.cli.main import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    missing = [
        f"{name} {action.option_strings or action.dest}"
        for name, sub in commands.choices.items()
        for action in sub._actions
        if action.help is None and action.dest != "help"
    ]
    assert missing == []


def test_tasks_path_says_where_its_copy_goes(fixture_root, tmp_path):
    run = subprocess.run(
        [*CLSBENCH, "tasks-path", "--data-dir", str(fixture_root)], capture_output=True, text=True, timeout=120
    )
    assert run.stdout.strip() == str(fixture_root / "_lmms_tasks")
    assert f"wrote the task folder for these prepared copies to {fixture_root / '_lmms_tasks'}" in run.stderr


def test_list_flags_copies_of_another_size(fixture_root):
    run = subprocess.run(
        [*CLSBENCH, "list", "--data-dir", str(fixture_root), "--no-check"], capture_output=True, text=True, timeout=120
    )
    line = next(line for line in run.stdout.splitlines() if line.startswith("imagenet "))
    assert "local: 6 rows" in line and "not the paper's 50,000" in line


def test_text_similar_negatives_offline_is_one_clear_line(tmp_path):
    run = subprocess.run(
        [
            *CLSBENCH,
            "negatives",
            "--datasets",
            "logo",
            "--method",
            "text-similar",
            "--encoder",
            "no-such/encoder",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=offline(),
    )
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "text encoder no-such/encoder could not be loaded" in run.stderr


def test_models_prints_no_overlong_lines():
    run = subprocess.run([*CLSBENCH, "models"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and max(len(line) for line in run.stdout.splitlines()) <= 120
    table = subprocess.run([*CLSBENCH, "models", "--markdown"], capture_output=True, text=True, timeout=120)
    assert table.stdout.strip().endswith("|")
