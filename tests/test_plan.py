"""``clsbench plan`` (issue 26): Table 2's runbook from the registry, the catalog and the measured figures; the same
projection as the GPU bench; README's runbook is its output; a mistyped name stops it at once."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clsbench.clip_baselines.models import PAPER_MODELS
from clsbench.models.catalog import ROUTES
from clsbench.models.throughput import MEASURED
from clsbench.tasks.cli.main import main
from clsbench.tasks.cli.plan import build_plan, render
from clsbench.tasks.cls_mcq.task_folder import task_folder_for
from clsbench.tasks.data.loading import data_root
from clsbench.tasks.data.sizes import DOWNLOAD_SIZES
from clsbench.tasks.protocol.registry import DATASETS, paper_datasets

ROOT = Path(__file__).resolve().parents[1]


def test_table2_plan_counts_the_registrys_questions_and_prints_every_command():
    plan = build_plan()
    paper = paper_datasets()
    assert plan["questions_per_model"] == sum(spec.expected_size for spec in paper) == 161_720
    assert [(d["key"], d["questions"]) for d in plan["datasets"]] == [(s.key, s.expected_size) for s in paper]
    assert [m["name"] for m in plan["mllms"]] == [route.name for route in ROUTES if route.in_paper]
    assert [c["key"] for c in plan["clips"]] == list(PAPER_MODELS)
    for entry, route in zip(plan["mllms"], [route for route in ROUTES if route.in_paper]):
        assert entry["command"].startswith(
            "accelerate launch --multi_gpu --num_processes 8 -m clsbench.tasks.cli lmms "
        )
        assert f"--model {route.lmms_model} " in entry["command"] and "--tasks cls_mcq " in entry["command"]
        assert ("mode=generate" in entry["command"]) == (route.lmms_model == "clsbench_hf")
        assert entry["hours"] > 0
    for clip in plan["clips"]:
        assert clip["command"].startswith("accelerate launch --multi_gpu --num_processes 8 -m clsbench.clip_baselines")
    text = render(plan)
    prose = " ".join(text.split())  # wrapped lines joined
    for spec in paper:  # every dataset: its download or prepare line, at the pinned revision where on the Hub
        assert f"clsbench prepare --datasets {spec.key} " in text
        if not spec.is_local:
            assert f"--revision {spec.source.revision} --include '{spec.source.data_files}'" in text
    assert "hf auth login" in prose  # ImageNet is gated
    assert plan["report"].endswith("--output-dir table2/report --reference paper")
    assert all(f"table2/mllm/{route.slug}" in plan["report"] for route in ROUTES if route.in_paper)
    for figure in MEASURED.values():  # every figure with its device, source and date
        assert f"{figure.questions_per_s} questions/s at batch {figure.batch_size}, {figure.device}" in prose
        assert figure.date in prose
    assert set(DOWNLOAD_SIZES) == set(DATASETS) and all(size.source for size in DOWNLOAD_SIZES.values())


def test_plan_and_the_gpu_bench_project_with_one_function():
    """The bench's ``table2_hours`` (``table2_hours_8gpu=``) and the plan give the same hours from the same rate."""
    sys.path.insert(0, str(ROOT / "bench"))
    from gpu_throughput import table2_hours

    score = MEASURED["score"]
    hours, per_model, questions = table2_hours(
        score.questions_per_s, score.params_billions * 1e9, score.prompt_tokens, score.image_tokens
    )
    plan = build_plan(mode="score")
    assert questions == plan["questions_per_model"]
    for entry in plan["mllms"]:
        if "mode=score" in entry["command"]:  # clsbench_hf: the measured score rate, scaled
            assert entry["hours"] == pytest.approx(per_model[entry["name"]], abs=0.006)


def test_score_mode_is_labelled_and_one_gpu_runs_the_plain_commands():
    text = render(build_plan(["LLaVA-1.5-7B", "InternVL2-8B", "siglip-so400m"], ["food101"], 1, "score", "runs", "D"))
    assert "**not the paper's protocol**" in text
    assert "clsbench lmms --model clsbench_hf --model_args pretrained=llava-hf/llava-1.5-7b-hf,mode=score " in text
    assert "--tasks cls_food101_mcq " in text and "--output_path runs/mllm/internvl2-8b" in text
    assert "| InternVL2-8B | generate |" in text  # lmms-eval's own class has no score mode
    clip = "clsbench clip --model siglip-so400m --datasets food101 --mode mcq --output-dir runs/clip --data-dir D"
    assert clip in text
    assert "25,250 questions per model" in text and "accelerate" not in text


