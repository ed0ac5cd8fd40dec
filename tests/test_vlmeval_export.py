"""VLMEvalKit TSV export (no VLMEvalKit needed): schema, byte-identical images, the lmms-eval tasks' exact questions."""

from __future__ import annotations

import base64
import json

import datasets
import pandas as pd
import pytest

from clsbench.tasks.cli.main import main
from clsbench.tasks.cls_mcq.task_folder import task_folder_for
from clsbench.tasks.data.fixtures import GLDV2_FIXTURE_CLASSES
from clsbench.tasks.data.loading import DataError, load_rows
from clsbench.tasks.protocol.catalog import task_name
from clsbench.tasks.protocol.draws import LETTERS
from clsbench.tasks.protocol.registry import DATASETS
from clsbench.tasks.toolkits.vlmeval import export
from clsbench.tasks.toolkits.vlmeval.export import tsv_columns, write_tsv
from clsbench.tasks.toolkits.vlmeval.names import NAME_TO_KEY, images_folder, vlmeval_name
from clsbench.tasks.toolkits.vlmeval.rows import prompt_message, score_rows

KEYS = ["logo", "food101", "imagenet"]  # 10 options, 26 options, a split named "validation"


@pytest.fixture(scope="module")
def exported(fixture_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("lmu")
    assert main(["export-vlmeval", "--datasets", *KEYS, "--output-dir", str(out), "--data-dir", str(fixture_root)]) == 0
    return {key: pd.read_csv(out / f"{vlmeval_name(key)}.tsv", sep="\t") for key in KEYS}  # VLMEvalKit's own reader


@pytest.fixture(scope="module")
def lmms_docs(fixture_root):
    """The docs the lmms-eval tasks really build (process_docs applied), and the tasks themselves."""
    from lmms_eval.tasks import TaskManager, get_task_dict

    manager = TaskManager("ERROR", include_path=str(task_folder_for(fixture_root)))
    tasks = get_task_dict([task_name(key) for key in KEYS], manager)
    return {key: tasks[task_name(key)] for key in KEYS}


def test_names_are_unique_and_avoid_vlmevalkit_special_cases():
    names = [vlmeval_name(key) for key in DATASETS]
    assert len(set(names)) == len(names)
    assert NAME_TO_KEY == {**dict(zip(names, DATASETS)), "ClsBench_imagenet_openai": "imagenet"}
    for name in (
        NAME_TO_KEY
    ):  # substrings that switch on special behaviour in VLMEvalKit (circular eval, MMT/MMSci reports, ...)
        assert not any(bad in name.lower() for bad in ("mmbench", "ccbench", "circular", "mmcr"))
        assert not any(bad in name for bad in ("MMT", "MMSci", "MMMU", "LEGO", "MMVP"))


def test_tsv_schema(exported, fixture_root):
    for key, table in exported.items():
        n_options = min(26, len(DATASETS[key].classnames))
        assert list(table.columns) == tsv_columns(n_options)
        assert table["index"].dtype.kind == "i" and table["index"].is_unique
        assert set(table["answer"]) <= set(LETTERS[:n_options])
        assert table[list(LETTERS[:n_options])].notna().all().all()
        assert set(table["category"]) == {DATASETS[key].group}
        assert set(table["split"]) == {getattr(DATASETS[key].source, "split", "test")}
        rows = load_rows(key, fixture_root).cast_column("image", datasets.Image(decode=False))
        assert len(table) == len(rows)
        for row, stored in zip(table.itertuples(), rows):
            assert base64.b64decode(row.image) == stored["image"]["bytes"]  # never re-encoded


def test_questions_equal_the_lmms_eval_tasks_questions(exported, lmms_docs):
    for key, table in exported.items():
        task = lmms_docs[key]
        docs = list(task.test_docs())
        assert len(docs) == len(table)
        for (_, row), doc in zip(table.iterrows(), docs):
            assert str(row["sample_key"]) == doc["sample_key"] and row["index"] == int(doc["sample_key"])
            assert (
                row["question"] == doc["question"] and row["answer"] == doc["answer"] and row["label"] == doc["label"]
            )
            assert [row[letter] for letter in LETTERS[: len(doc["options"])]] == doc["options"]
            # the exact text each toolkit puts in front of the model
            text = prompt_message(row, ["img.png"])[-1]["value"]
            assert text == task.doc_to_text(doc)


def test_class_names_survive_the_tsv_round_trip():
    # pandas turns these strings into NaN when VLMEvalKit reads a TSV; no class name may be one of them
    from pandas._libs.parsers import STR_NA_VALUES

    names = {name for spec in DATASETS.values() for name in (spec.classnames or ())} | set(GLDV2_FIXTURE_CLASSES)
    assert len(names) > 1000
    for name in names:
        assert name not in STR_NA_VALUES and name == name.strip() and "\t" not in name and "\n" not in name
        assert not name.replace(".", "", 1).isdigit(), name


def test_scoring_uses_our_parser_not_vlmevalkits_fallback_letter():
    options = {letter: f"class {letter.lower()}" for letter in LETTERS}
    rows = [
        {**options, "answer": "Z", "prediction": "I don't know"},  # VLMEvalKit's can_infer returns "Z": a hit
        {**options, "answer": "C", "prediction": "I would say C"},  # a grader says C; "I" is the pronoun, not option I
        {**options, "answer": "C", "prediction": "The answer is (C)."},
        {**options, "answer": "Q", "prediction": "class q"},
        {**options, "answer": "A", "prediction": float("nan")},  # an empty cell read back from xlsx
    ]
    assert score_rows(rows) == [
        {"parsed": "", "hit": 0, "unparseable": 1},
        {"parsed": "C", "hit": 1, "unparseable": 0},
        {"parsed": "C", "hit": 1, "unparseable": 0},
        {"parsed": "Q", "hit": 1, "unparseable": 0},
        {"parsed": "", "hit": 0, "unparseable": 1},
    ]


def test_export_of_an_unknown_or_missing_dataset_says_what_to_do(tmp_path, capsys):
    assert main(["export-vlmeval", "--datasets", "imagenet-21k", "--output-dir", str(tmp_path)]) == 2
    assert "unknown dataset 'imagenet-21k'" in capsys.readouterr().err
    assert (
        main(
            [
                "export-vlmeval",
                "--datasets",
                "logo",
                "--output-dir",
                str(tmp_path),
                "--data-dir",
                str(tmp_path / "empty"),
            ]
        )
        == 2
    )
    assert "clsbench prepare --datasets logo" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.tsv")) and not list(tmp_path.glob(".*partial"))


def test_groups_expand_to_their_datasets(fixture_root, tmp_path):
    assert (
        main(
            [
                "export-vlmeval",
                "--datasets",
                "cls_general_mcq",
                "--output-dir",
                str(tmp_path),
                "--data-dir",
                str(fixture_root),
            ]
        )
        == 0
    )
    assert sorted(path.name for path in tmp_path.glob("*.tsv")) == sorted(
        f"{vlmeval_name(key)}.tsv" for key, spec in DATASETS.items() if spec.group == "general"
    )
    write_tsv("logo", tmp_path, fixture_root)  # rewriting replaces the file atomically
    assert len(pd.read_csv(tmp_path / f"{vlmeval_name('logo')}.tsv", sep="\t")) == 6


# --- VLMEvalKit at real size: image files, lossless localization, no stale state (no VLMEvalKit needed) ---


def _stored_bytes(key, data_root):
    rows = load_rows(key, data_root).cast_column("image", datasets.Image(decode=False))
    return [export._image_bytes(row["image"], key, str(i)) for i, row in enumerate(rows)]


def test_files_mode_writes_the_original_bytes_and_an_image_path_column(fixture_root, tmp_path):
    from clsbench.tasks.toolkits.vlmeval.export import IMAGES_STAMP, read_sidecar, tsv_identity

    tsv = write_tsv("logo", tmp_path, fixture_root, images="files")
    table = pd.read_csv(tsv, sep="\t")
    assert "image" not in table and list(table["image_path"]) == [f"{i}.png" for i in range(len(table))]
    folder = images_folder(tmp_path, vlmeval_name("logo"))
    assert [(folder / path).read_bytes() for path in table["image_path"]] == _stored_bytes("logo", fixture_root)
    sidecar = read_sidecar(tsv)
    assert sidecar["data_root"] == str(fixture_root.resolve()) and sidecar["images"] == "files"
    assert sidecar["rows"] == len(table) and tsv_identity(tsv) == f"sha256:{sidecar['sha256']}"
    assert (folder / IMAGES_STAMP).read_text().strip() == '{"tsv": "sha256:' + sidecar["sha256"] + '"}'


def test_auto_picks_files_when_the_inline_tsv_would_pass_vlmevalkits_threshold(fixture_root, tmp_path, monkeypatch):
    assert export.read_sidecar(write_tsv("logo", tmp_path / "a", fixture_root))["images"] == "inline"  # 500 small
    monkeypatch.setattr(export, "INLINE_LIMIT_BYTES", 1000)
    assert export.read_sidecar(write_tsv("logo", tmp_path / "b", fixture_root))["images"] == "files"


def test_a_big_inline_tsv_is_localized_losslessly_never_by_vlmevalkit(fixture_root, tmp_path, monkeypatch):
    tsv = write_tsv("food101", tmp_path, fixture_root, images="inline")
    folder = images_folder(tmp_path, vlmeval_name("food101"))
    assert export.prepare_images(tsv, folder) == tsv  # under the threshold: read as it is
    monkeypatch.setattr(export, "INLINE_LIMIT_BYTES", 100)
    local = export.prepare_images(tsv, folder)
    assert local.name == f"{vlmeval_name('food101')}_clsbench_local.tsv"
    table, original = pd.read_csv(local, sep="\t"), pd.read_csv(tsv, sep="\t")
    assert "image" not in table and list(table["question"]) == list(original["question"])
    assert [(folder / path).read_bytes() for path in table["image_path"]] == _stored_bytes("food101", fixture_root)
    assert [base64.b64decode(b) for b in original["image"]] == _stored_bytes("food101", fixture_root)
    stamp = (folder / export.IMAGES_STAMP).read_text()
    assert export.prepare_images(tsv, folder) == local and (folder / export.IMAGES_STAMP).read_text() == stamp


def test_an_export_that_changes_the_tsv_removes_the_images_decoded_from_the_old_one(fixture_root, tmp_path):
    from clsbench.tasks.data.fixtures import write_fixture_dataset
    from clsbench.tasks.toolkits.vlmeval.export import prepare_images

    tsv = write_tsv("logo", tmp_path, fixture_root, images="inline")
    folder = images_folder(tmp_path, vlmeval_name("logo"))
    prepare_images(tsv, folder)
    (folder / "0.png").write_bytes(b"decoded by VLMEvalKit from the first export")
    write_tsv("logo", tmp_path, fixture_root, images="inline")  # the same TSV again: the decoded images stay
    assert (folder / "0.png").is_file()
    other = tmp_path / "other-data"
    write_fixture_dataset(other, "logo", count=4)  # other images under the same sample keys
    write_tsv("logo", tmp_path, other, images="inline")
    assert not (folder / "0.png").exists(), "an image decoded from the earlier export survived the re-export"
    prepare_images(tsv, folder)
    (folder / "0.png").write_bytes(b"decoded from the second export")
    tsv.write_text(tsv.read_text() + "")  # a TSV copied in by hand (new mtime, no matching sidecar)
    prepare_images(tsv, folder)
    assert not (folder / "0.png").exists(), "a TSV changed outside clsbench kept the old decoded images"


def test_a_files_export_refuses_image_files_of_another_export(fixture_root, tmp_path):
    from clsbench.tasks.toolkits.vlmeval.export import IMAGES_STAMP, prepare_images

    tsv = write_tsv("logo", tmp_path, fixture_root, images="files")
    folder = images_folder(tmp_path, vlmeval_name("logo"))
    assert prepare_images(tsv, folder) == tsv
    (folder / IMAGES_STAMP).write_text('{"tsv": "sha256:another"}\n')
    with pytest.raises(DataError, match="belong to another export.*clsbench export-vlmeval"):
        prepare_images(tsv, folder)


def test_export_is_current_names_why_a_tsv_must_be_rewritten(fixture_root, tmp_path):
    from clsbench.tasks.toolkits.vlmeval.export import export_is_current, sidecar_path

    tsv = write_tsv("imagenet", tmp_path, fixture_root)
    assert export_is_current(tsv, fixture_root, "paper") is None
    assert "but the data root is" in export_is_current(tsv, tmp_path / "elsewhere", "paper")
    assert "not openai" in export_is_current(tsv, fixture_root, "openai")
    tsv.write_text(tsv.read_text())
    assert "changed after clsbench exported it" in export_is_current(tsv, fixture_root, "paper")
    sidecar_path(tsv).unlink()
    assert "no clsbench sidecar" in export_is_current(tsv, fixture_root, "paper")


def test_options_says_how_many_options_the_question_has(fixture_root, capsys):
    import json

    assert main(["options", "--datasets", "logo", "--index", "0", "--data-dir", str(fixture_root)]) == 0
    question = json.loads(capsys.readouterr().out)
    assert question["n_options"] == len(question["options"]) == len(DATASETS["logo"].classnames) == 10


def test_a_partial_copy_is_checked_once_on_export(fixture_root, tmp_path):
    """load_rows checks the copy's labels and size; the export does not check them again (it warned twice)."""
    from clsbench.tasks.data.loading import PartialSplitWarning

    with pytest.warns(PartialSplitWarning) as warned:
        write_tsv("logo", tmp_path, fixture_root)
    assert len([w for w in warned if issubclass(w.category, PartialSplitWarning)]) == 1


# --- issue 28: state keyed by content, predictions that cannot mix data, one export per torchrun, variant names ---


def _logo_copy(root, count):
    """A logo copy at ``root`` (rebuilt in place when called again): other images and labels per count."""
    from clsbench.tasks.data.fixtures import write_fixture_dataset

    write_fixture_dataset(root, "logo", count=count)
    return root


def test_a_copy_rebuilt_in_place_makes_its_tsv_stale_and_is_re_exported(tmp_path, capsys):
    """8 rows rebuilt as 6 under the same --data-dir: the old TSV (same root, same names) is no longer current."""
    from clsbench.tasks.toolkits.vlmeval.export import export_is_current, read_sidecar

    data, lmu = _logo_copy(tmp_path / "data", 8), tmp_path / "LMUData"
    tsv = write_tsv("logo", lmu, data)
    assert export_is_current(tsv, data, "paper") is None
    _logo_copy(data, 6)
    assert "was exported from other data" in (export_is_current(tsv, data, "paper") or "current: the old rows")
    assert read_sidecar(tsv)["data"].startswith("copy:sha256:")
    from clsbench.tasks.toolkits.vlmeval.run import export_and_check

    export_and_check([vlmeval_name("logo")], lmu, str(data), tmp_path / "work")  # what `clsbench vlmeval` does first
    assert "exporting ClsBench_logo.tsv" in capsys.readouterr().err
    assert len(pd.read_csv(tsv, sep="\t")) == 6 and export_is_current(tsv, data, "paper") is None


def test_questions_of_another_protocol_version_make_the_tsv_stale(fixture_root, tmp_path, monkeypatch):
    from clsbench.tasks.protocol.catalog import PROTOCOL_VERSION
    from clsbench.tasks.toolkits.vlmeval.export import export_is_current, read_sidecar, sidecar_path

    tsv = write_tsv("logo", tmp_path, fixture_root)
    assert read_sidecar(tsv)["protocol_version"] == PROTOCOL_VERSION == "clsbench-v1/3.0"
    monkeypatch.setattr(export, "PROTOCOL_VERSION", "clsbench-v2/4.0")  # a clsbench that asks other questions
    assert "protocol version clsbench-v1/3.0, this clsbench asks clsbench-v2/4.0" in export_is_current(
        tsv, fixture_root, "paper"
    )
    monkeypatch.undo()
    old = read_sidecar(tsv)  # a sidecar from before the fingerprint (format v1): stale, its TSV still identified
    for field in ("data", "protocol_version"):
        old.pop(field)
    sidecar_path(tsv).write_text(json.dumps({**old, "format": "clsbench-vlmeval-tsv-v1"}))
    assert "protocol version unrecorded" in export_is_current(tsv, fixture_root, "paper")
    assert export.tsv_identity(tsv) == f"sha256:{old['sha256']}"


# VLMEvalKit's run directory for a model, as run.py writes it (commit e8e78f0): <work_dir>/<model>/<eval_id>/ with
# eval_id "T%Y%m%d-%H%M%S" (build_eval_id, vlmeval/smp/file.py:453-454; run.py:668-669), the predictions
# <model>_<data>.<PRED_FORMAT> (get_pred_file_path, file.py:208-216), the inference checkpoint and per-rank pickles
# (get_infer_aux_file_names, file.py:586-607), the scoring files <model>_<data>_* (our evaluate: _clsbench_result,
# _acc.csv), status.json, and run.py's links to them in <work_dir>/<model>/ (run.py, after evaluate: link_addr).
def _vlmeval_run_dir(work, model, name, eval_id="T20261205-071500", world_size=2):
    run = work / model / eval_id
    run.mkdir(parents=True, exist_ok=True)
    files = [
        f"{model}_{name}.tsv",
        f"{model}_{name}_checkpoint.pkl",
        *(f"{rank}{world_size}_{name}.pkl" for rank in range(world_size)),
        f"{model}_{name}_clsbench_result.tsv",
        f"{model}_{name}_acc.csv",
    ]
    for file in files:
        (run / file).write_text("old\n")
    (run / "status.json").write_text("{}\n")
    (work / model / f"{model}_{name}_acc.csv").symlink_to(run / f"{model}_{name}_acc.csv")
    return run, files


def test_prediction_files_are_the_ones_vlmevalkits_reuse_reads_and_no_other_datasets(tmp_path):
    from clsbench.tasks.toolkits.vlmeval.run import prediction_files

    run, files = _vlmeval_run_dir(tmp_path, "tiny", "ClsBench_imagenet")
    _, others = _vlmeval_run_dir(tmp_path, "tiny", "ClsBench_imagenet_openai")  # its name starts with the other
    (tmp_path / "tiny" / "T20261205-071500" / "tiny_ClsBench_logo.xlsx").write_text("another dataset\n")
    (tmp_path / "tiny" / "not-a-run").mkdir()
    (tmp_path / "tiny" / "not-a-run" / "tiny_ClsBench_imagenet.tsv").write_text("--reuse never reads here\n")
    found = prediction_files(tmp_path / "tiny", "ClsBench_imagenet")
    assert sorted(path.name for path in found) == sorted([*files, "tiny_ClsBench_imagenet_acc.csv"])
    assert sorted(p.name for p in prediction_files(tmp_path / "tiny", "ClsBench_imagenet_openai")) == sorted(
        [*others, "tiny_ClsBench_imagenet_openai_acc.csv"]
    )


def test_a_re_export_moves_vlmevalkits_earlier_predictions_aside(tmp_path, capsys):
    """`-- --reuse` after a re-export must not match the old replies to the new rows by index: they are moved to
    <work_dir>/<model>/clsbench_stale/, for every model, and said so; another dataset's stay."""
    from clsbench.tasks.toolkits.vlmeval.run import PREDICTIONS_RECORD, STALE_FOLDER, export_and_check

    data, lmu, work = _logo_copy(tmp_path / "data", 8), tmp_path / "LMUData", tmp_path / "work"
    name = vlmeval_name("logo")
    export_and_check([name], lmu, str(data), work)  # the first run: the work dir records the export
    assert name in json.loads((work / PREDICTIONS_RECORD).read_text())
    runs = {model: _vlmeval_run_dir(work, model, name) for model in ("tiny", "other-model")}
    _, kept = _vlmeval_run_dir(work, "tiny", vlmeval_name("food101"), eval_id="T20261205-071501")
    export_and_check([name], lmu, str(data), work)  # nothing changed: the predictions stay for --reuse
    assert all((run / file).is_file() for run, files in runs.values() for file in files)
    capsys.readouterr()
    _logo_copy(data, 6)  # rebuilt in place
    export_and_check([name], lmu, str(data), work)
    err = capsys.readouterr().err
    assert (
        "exporting ClsBench_logo.tsv" in err and "moved 14 earlier prediction files of it aside" in err
    )  # 7 per model
    for model, (run, files) in runs.items():
        assert not any((run / file).exists() for file in files), model
        assert not (work / model / f"{model}_{name}_acc.csv").is_symlink()
        (stale,) = (work / model / STALE_FOLDER).iterdir()
        assert sorted(path.name for path in (stale / run.name).iterdir()) == sorted(files)
        assert str(stale) in err
    assert all((work / "tiny" / "T20261205-071501" / file).is_file() for file in kept)


def test_export_vlmeval_says_when_it_replaced_a_tsv(tmp_path, capsys):
    data, out = _logo_copy(tmp_path / "data", 8), tmp_path / "LMUData"
    argv = ["export-vlmeval", "--datasets", "logo", "--output-dir", str(out), "--data-dir", str(data)]
    assert main(argv) == 0 and main(argv) == 0  # the same export twice: nothing to say
    assert "changed: predictions VLMEvalKit made" not in capsys.readouterr().err
    _logo_copy(data, 6)
    assert main(argv) == 0
    assert "ClsBench_logo.tsv changed: predictions VLMEvalKit made from the earlier one are stale" in (
        capsys.readouterr().err
    )


def test_a_work_dir_that_never_recorded_its_export_keeps_no_predictions(tmp_path, capsys):
    """Predictions from before the record (direct run.py, an older clsbench) cannot be matched to an export."""
    from clsbench.tasks.toolkits.vlmeval.run import export_and_check

    data, lmu, work = _logo_copy(tmp_path / "data", 8), tmp_path / "LMUData", tmp_path / "work"
    run, files = _vlmeval_run_dir(work, "tiny", vlmeval_name("logo"))
    export_and_check([vlmeval_name("logo")], lmu, str(data), work)
    assert "does not record which export" in capsys.readouterr().err
    assert not any((run / file).exists() for file in files)


_CONCURRENT_EXPORT = """
import os, sys, time
from pathlib import Path
from clsbench.tasks.toolkits.vlmeval import export
write_image = export._write_image
def slow_write_image(*args, **kwargs):  # a copy big enough that the exports overlap (the issue's took seconds)
    time.sleep(0.1)
    return write_image(*args, **kwargs)
export._write_image = slow_write_image
go = Path(sys.argv[4])
while not go.exists():
    time.sleep(0.001)
if sys.argv[5] == "write_tsv":  # `clsbench export-vlmeval` run twice at once
    from clsbench.tasks.toolkits.vlmeval.export import write_tsv
    write_tsv("logo", sys.argv[1], sys.argv[2], progress=False)
else:  # every rank of `torchrun ... clsbench vlmeval` before run.py
    from clsbench.tasks.toolkits.vlmeval.run import export_and_check
    export_and_check(["ClsBench_logo"], Path(sys.argv[1]), sys.argv[2], sys.argv[3])
"""


@pytest.mark.parametrize("entry", ["export_and_check", "write_tsv"])
def test_concurrent_exports_write_one_consistent_tsv(tmp_path, entry):
    """Four processes (torchrun's RANK/WORLD_SIZE/LOCAL_RANK set) export one missing TSV with image files at once:
    all succeed, one exports (torchrun's ranks), and the TSV, its sidecar and its image files agree."""
    import os
    import subprocess
    import sys
    import time

    from clsbench.tasks.toolkits.vlmeval.export import export_is_current, read_sidecar, tsv_identity

    data, lmu, work, go = _logo_copy(tmp_path / "data", 8), tmp_path / "LMUData", tmp_path / "work", tmp_path / "go"
    script = tmp_path / "export.py"
    script.write_text(_CONCURRENT_EXPORT)
    world = 4
    env = {**os.environ, "WORLD_SIZE": str(world), "CLSBENCH_VLMEVAL_INLINE_LIMIT": "1000"}  # auto: image files
    ranks = [
        subprocess.Popen(
            [sys.executable, str(script), str(lmu), str(data), str(work), str(go), entry],
            env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in range(world)
    ]
    time.sleep(8)  # every process imported and waiting, so they start within a millisecond
    go.touch()
    results = [rank.communicate(timeout=300) for rank in ranks]
    assert [rank.returncode for rank in ranks] == [0] * world, [err[-2000:] for _, err in results]
    if entry == "export_and_check":
        assert sum("exporting ClsBench_logo.tsv" in err for _, err in results) == 1, [e[-600:] for _, e in results]
    tsv = lmu / "ClsBench_logo.tsv"
    sidecar = read_sidecar(tsv)
    assert export_is_current(tsv, data, "paper") is None and tsv_identity(tsv) == f"sha256:{sidecar['sha256']}"
    table = pd.read_csv(tsv, sep="\t")
    folder = images_folder(lmu, "ClsBench_logo")
    assert sidecar["images"] == "files" and len(table) == sidecar["rows"] == 8
    assert [(folder / path).read_bytes() for path in table["image_path"]] == _stored_bytes("logo", data)
    assert not list(lmu.glob(".*partial"))


def test_variant_names_keep_their_variant(fixture_root, tmp_path, capsys):
    from clsbench.tasks.cli.models import vlmeval_names
    from clsbench.tasks.protocol.catalog import ProtocolNameError
    from clsbench.tasks.toolkits.vlmeval.export import read_sidecar
    from clsbench.tasks.toolkits.vlmeval.names import export_command

    assert vlmeval_names(["cls_imagenet_mcq_openai"]) == ["ClsBench_imagenet_openai"]
    assert vlmeval_names(["ClsBench_imagenet_openai,imagenet", "cls_imagenet_mcq"]) == [
        "ClsBench_imagenet_openai",
        "ClsBench_imagenet",
    ]
    with pytest.raises(ProtocolNameError, match="--tasks cls_food101_mcq_4opt"):
        vlmeval_names(["cls_food101_mcq_4opt"])
    out = ["--output-dir", str(tmp_path), "--data-dir", str(fixture_root), "--no-progress"]
    assert main(["export-vlmeval", "--datasets", "ClsBench_imagenet_openai", *out]) == 0
    assert [path.name for path in tmp_path.glob("*.tsv")] == ["ClsBench_imagenet_openai.tsv"]
    assert read_sidecar(tmp_path / "ClsBench_imagenet_openai.tsv")["class_names"] == "openai"
    capsys.readouterr()
    assert main(["export-vlmeval", "--datasets", "cls_food101_mcq_4opt", *out]) == 2
    assert "--tasks cls_food101_mcq_4opt" in capsys.readouterr().err
    assert not (tmp_path / "ClsBench_food101.tsv").exists()
    assert export_command("ClsBench_imagenet_openai", "/L") == (
        "clsbench export-vlmeval --datasets imagenet --output-dir /L --class-names openai"
    )
    assert export_command("ClsBench_imagenet", "/L") == "clsbench export-vlmeval --datasets imagenet --output-dir /L"


def test_run_py_is_told_that_no_judge_scores_our_datasets():
    from clsbench.tasks.toolkits.vlmeval.run import run_py_argv

    argv = run_py_argv("run.py", ["m"], ["ClsBench_logo"], "out", ["--mode", "infer"])
    assert argv == [
        "run.py",
        *("--model", "m", "--data", "ClsBench_logo", "--work-dir", "out"),
        *("--judge", "exact_matching", "--mode", "infer"),
    ]
    assert run_py_argv("run.py", ["m"], ["d"], "out", ["--judge=gpt-4o"])[-1] == "--judge=gpt-4o"  # the user's


def test_infer_mode_says_inference_only_and_where_the_predictions_are(tmp_path, capsys):
    from clsbench.tasks.toolkits.vlmeval.run import print_predictions

    run, _ = _vlmeval_run_dir(tmp_path, "tiny", "ClsBench_logo")
    print_predictions(str(tmp_path), ["tiny"], ["ClsBench_logo"])
    out = capsys.readouterr().out
    assert "inference only (no scores)" in out and str(run / "tiny_ClsBench_logo.tsv") in out
    assert "|" not in out  # no table of empty cells


def test_auto_image_mode_counts_the_copys_rows_not_the_registrys(fixture_root, tmp_path, monkeypatch):
    """An 8-row copy of a 2,000-image dataset: inline while 8 rows fit under the threshold, whatever the full size."""
    docs = list(export.tsv_rows("logo", fixture_root))
    mean = sum(len(row["image"]) for row in docs) / len(docs) * 4 / 3  # base64, as write_tsv estimates it
    assert DATASETS["logo"].expected_size > 20 * len(docs)
    monkeypatch.setattr(export, "INLINE_LIMIT_BYTES", int(mean * len(docs) * 2))  # 8 rows fit, the registry's not
    assert export.read_sidecar(write_tsv("logo", tmp_path / "a", fixture_root))["images"] == "inline"
    monkeypatch.setattr(export, "INLINE_LIMIT_BYTES", int(mean * len(docs) / 2))
    assert export.read_sidecar(write_tsv("logo", tmp_path / "b", fixture_root))["images"] == "files"


def test_print_table_keeps_a_class_name_set_on_its_own_row(tmp_path, capsys):
    """Before: ClsBench_imagenet and ClsBench_imagenet_openai both filled one row's IMN cell, the last one winning.
    The ``_acc.csv`` layout is VLMEvalKit's (``Overall`` column, ``<model>_<data>_acc.csv`` in the run folder)."""
    from clsbench.tasks.toolkits.vlmeval.run import print_table

    run = tmp_path / "clsbench_qwen2-vl-7b-instruct" / "T20261205_G0"
    run.mkdir(parents=True)
    for data, overall in (("ClsBench_imagenet", "0.125"), ("ClsBench_imagenet_openai", "0.875")):
        (run / f"clsbench_qwen2-vl-7b-instruct_{data}_acc.csv").write_text(f"split,Overall\nnone,{overall}\n")
    print_table(str(tmp_path), ["clsbench_qwen2-vl-7b-instruct"], ["ClsBench_imagenet", "ClsBench_imagenet_openai"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| clsbench_")]
    assert len(rows) == 2, rows
    assert rows[0].startswith("| clsbench_qwen2-vl-7b-instruct |") and "12.5" in rows[0]
    assert rows[1].startswith("| clsbench_qwen2-vl-7b-instruct [openai names] |") and "87.5" in rows[1]


def test_export_vlmeval_keeps_a_current_tsv_unless_forced(fixture_root, tmp_path, capsys):
    """Before: every rerun rewrote the TSV (several GB for ImageNet) and said nothing about it."""
    from clsbench.tasks.cli.main import main

    argv = ["export-vlmeval", "--datasets", "logo", "--output-dir", str(tmp_path), "--data-dir", str(fixture_root)]
    assert main([*argv, "--no-progress"]) == 0
    tsv = tmp_path / "ClsBench_logo.tsv"
    written = tsv.stat().st_mtime_ns
    capsys.readouterr()
    assert main([*argv, "--no-progress"]) == 0
    assert "(current: kept; --force rewrites it)" in capsys.readouterr().out
    assert tsv.stat().st_mtime_ns == written
    assert main([*argv, "--no-progress", "--images", "files"]) == 0  # another image mode: exported again
    assert "holds inline images, files asked" in capsys.readouterr().err
    assert main([*argv, "--no-progress", "--images", "files", "--force"]) == 0
    assert "current: kept" not in capsys.readouterr().out and tsv.stat().st_mtime_ns != written
