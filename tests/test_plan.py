"""``clsbench plan`` (issue 26): Table 2's runbook from the registry, the catalog and the measured figures; the same
projection as the GPU bench; README's runbook is its output; a mistyped name stops it at once."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

from clsbench.clip_baselines.models import PAPER_MODELS
from clsbench.models.catalog import ROUTES
from clsbench.models.throughput import MEASURED
from clsbench.tasks.cli.main import main
from clsbench.tasks.cli.plan import build_plan, render
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
        assert entry["command"].startswith("accelerate launch --multi_gpu --num_processes 8 -m lmms_eval ")
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
        assert f"{figure.questions_per_s} questions/s, {figure.device}" in prose and figure.date in prose
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
