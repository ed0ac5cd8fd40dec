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
from clsbench.models.vlmeval.registration import register_models
from clsbench.tasks.cls_mcq.task_folder import task_folder_for
from clsbench.tasks.data.loading import load_rows
from clsbench.tasks.data.samples import open_image
from clsbench.tasks.protocol.questions import format_prompt, prompt_parts
from clsbench.tasks.toolkits.vlmeval.datasets import ClsbenchMCQDataset, register_datasets
from clsbench.tasks.toolkits.vlmeval.export import write_tsv
from clsbench.tasks.toolkits.vlmeval.names import RESULT_SUFFIX, VLMEVAL_DATASETS, vlmeval_name

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
    register_datasets()  # as `clsbench vlmeval` does: datasets and models side by side
    register_models()
    return lmu_data


@pytest.fixture(scope="session")
def letter_llava(tiny_llava, tmp_path_factory) -> Path:
    return build_letter_prone(tiny_llava, tmp_path_factory.getbasetemp() / "clsbench-models" / "llava-letters")


def test_registration_is_idempotent_and_complete(registered):
    import vlmeval.config
    import vlmeval.dataset

    from clsbench.models.vlmeval.model import ClsbenchVLM

    register_datasets()
    register_models()
    assert vlmeval.dataset.DATASET_CLASSES.count(ClsbenchMCQDataset) == 1
    assert getattr(vlmeval.dataset, ClsbenchMCQDataset.__name__) is ClsbenchMCQDataset
    for name in VLMEVAL_DATASETS:
        assert name in vlmeval.dataset.SUPPORTED_DATASETS and vlmeval.dataset.DATASET_TYPE(name) == "MCQ"
    dataset = vlmeval.dataset.build_dataset(vlmeval_name("logo"))
    assert type(dataset) is ClsbenchMCQDataset and len(dataset) == 6
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


def lmms_letters(model_dir: Path, data_root: Path, keys=("logo", "food101")) -> dict:
    """The letters and accuracies lmms-eval + clsbench_hf give on ``data_root``'s copies: the reference."""
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    from clsbench.models.lmms.clsbench_hf import ClsbenchHF

    manager = TaskManager("ERROR", include_path=str(task_folder_for(data_root)))
    model = ClsbenchHF(pretrained=str(model_dir), mode="score", batch_size=4, log_dir="none", answer_store="none")
    tasks = [f"cls_{key}_mcq" for key in keys]
    output = simple_evaluate(model=model, tasks=tasks, task_manager=manager, batch_size=4, log_samples=True)
    return {
        key: (
            {s["doc"]["sample_key"]: s["resps"][0][0] for s in output["samples"][f"cls_{key}_mcq"]},
            output["results"][f"cls_{key}_mcq"]["accuracy,none"],
        )
        for key in keys
    }


@pytest.fixture(scope="module")
def reference(letter_llava, fixture_root):
    return lmms_letters(letter_llava, fixture_root)


