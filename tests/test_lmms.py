"""The tasks inside the real lmms-eval: scoring logic, the CLI end to end, and bad inputs."""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import datasets
import pytest

from clsbench.tasks.cls_mcq.task_folder import PACKAGE_TASK_FOLDER, task_folder_for
from clsbench.tasks.data.loading import DataError, load_rows
from clsbench.tasks.data.samples import add_questions
from clsbench.tasks.protocol.catalog import resolve_datasets, task_name
from clsbench.tasks.protocol.questions import SampleError
from clsbench.tasks.protocol.registry import DATASETS
from clsbench.tasks.report.lmms_results import dataset_accuracies, read_results

CLSBENCH = [sys.executable, "-m", "clsbench.tasks.cli"]


def expected_answers(fixture_root: Path, key: str) -> list[str]:
    return list(add_questions(load_rows(key, fixture_root), key)["answer"])


def hooks():
    """utils.py loaded the way lmms-eval's `!function` loads it (by file path)."""
    spec = importlib.util.spec_from_file_location("utils", PACKAGE_TASK_FOLDER / "utils.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_clsbench_lmms(fixture_root: Path, output: Path, *lmms_args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLSBENCH, "lmms", "--data-dir", str(fixture_root), *lmms_args, "--output_path", str(output)],
        capture_output=True,
        text=True,
        timeout=600,
    )


class OracleModel:
    """Built in the test: answers every question right, reading the doc as lmms-eval hands it over."""


def _oracle_class():
    from lmms_eval.api.model import lmms

    class Oracle(lmms):
        is_simple = True

        def generate_until(self, requests):
            replies = []
            for request in requests:
                _context, _gen_kwargs, doc_to_visual, doc_id, task, split = request.args
                doc = self.task_dict[task][split][doc_id]
                assert len(doc_to_visual(doc)) == 1  # the image decodes
                replies.append(f"{doc['answer']}. {doc['options'][ord(doc['answer']) - 65]}")
            return replies

        def loglikelihood(self, requests):
            raise NotImplementedError

        def generate_until_multi_round(self, requests):
            raise NotImplementedError

    return Oracle


def test_oracle_scores_exactly_100_percent(fixture_root):
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    manager = TaskManager("ERROR", include_path=str(task_folder_for(fixture_root)))
    output = simple_evaluate(model=_oracle_class()(), tasks=["cls_general_mcq", "cls_logo_mcq"], task_manager=manager)
    results = output["results"]
    for key in ("imagenet", "imagenetv2", "objectnet", "caltech101", "logo"):
        assert results[task_name(key)]["accuracy,none"] == 1.0
        assert results[task_name(key)]["unparseable_rate,none"] == 0.0
    assert results["cls_general_mcq"]["accuracy,none"] == 1.0


def test_constant_letter_model_through_the_cli(fixture_root, tmp_path):
    answers = {key: expected_answers(fixture_root, key) for key in resolve_datasets("cls_mcq")}
    letter, _ = Counter(a for per_key in answers.values() for a in per_key).most_common(1)[0]
    run = run_clsbench_lmms(
        fixture_root, tmp_path, "--model", "dummy", "--model_args", f"response={letter}", "--tasks", "cls_mcq"
    )
    assert run.returncode == 0, run.stderr[-3000:]
    files = sorted(tmp_path.rglob("*_results.json"))
    results = read_results(files[-1])
    implied = {key: per_key.count(letter) / len(per_key) for key, per_key in answers.items()}
    assert dataset_accuracies(results) == pytest.approx(implied)
    assert any(implied.values())
    general = [implied[k] for k, spec in DATASETS.items() if spec.group == "general"]
    finegrained = [implied[k] for k, spec in DATASETS.items() if spec.group == "fine-grained"]
    assert results["results"]["cls_general_mcq"]["accuracy,none"] == pytest.approx(sum(general) / len(general))
    assert results["results"]["cls_finegrained_mcq"]["accuracy,none"] == pytest.approx(
        sum(finegrained) / len(finegrained)
    )
    assert results["results"]["cls_mcq"]["accuracy,none"] == pytest.approx(sum(implied.values()) / len(implied))


