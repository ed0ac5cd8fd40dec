"""Inside VLMEvalKit: registration, the dataset classes, scoring files, and `clsbench vlmeval` matching lmms-eval.

VLMEvalKit is not on PyPI, so these run only where ``vlmeval`` is importable (see README); CI skips them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip(
    "vlmeval", reason="VLMEvalKit (vlmeval) is not installed; it is not on PyPI, see README 'VLMEvalKit'"
)

from clsbench.models.fixtures import build_letter_prone
from clsbench.models.vlmeval.registration import register
from clsbench.tasks.cls_mcq._generate_configs import task_folder_for
from clsbench.tasks.data.loading import load_rows
from clsbench.tasks.data.samples import open_image
from clsbench.tasks.protocol.questions import format_prompt, prompt_parts
from clsbench.tasks.toolkits.vlmeval import RESULT_SUFFIX, dataset_classes, vlmeval_name, write_tsv

CLSBENCH = [sys.executable, "-m", "clsbench.tasks.cli"]


@pytest.fixture(scope="module")
def lmu_data(fixture_root, tmp_path_factory):
    folder = tmp_path_factory.mktemp("LMUData")
    for key in ("logo", "food101"):
        write_tsv(key, folder, fixture_root)
    return folder


@pytest.fixture()
def registered(lmu_data, monkeypatch):
    monkeypatch.setenv("LMUData", str(lmu_data))
    register()
    return lmu_data


@pytest.fixture(scope="session")
def letter_llava(tiny_llava, tmp_path_factory) -> Path:
    return build_letter_prone(tiny_llava, tmp_path_factory.getbasetemp() / "clsbench-models" / "llava-letters")


def test_registration_is_idempotent_and_complete(registered):
    import vlmeval.config
    import vlmeval.dataset

    from clsbench.models.vlmeval.model import ClsbenchVLM

    register()
    for name, cls in dataset_classes().items():
        assert vlmeval.dataset.DATASET_CLASSES.count(cls) == 1 and name in vlmeval.dataset.SUPPORTED_DATASETS
        assert vlmeval.dataset.DATASET_TYPE(name) == "MCQ"
        assert getattr(vlmeval.dataset, cls.__name__) is cls
    dataset = vlmeval.dataset.build_dataset(vlmeval_name("logo"))
    assert type(dataset) is dataset_classes()[vlmeval_name("logo")] and len(dataset) == 6
    entry = vlmeval.config.supported_VLM["clsbench_qwen2-vl-7b-instruct-score"]
    assert entry.func is ClsbenchVLM and entry.keywords == {"model_path": "Qwen/Qwen2-VL-7B-Instruct", "mode": "score"}


def test_prompt_and_image_are_the_lmms_eval_ones(registered, fixture_root):
    from vlmeval.dataset import build_dataset

    dataset = build_dataset(vlmeval_name("food101"))
    stored = load_rows("food101", fixture_root)
    for position in range(len(dataset)):
        line = dataset.data.iloc[position]
        image_part, text_part = dataset.build_prompt(line)
        options = [line[letter] for letter in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"]
        assert text_part["value"] == format_prompt(line["question"], options)
        assert set(text_part) == {"type", "value"}  # nothing hidden: models read the options from the prompt
        assert prompt_parts(text_part["value"]) == (line["question"], tuple(options))
        original = open_image(stored[position]["image"], dataset="food101", sample_key=str(position))
        assert np.array_equal(
            np.asarray(open_image(image_part["value"], dataset="food101", sample_key="?")), np.asarray(original)
        )


def test_evaluate_scores_with_our_parser_and_writes_the_usual_files(registered, tmp_path):
    from vlmeval.dataset import build_dataset
    from vlmeval.smp import dump

    dataset = build_dataset(vlmeval_name("logo"))
    data = dataset.data.drop(columns=["image"]).copy()
    data["prediction"] = [
        f"{a}. {row[a]}" if i % 2 == 0 else "I don't know"
        for i, (a, (_, row)) in enumerate(zip(data["answer"], data.iterrows()))
    ]
    eval_file = tmp_path / f"tiny_{vlmeval_name('logo')}.xlsx"
    dump(data, str(eval_file))
    accuracy = dataset.evaluate(str(eval_file))
    assert float(accuracy["Overall"].iloc[0]) == pytest.approx(0.5)
    assert float(accuracy["unparseable_rate"].iloc[0]) == pytest.approx(0.5)
    assert (tmp_path / f"tiny_{vlmeval_name('logo')}{RESULT_SUFFIX}.xlsx").is_file()
    assert (tmp_path / f"tiny_{vlmeval_name('logo')}_acc.csv").is_file()


def test_clsbench_vlmeval_gives_the_same_letters_as_lmms_eval(letter_llava, fixture_root, tmp_path):
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    from clsbench.models.lmms.clsbench_hf import ClsbenchHF

    run = subprocess.run(
        [
            *CLSBENCH,
            "vlmeval",
            "--model",
            "tiny-letters",
            "--data",
            "logo",
            "food101",
            "--model-args",
            f"model_path={letter_llava},mode=score,log_dir={tmp_path / 'logs'}",
            "--lmu-data",
            str(tmp_path / "LMUData"),
            "--data-dir",
            str(fixture_root),
            "--work-dir",
            str(tmp_path / "out"),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert "| tiny-letters |" in run.stdout
    import pandas as pd

    manager = TaskManager("ERROR", include_path=str(task_folder_for(fixture_root)))
    model = ClsbenchHF(pretrained=str(letter_llava), mode="score", batch_size=4, log_dir="none")
    output = simple_evaluate(
        model=model, tasks=["cls_logo_mcq", "cls_food101_mcq"], task_manager=manager, batch_size=4, log_samples=True
    )
    for key in ("logo", "food101"):
        name = vlmeval_name(key)
        (result,) = [p for p in (tmp_path / "out" / "tiny-letters").glob(f"T*/tiny-letters_{name}{RESULT_SUFFIX}.xlsx")]
        vlmeval_letters = {str(row["sample_key"]): row["parsed"] for _, row in pd.read_excel(result).iterrows()}
        samples = output["samples"][f"cls_{key}_mcq"]
        lmms_letters = {s["doc"]["sample_key"]: s["resps"][0][0] for s in samples}
        assert vlmeval_letters == lmms_letters
        (acc_file,) = list((tmp_path / "out" / "tiny-letters").glob(f"T*/tiny-letters_{name}_acc.csv"))
        overall = float(pd.read_csv(acc_file)["Overall"].iloc[0])
        assert overall == pytest.approx(output["results"][f"cls_{key}_mcq"]["accuracy,none"])
    logged = [
        json.loads(line) for path in (tmp_path / "logs").glob("*.jsonl") for line in path.read_text().splitlines()
    ]
    assert len(logged) == 12 and all(abs(sum(r["probs"].values()) - 1) < 1e-5 for r in logged)