def run_clsbench_vlmeval(
    model_args: str,
    lmu_data: Path,
    data_root: Path,
    work_dir: Path,
    env=None,
    model="tiny-letters",
    datasets=("logo", "food101"),
    run_py_args=(),
):
    import os

    return subprocess.run(
        [
            *CLSBENCH,
            "vlmeval",
            "--models",
            model,
            "--datasets",
            *datasets,
            "--model-args",
            model_args,
            "--lmu-data",
            str(lmu_data),
            "--data-dir",
            str(data_root),
            "--output-dir",
            str(work_dir),
            *(["--", *run_py_args] if run_py_args else []),
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def vlmeval_results(work_dir: Path, model: str, key: str) -> tuple[dict, float]:
    """VLMEvalKit's per-sample letters (our result file, .tsv or .xlsx) and its Overall accuracy."""
    import pandas as pd

    name = vlmeval_name(key)
    (result,) = [p for p in (work_dir / model).glob(f"T*/{model}_{name}{RESULT_SUFFIX}.*")]
    table = pd.read_csv(result, sep="\t") if result.suffix == ".tsv" else pd.read_excel(result)
    (acc_file,) = list((work_dir / model).glob(f"T*/{model}_{name}_acc.csv"))
    letters = {str(row["sample_key"]): row["parsed"] for _, row in table.iterrows()}
    return letters, float(pd.read_csv(acc_file)["Overall"].iloc[0])


def assert_same_as_lmms_eval(work_dir: Path, reference: dict, model="tiny-letters"):
    for key, (letters, accuracy) in reference.items():
        vlmeval_letters, overall = vlmeval_results(work_dir, model, key)
        assert vlmeval_letters == letters, key
        assert overall == pytest.approx(accuracy), key


def test_clsbench_vlmeval_gives_the_same_letters_as_lmms_eval(letter_llava, fixture_root, reference, tmp_path):
    logs = tmp_path / "logs"
    args = f"model_path={letter_llava},mode=score,log_dir={logs}"
    run = run_clsbench_vlmeval(args, tmp_path / "LMUData", fixture_root, tmp_path / "out")
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert "| tiny-letters |" in run.stdout
    assert_same_as_lmms_eval(tmp_path / "out", reference)
    assert list((tmp_path / "out" / "tiny-letters").glob("T*/*.tsv"))  # PRED_FORMAT=tsv: replies kept exactly
    # Decision logs: one file per rank, appended; which question (task, doc_id = the TSV's index) and the decision.
    files = sorted(logs.glob("*.jsonl"))
    assert len(files) == 2 and all("_vlmeval_rank0_" in path.name for path in files)
    logged = [json.loads(line) for path in files for line in path.read_text().splitlines()]
    assert len(logged) == 12 and all(abs(sum(r["probs"].values()) - 1) < 1e-5 for r in logged)
    for record in logged:
        assert {"task", "doc_id", "pred", "probs"} <= set(record) and record["task"] in (
            vlmeval_name("logo"),
            vlmeval_name("food101"),
        )
    # A failed run in the same work dir prints what failed, never the earlier run's table.
    failed = run_clsbench_vlmeval(
        f"model_path={tmp_path / 'no-such-model'},mode=score", tmp_path / "LMUData", fixture_root, tmp_path / "out"
    )
    assert failed.returncode != 0
    assert "| tiny-letters |" not in failed.stdout and "no table: the run failed" in failed.stderr
    # Re-running appends to the decision logs; nothing earlier is truncated.
    again = run_clsbench_vlmeval(args, tmp_path / "LMUData", fixture_root, tmp_path / "again")
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    assert sum(len(path.read_text().splitlines()) for path in files) == 24


def test_a_tsv_over_vlmevalkits_threshold_keeps_lmms_evals_pixels_and_letters(
    letter_llava, fixture_root, reference, tmp_path
):
    """An inline TSV over the threshold (lowered through CLSBENCH_VLMEVAL_INLINE_LIMIT, as a 1.3 GB one would be)
    through the real run.py: localized by clsbench with the original bytes, never by VLMEvalKit's LOCALIZE."""
    lmu = tmp_path / "LMUData"
    for key in ("logo", "food101"):
        write_tsv(key, lmu, fixture_root, images="inline")
    args = f"model_path={letter_llava},mode=score,log_dir=none"
    run = run_clsbench_vlmeval(args, lmu, fixture_root, tmp_path / "out", env={"CLSBENCH_VLMEVAL_INLINE_LIMIT": "1000"})
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert_same_as_lmms_eval(tmp_path / "out", reference)
    for key in ("logo", "food101"):
        name = vlmeval_name(key)
        assert (lmu / f"{name}_clsbench_local.tsv").is_file() and not (lmu / f"{name}_local.tsv").exists()
        stored = load_rows(key, fixture_root)
        for index in range(len(stored)):
            (file,) = list((lmu / "images" / name).glob(f"{index}.*"))
            original = open_image(stored[index]["image"], dataset=key, sample_key=str(index))
            localized = open_image(str(file), dataset=key, sample_key=str(index))
            assert np.array_equal(np.asarray(localized), np.asarray(original))


def test_files_export_and_a_re_export_from_other_data_give_lmms_evals_letters(letter_llava, fixture_root, tmp_path):
    from clsbench.tasks.data.fixtures import write_fixture_dataset

    lmu = tmp_path / "LMUData"
    for key in ("logo", "food101"):
        write_tsv(key, lmu, fixture_root, images="files")
    args = f"model_path={letter_llava},mode=score,log_dir=none"
    first = run_clsbench_vlmeval(args, lmu, fixture_root, tmp_path / "first")
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    assert_same_as_lmms_eval(tmp_path / "first", lmms_letters(letter_llava, fixture_root))
    other = tmp_path / "other-data"  # other images and labels under the same sample keys
    for key in ("logo", "food101"):
        write_fixture_dataset(other, key, count=5)
    second = run_clsbench_vlmeval(args, lmu, other, tmp_path / "second")
    assert second.returncode == 0, (second.stdout + second.stderr)[-3000:]
    assert "but the data root is" in second.stderr  # --data-dir disagreed with the TSVs: re-exported, said so
    assert_same_as_lmms_eval(tmp_path / "second", lmms_letters(letter_llava, other))


def test_a_reply_with_control_characters_scores_the_same_in_both_toolkits(
    registered, fixture_root, tmp_path, monkeypatch
):
    """PRED_FORMAT=tsv keeps "C\\x0b" exactly (an .xlsx would store "C_x000B_", unparseable), and both toolkits'
    scoring reads it as C."""
    from functools import partial

    import pandas as pd
    import vlmeval.config
    from vlmeval.vlm.base import BaseModel

    from clsbench.tasks.protocol.questions import score_reply
    from clsbench.tasks.toolkits.vlmeval.run import run_vlmeval

    answers = {  # the TSV's answer per row index, read as a user would
        str(index): answer
        for index, answer in pd.read_csv(registered / f"{vlmeval_name('logo')}.tsv", sep="\t")[
            ["index", "answer"]
        ].itertuples(index=False)
    }

    class ControlCharacterOracle(BaseModel):  # a model stand-in: the right letter, then a vertical tab
        INTERLEAVE = False

        def generate_inner(self, message, dataset=None):
            index = Path(next(item["value"] for item in message if item["type"] == "image")).stem
            return answers[index] + "\x0b"

    def register_oracle(_models):
        vlmeval.config.supported_VLM["control-char-oracle"] = partial(ControlCharacterOracle)

    def run(work_dir):
        code = run_vlmeval(
            ["control-char-oracle"],
            [vlmeval_name("logo")],
            work_dir=str(work_dir),
            lmu_data=str(registered),
            data_dir=str(fixture_root),
            register_models=register_oracle,
        )
        assert code == 0
        return vlmeval_results(work_dir, "control-char-oracle", "logo")

    monkeypatch.delenv("PRED_FORMAT", raising=False)
    letters, overall = run(tmp_path / "out")  # clsbench's default: PRED_FORMAT=tsv
    assert overall == 1.0 and all(letters.values())
    monkeypatch.setenv("PRED_FORMAT", "xlsx")  # VLMEvalKit's default: the replies come back escaped
    _, escaped = run(tmp_path / "xlsx")
    assert escaped < 1.0, "the .xlsx route no longer escapes control characters; the tsv default may be moot"
    for answer in answers.values():  # lmms-eval's process_results scores with score_reply
        assert score_reply(answer + "\x0b", ["x"] * 10, answer)["correct"] == 1


def test_doctor_passes_in_this_vlmevalkit_install():
    """In a venv made by the README recipe (tasks/runtime/requirements-vlmevalkit.txt), doctor finds nothing for
    VLMEvalKit: every line installed at its pin, importable, its own dependencies met (antlr4 4.11.1, not 4.7.2)."""
    run = subprocess.run([*CLSBENCH, "doctor"], capture_output=True, text=True, timeout=300)
    assert "VLMEvalKit (vlmeval): installed" in run.stdout, run.stdout
    assert "VLMEvalKit's run.py" not in run.stdout and "not importable" not in run.stdout, run.stdout
    assert run.returncode == 0, run.stdout


# --- issue 28 through VLMEvalKit's own run.py ---


def test_reuse_after_the_data_is_rebuilt_never_scores_the_old_replies(letter_llava, tmp_path):
    """The copy rebuilt in place (8 rows -> 6) under the same --data-dir, then `-- --reuse`: the TSVs are
    re-exported (the copy's fingerprint changed) and the earlier predictions set aside, so the letters and scores
    are lmms-eval's on the new rows (before: the old TSV was scored, or the old replies reused by row index)."""
    from clsbench.tasks.data.fixtures import write_fixture_dataset

    data, lmu, out = tmp_path / "data", tmp_path / "LMUData", tmp_path / "out"
    for key in ("logo", "food101"):
        write_fixture_dataset(data, key, count=8)
    args = f"model_path={letter_llava},mode=score,log_dir=none"
    first = run_clsbench_vlmeval(args, lmu, data, out)
    assert first.returncode == 0, (first.stdout + first.stderr)[-3000:]
    for key in ("logo", "food101"):
        write_fixture_dataset(data, key, count=6)  # rebuilt in place: other rows under the same sample keys
    again = run_clsbench_vlmeval(args, lmu, data, out, run_py_args=["--reuse"])
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    for key in ("logo", "food101"):
        name = vlmeval_name(key)
        assert f"exporting {name}.tsv" in again.stderr and "was exported from other data" in again.stderr
        assert f"{name}: its TSV is not the export" in again.stderr and "moved aside" not in again.stdout
    assert_same_as_lmms_eval(out, lmms_letters(letter_llava, data))  # only this run's files are left in T*/
    other = tmp_path / "other-data"  # the case: "exporting..." (another --data-dir), then --reuse
    for key in ("logo", "food101"):
        write_fixture_dataset(other, key, count=7)
    third = run_clsbench_vlmeval(args, lmu, other, out, run_py_args=["--reuse"])
    assert third.returncode == 0, (third.stdout + third.stderr)[-3000:]
    for key in ("logo", "food101"):
        assert f"{vlmeval_name(key)}.tsv was exported from {data}, but the data root is {other}" in third.stderr
        assert f"{vlmeval_name(key)}: its TSV is not the export" in third.stderr, third.stderr[-3000:]
    assert_same_as_lmms_eval(out, lmms_letters(letter_llava, other))


def test_infer_mode_runs_the_openai_variant_without_a_judge(letter_llava, fixture_root, tmp_path):
    """`--datasets cls_imagenet_mcq_openai -- --mode infer`: ClsBench_imagenet_openai (OpenAI's class names) is
    exported and run, the command says inference only and where the predictions are (no table of empty cells),
    and status.json names no LLM judge ("exact_matching", VLMEvalKit's name for none; it said gpt-4o-mini)."""
    import pandas as pd

    from clsbench.tasks.protocol.registry import DATASETS

    lmu, out = tmp_path / "LMUData", tmp_path / "out"
    args = f"model_path={letter_llava},mode=score,log_dir=none"
    run = run_clsbench_vlmeval(
        args, lmu, fixture_root, out, datasets=["cls_imagenet_mcq_openai"], run_py_args=["--mode", "infer"]
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert [path.name for path in lmu.glob("*.tsv")] == ["ClsBench_imagenet_openai.tsv"]
    (prediction,) = (out / "tiny-letters").glob("T*/tiny-letters_ClsBench_imagenet_openai.tsv")
    assert "inference only (no scores)" in run.stdout and str(prediction) in run.stdout
    assert "| tiny-letters" not in run.stdout and not list(out.glob("tiny-letters/T*/*_acc.csv"))
    shown = set(pd.read_csv(prediction, sep="\t")[list("ABCDEFGHIJKLMNOPQRSTUVWXYZ")].stack())
    assert shown <= set(DATASETS["imagenet"].names("openai")) and not shown <= set(DATASETS["imagenet"].classnames)
    (status,) = (out / "tiny-letters").glob("T*/status.json")
    judge = json.loads(status.read_text())["datasets"]["ClsBench_imagenet_openai"].get("judge_model")
    assert judge == "exact_matching", judge
    scored = run_clsbench_vlmeval(  # the same export: the predictions stay, and --mode eval scores them
        args, lmu, fixture_root, out, datasets=["ClsBench_imagenet_openai"], run_py_args=["--mode", "eval"]
    )
    assert scored.returncode == 0, (scored.stdout + scored.stderr)[-3000:]
    assert "| tiny-letters [openai names] |" in scored.stdout and "moved" not in scored.stderr  # its own row


def test_a_missing_variant_tsv_names_its_class_names(registered, tmp_path, monkeypatch):
    monkeypatch.setenv("LMUData", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="--datasets imagenet --output-dir .* --class-names openai"):
        ClsbenchMCQDataset("ClsBench_imagenet_openai")


def test_the_report_reads_a_real_work_dir_with_the_openai_variant_and_a_score_name(
    letter_llava, fixture_root, tmp_path
):
    """run.py's own file names (ClsBench_imagenet_openai; a model named in our grammar, ``clsbench_<slug>-score``)
    become rows of their protocol in `clsbench report`: the openai names row was dropped, and a score-mode name was
    shown as the paper's protocol (issue 28 item 5)."""
    import pandas as pd

    out = tmp_path / "out"
    run = run_clsbench_vlmeval(
        f"model_path={letter_llava},mode=score,log_dir=none",
        tmp_path / "LMUData",
        fixture_root,
        out,
        model="clsbench_tiny-score",
        datasets=["imagenet", "cls_imagenet_mcq_openai"],
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    report = subprocess.run(
        [*CLSBENCH, "report", str(out), "--output-dir", str(tmp_path / "report"), "--no-figures"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.returncode == 0, report.stderr
    for name, data in (
        ("clsbench_tiny [score]", "ClsBench_imagenet"),
        ("clsbench_tiny [score, openai names]", "ClsBench_imagenet_openai"),
    ):
        (acc,) = (out / "clsbench_tiny-score").glob(f"T*/clsbench_tiny-score_{data}_acc.csv")
        overall = float(pd.read_csv(acc)["Overall"].iloc[0])
        line = next(line for line in report.stdout.splitlines() if line.startswith(f"| {name} |"))
        # the fixture copy is smaller than ImageNet's split: the cell carries the report's subset mark (†)
        assert line.split("|")[2].strip() == f"{100 * overall:.1f}†", (name, line)