@pytest.mark.parametrize(
    ("argv", "mistake", "suggestion"),
    [
        (["plan", "--models", "llava-1.5-7"], "'llava-1.5-7'", "LLaVA-1.5-7B"),
        (["plan", "--models", "siglip-so400"], "'siglip-so400'", "siglip-so400m"),
        (["plan", "--datasets", "food10"], "'food10'", "food101"),
    ],
)
def test_a_mistyped_name_stops_at_once_with_the_closest(capsys, argv, mistake, suggestion):
    began = time.perf_counter()
    assert main(argv) == 2
    assert time.perf_counter() - began < 5
    error = capsys.readouterr().err
    assert mistake in error and "did you mean" in error and suggestion in error


def test_readme_runbook_is_the_plan_output(capsys):
    readme = (ROOT / "README.md").read_text("utf-8")
    found = re.search(r"<!-- clsbench plan: begin -->\n(.*?)<!-- clsbench plan: end -->", readme, re.S)
    assert found, "README lacks the runbook's markers"
    assert main(["plan"]) == 0
    assert found.group(1) == capsys.readouterr().out, "README's runbook is stale: paste `clsbench plan`'s output"


def test_a_variants_task_name_is_refused_not_planned_as_the_papers_protocol(capsys):
    assert main(["plan", "--datasets", "cls_food101_mcq_4opt"]) == 2
    error = capsys.readouterr().err
    assert "'cls_food101_mcq_4opt' is the 4opt protocol" in error and "--tasks cls_food101_mcq_4opt" in error


def _launched(command: str, port: int) -> list[str]:
    """A printed ``accelerate launch`` line as this test runs it: this interpreter's accelerate, a free port, no
    mixed precision or dynamo (accelerate's prompts for an unconfigured machine)."""
    words = shlex.split(command)
    assert words[:2] == ["accelerate", "launch"], command
    at = words.index("--num_processes") + 2
    settings = ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    return [sys.executable, "-m", "accelerate.commands.launch", *words[2:at], *settings, "--main_process_port",
            str(port), *words[at:]]  # fmt: skip


