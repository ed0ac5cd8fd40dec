"""Protocol variants: option counts and hard negatives, with the same determinism guarantees."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from clsbench.tasks.cls_mcq.task_folder import PACKAGE_TASK_FOLDER, task_folder_for
from clsbench.tasks.cls_mcq.utils import questions_for
from clsbench.tasks.data.loading import DataError, load_rows
from clsbench.tasks.data.negatives import load_negatives, negatives_path, rank_by_similarity
from clsbench.tasks.data.samples import add_questions
from clsbench.tasks.protocol.catalog import MCQ_VARIANTS, group_name, task_name, variant_folder
from clsbench.tasks.protocol.registry import DATASETS


def test_every_variant_has_ten_tasks_three_groups_and_a_hook():
    for suffix, variant in MCQ_VARIANTS.items():
        for key, spec in DATASETS.items():
            present = (PACKAGE_TASK_FOLDER / variant_folder(suffix) / f"{task_name(key, suffix)}.yaml").is_file()
            assert present is variant.applies_to(spec)
        for group in ("general", "fine-grained", None):
            assert (
                PACKAGE_TASK_FOLDER / variant_folder(suffix) / f"{group_name(group, suffix)}.yaml"
            ).is_file() is variant.has_groups
    assert [key for key, spec in DATASETS.items() if MCQ_VARIANTS["_openai"].applies_to(spec)] == ["imagenet"]
    with pytest.raises(KeyError, match="_3opt"):
        questions_for(None, "imagenet", "_3opt")


@pytest.mark.parametrize("suffix,count", [("_4opt", 4), ("_8opt", 8), ("_16opt", 16), ("", 26)])
def test_option_count_variants_nest(fixture_root, suffix, count):
    rows = load_rows("cub200", fixture_root)
    full = add_questions(rows, "cub200")
    docs = questions_for(rows, "cub200", suffix, fixture_root)
    for small, big in zip(docs, full):
        assert len(small["options"]) == count
        assert small["options"][ord(small["answer"]) - 65] == big["options"][ord(big["answer"]) - 65]
        wrong_small = [o for o in small["option_labels"] if o != small["label"]]
        wrong_big = [o for o in big["option_labels"] if o != big["label"]]
        assert wrong_small == wrong_big[: count - 1]
        assert small["question"] == big["question"]


def test_hard_negative_task_without_its_file_says_what_to_run(fixture_root):
    rows = load_rows("food101", fixture_root)
    with pytest.raises(DataError, match="clsbench negatives --datasets food101 --method text-similar"):
        questions_for(rows, "food101", "_textsim", fixture_root)


def test_rank_by_similarity_is_stable_and_excludes_self():
    import torch

    similarity = torch.tensor([[1.0, 0.5, 0.5, 0.9], [0.2, 1.0, 0.3, 0.3], [0.0, 0.0, 1.0, 0.0], [0.9, 0.1, 0.2, 1.0]])
    assert rank_by_similarity(similarity, [0, 1, 2, 3]) == [[3, 1, 2], [2, 3, 0], [0, 1, 3], [0, 2, 1]]


def test_text_similar_negatives_end_to_end(fixture_root, tiny_sentence_encoder, tmp_path):
    root = tmp_path / "root"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "clsbench.tasks.cli",
            "negatives",
            "--datasets",
            "food101",
            "--method",
            "text-similar",
            "--encoder",
            str(tiny_sentence_encoder),
            "--data-dir",
            str(root),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    classnames = DATASETS["food101"].classnames
    stored = json.loads(negatives_path("food101", "text-similar", root).read_text())
    assert stored["model"] == str(tiny_sentence_encoder) and len(stored["per_class"]) == 101
    negatives = load_negatives("food101", "text-similar", classnames, root)
    docs = add_questions(load_rows("food101", fixture_root), "food101", negatives="text-similar", data_dir=root)
    for doc in docs:
        wrong = [o for o in doc["option_labels"] if o != doc["label"]]
        assert wrong == negatives.for_sample(doc["sample_key"], doc["label"])[:25]
        assert doc["option_labels"][ord(doc["answer"]) - 65] == doc["label"]
    # The same file gives the same questions again, and a changed class list is refused.
    again = add_questions(load_rows("food101", fixture_root), "food101", negatives="text-similar", data_dir=root)
    assert again["options"] == docs["options"] and again["answer"] == docs["answer"]
    with pytest.raises(DataError, match="another class list"):
        load_negatives("food101", "text-similar", [*classnames[:-1], "waffle"], root)


def test_materialized_folder_tells_hooks_its_data_root(fixture_root):
    folder = task_folder_for(fixture_root)
    assert (folder / "clsbench_data_root.txt").read_text().strip() == str(fixture_root)
