"""Multi-label (ReGT / ReaL) rescoring of logged predictions."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from clsbench.tasks.data.loading import load_rows
from clsbench.tasks.data.samples import add_questions
from clsbench.tasks.protocol.registry import DATASETS
from clsbench.tasks.variants.multilabel import Prediction, load_valid_labels, rescore, score

NAMES = DATASETS["imagenet"].classnames


def test_label_file_formats(tmp_path):
    real = tmp_path / "real.json"
    real.write_text(json.dumps([[0, 5], [], [999]]))
    assert load_valid_labels(real, NAMES) == {
        "ILSVRC2012_val_00000001": {0, 5},
        "ILSVRC2012_val_00000002": frozenset(),
        "ILSVRC2012_val_00000003": {999},
    }
    named = tmp_path / "regt.json"
    named.write_text(json.dumps({"imgs/ILSVRC2012_val_00000007.JPEG": ["tench", "goldfish"], "12": [3]}))
    assert load_valid_labels(named, NAMES) == {"ILSVRC2012_val_00000007": {0, 1}, "12": {3}}
    table = tmp_path / "regt.csv"
    table.write_text("image,labels\nILSVRC2012_val_00000009.JPEG,4;7\n")
    assert load_valid_labels(table, NAMES) == {"ILSVRC2012_val_00000009": {4, 7}}


def test_score_counts_any_valid_label_and_skips_empty_sets():
    predictions = [
        Prediction("0", "a", 1, 1),
        Prediction("1", "b", 1, 2),
        Prediction("2", "c", 1, 3),
        Prediction("3", "d", 1, None),
        Prediction("4", "e", 1, 1),
    ]
    valid = {
        "a": frozenset({1}),
        "b": frozenset({1, 2}),
        "c": frozenset({1}),
        "d": frozenset(),
    }
    result = score("m", predictions, valid)
    assert result.single == pytest.approx(2 / 5)
    assert (result.n_multi, result.n_missing) == (3, 1)
    assert result.multi == pytest.approx(2 / 3)


def test_rescore_an_lmms_eval_run(fixture_root, tmp_path):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "clsbench.tasks.cli",
            "lmms",
            "--data-dir",
            str(fixture_root),
            "--model",
            "dummy",
            "--model_args",
            "response=A",
            "--tasks",
            "cls_imagenet_mcq",
            "--log_samples",
            "--output_path",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    docs = add_questions(load_rows("imagenet", fixture_root), "imagenet")
    labels = {}
    for index, doc in enumerate(docs):
        image = doc["source_id"].rsplit("/", 1)[1].split(".")[0]
        labels[image] = [doc["label"], doc["option_labels"][0]] if index % 2 == 0 else [doc["label"]]
    labels_file = tmp_path / "regt.json"
    labels_file.write_text(json.dumps(labels))
    [result] = rescore([tmp_path / "out"], labels_file, "imagenet", fixture_root)
    single = sum(doc["answer"] == "A" for doc in docs) / len(docs)
    multi = sum(doc["answer"] == "A" or i % 2 == 0 for i, doc in enumerate(docs)) / len(docs)
    assert (result.single, result.multi, result.n_multi, result.n_missing) == (
        pytest.approx(single),
        pytest.approx(multi),
        len(docs),
        0,
    )
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "clsbench.tasks.cli",
            "multilabel",
            str(tmp_path / "out"),
            "--labels",
            str(labels_file),
            "--data-dir",
            str(fixture_root),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cli.returncode == 0 and f"| {100 * multi:.1f} |" in cli.stdout