def test_the_multi_gpu_line_runs_clsbench_lmms_and_fails_when_lmms_eval_fails(tiny_llava, fixture_root, tmp_path):
    """The plan's data-parallel line, run as printed on 2 CPU processes (gloo): ``clsbench lmms`` in every process,
    so the run exits 0 with results, and non-zero when the evaluation fails, where lmms-eval itself exits 0
    (the line before this fix, ``-m lmms_eval``, reported the same failure as a success)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "ACCELERATE_USE_CPU": "true",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "CLSBENCH_SKIP_DOCTOR": "1",
    }
    env.pop("CLSBENCH_DATA", None)
    plan = build_plan(["LLaVA-1.5-7B"], ["logo"], 2, "score", str(tmp_path / "runs"), str(fixture_root))
    command = plan["mllms"][0]["command"]
    assert command.startswith("accelerate launch --multi_gpu --num_processes 2 -m clsbench.tasks.cli lmms ")
    good = _launched(command.replace("pretrained=llava-hf/llava-1.5-7b-hf", f"pretrained={tiny_llava}"), port)

    def run(argv: list[str]) -> subprocess.CompletedProcess:
        return subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path, check=False)

    done = run(good)
    assert done.returncode == 0, done.stderr[-3000:]
    assert list((tmp_path / "runs" / "mllm" / "llava-1.5-7b-hf").rglob("*_results.json"))
    # lmms-eval's dummy model fails under two processes (it has no .device): lmms-eval logs the error, exits 0
    failing = [word for word in good if not word.startswith("pretrained=")]
    failing[failing.index("clsbench_hf")] = "dummy"
    failing[failing.index("--model_args")] = "--limit"
    failing.insert(failing.index("--limit") + 1, "2")
    failing[failing.index("--output_path") + 1] = str(tmp_path / "failed")
    done = run(failing)
    assert done.returncode != 0 and "lmms-eval wrote no results" in done.stderr, done.stderr[-3000:]
    bare = [word if word != "clsbench.tasks.cli" else "lmms_eval" for word in failing]
    bare.remove("lmms")
    bare[bare.index("--data-dir") : bare.index("--data-dir") + 2] = [
        "--include_path",
        str(task_folder_for(fixture_root)),
    ]
    done = run(bare)  # the same failure, reported as a success: why the line goes through clsbench lmms
    assert done.returncode == 0 and "has no attribute 'device'" in done.stdout + done.stderr


@pytest.mark.parametrize("mode", ["generate", "score"])
def test_each_command_runs_at_the_batch_its_hours_were_measured_at(mode):
    """The clsbench_hf figures were measured at batch 16 (their own setting says so); the printed commands said
    ``--batch_size 8`` while the hours came from batch 16."""
    plan = build_plan(mode=mode)
    figure = MEASURED[mode]
    assert figure.batch_size == 16 and "batch 16" in figure.setting
    assert plan["figures"]["generate, batch 1"]["batch_size"] == 1
    for entry in plan["mllms"]:
        batch = 1 if entry["one_at_a_time"] else figure.batch_size
        assert entry["batch_size"] == batch and f" --batch_size {batch} " in entry["command"]
    text = " ".join(render(plan).split())
    assert "| LLaVA-1.5-7B | " + mode + " | 16 |" in text
    assert "run at batch 16, the batch their figure was measured at" in text


def test_counts_are_singular_for_one():
    text = render(build_plan(["LLaVA-1.5-7B", "siglip-so400m"], ["food101"], 1))
    assert text.startswith("Plan: 1 MLLM and 1 CLIP model on 1 dataset (25,250 questions per model), 1 GPU, ")
    assert render(build_plan()).startswith("Plan: 10 MLLMs and 6 CLIP models on 10 datasets (161,720 questions ")


def test_json_records_the_data_folder_expanded_and_as_given(capsys):
    assert main(["plan", "--json", "--data-dir", "~/my-data", "--models", "LLaVA-1.5-7B"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["data_dir"] == str(Path("~/my-data").expanduser().resolve()) and "~" not in plan["data_dir"]
    assert plan["data_dir_option"] == "~/my-data"
    commands = [c for d in plan["datasets"] for c in d["commands"][-1:]] + [plan["mllms"][0]["command"]]
    assert all(c.endswith(" --data-dir ~/my-data") for c in [*commands, plan["report"]])  # the report: gldv2's names


def test_the_default_data_folder_is_every_commands_own(monkeypatch, tmp_path, capsys):
    """No --data-dir: the data root of every other command (``data_root``: $CLSBENCH_DATA, else
    ~/.cache/clsbench/data), shown as their help shows it; the commands pass no --data-dir of their own."""
    monkeypatch.setenv("CLSBENCH_DATA", str(tmp_path / "root"))
    plan = build_plan()
    assert plan["data_dir"] == str(data_root()) == str((tmp_path / "root").resolve())
    assert plan["data_dir_option"] is None
    monkeypatch.delenv("CLSBENCH_DATA")
    assert build_plan()["data_dir"] == str(Path("~/.cache/clsbench/data").expanduser().resolve())
    text = render(plan)
    commands = [c for d in plan["datasets"] for c in d["commands"]] + [m["command"] for m in plan["mllms"]]
    commands += [c["command"] for c in plan["clips"]]
    assert "clsbench-data" not in text and not any("--data-dir" in c for c in commands)
    assert "prepared data under `$CLSBENCH_DATA or ~/.cache/clsbench/data`" in " ".join(text.split())
    shown = []
    for command in ("plan", "list"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        shown.append(" ".join(capsys.readouterr().out.split()))
    assert all("(default: $CLSBENCH_DATA or ~/.cache/clsbench/data)" in help_text for help_text in shown)


def test_help_is_plain_text(capsys):
    with pytest.raises(SystemExit):
        main(["plan", "--help"])
    shown = capsys.readouterr().out
    assert "clsbench.models.throughput" in shown
    assert ":mod:" not in shown and "``" not in shown