def test_tiny_llava_end_to_end_with_logged_samples(fixture_root, tiny_llava, tmp_path):
    run = run_clsbench_lmms(
        fixture_root,
        tmp_path,
        "--model",
        "llava_hf",
        "--model_args",
        f"pretrained={tiny_llava},device_map=cpu,device=cpu",
        "--tasks",
        "cls_logo_mcq,cls_food101_mcq,cls_general_mcq",
        "--batch_size",
        "1",
        "--log_samples",
    )
    assert run.returncode == 0, run.stderr[-3000:]
    results = read_results(sorted(tmp_path.rglob("*_results.json"))[-1])["results"]
    for task in ("cls_logo_mcq", "cls_food101_mcq", "cls_general_mcq", "cls_imagenet_mcq", "cls_caltech101_mcq"):
        assert 0.0 <= results[task]["accuracy,none"] <= 1.0
        assert 0.0 <= results[task]["unparseable_rate,none"] <= 1.0
    for task in ("cls_logo_mcq", "cls_food101_mcq"):  # a real stderr, not lmms-eval's "N/A" for custom aggregations
        accuracy, stderr = results[task]["accuracy,none"], results[task]["accuracy_stderr,none"]
        assert isinstance(stderr, float) and stderr == pytest.approx((accuracy * (1 - accuracy) / 5) ** 0.5)
    samples_file = next(tmp_path.rglob("*cls_logo_mcq*.jsonl"))
    logged = [json.loads(line) for line in samples_file.read_text().splitlines()]
    assert len(logged) == 6
    docs = add_questions(load_rows("logo", fixture_root), "logo")
    for entry, doc in zip(logged, docs):
        assert entry["input"].endswith("\n".join(f"{chr(65 + i)}. {name}" for i, name in enumerate(doc["options"])))
        record = entry["decision"]
        assert entry["target"] == record["answer"] == doc["answer"]
        assert record["sample_key"] == doc["sample_key"] and record["label"] == doc["label"]
        assert record["parsed"] is None or record["parsed"] in "ABCDEFGHIJ"
        assert record["correct"] == int(record["parsed"] == doc["answer"])
        assert record["prediction"] == (doc["option_labels"][ord(record["parsed"]) - 65] if record["parsed"] else None)
        assert record["image_id"] == doc["source_id"].rsplit("/", 1)[1].rsplit(".", 1)[0]


def test_missing_local_data_names_clsbench_prepare(tmp_path):
    # The run through the CLI is tests/test_ecosystem.py::test_errors_inside_lmms_eval_end_with_clsbenchs_message
    # (one lmms-eval start-up serves both); here the loader itself names the command.
    with pytest.raises(DataError, match="clsbench prepare --datasets logo"):
        load_rows("logo", tmp_path / "empty")


def _hub_like_rows(labels, images):
    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")})
    return datasets.Dataset.from_dict({"image": images, "label": labels}, features=features)


def _png() -> dict:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buffer, format="PNG")
    return {"bytes": buffer.getvalue(), "path": None}


def test_label_outside_the_class_list_fails_at_load_naming_the_sample():
    rows = _hub_like_rows([3, 10, 1], [_png(), _png(), _png()])
    with pytest.raises(SampleError, match=r"logo sample 1: label 10 is outside the class list \(0\.\.9\)"):
        hooks().cls_process_docs_logo(rows)


def test_corrupt_image_names_the_sample():
    rows = _hub_like_rows([3, 4], [_png(), {"bytes": b"not an image at all", "path": "broken.jpg"}])
    docs = hooks().cls_process_docs_logo(rows)
    assert hooks().cls_doc_to_visual(docs[0])[0].size == (8, 8)
    with pytest.raises(SampleError, match=r"logo sample 1: cannot read the image"):
        hooks().cls_doc_to_visual(docs[1])


def test_prompt_follows_the_paper_and_accepts_overrides(fixture_root):
    doc = add_questions(load_rows("logo", fixture_root), "logo")[0]
    prompt = hooks().cls_doc_to_text(doc, {"pre_prompt": "", "post_prompt": ""})
    lines = prompt.split("\n")
    assert lines[:2] == [doc["question"], "Answer with the option's letter from the given choices directly."]
    assert lines[2:] == [f"{chr(65 + i)}. {name}" for i, name in enumerate(doc["options"])]
    custom = hooks().cls_doc_to_text(
        doc, {"pre_prompt": "<|q|>", "instruction": "Reply with one letter.", "post_prompt": "\nAnswer:"}
    )
    assert custom.startswith(f"<|q|>{doc['question']}\nReply with one letter.\nA. ") and custom.endswith("\nAnswer:")
