"""VLMEvalKit TSV export (no VLMEvalKit needed): schema, byte-identical images, the lmms-eval tasks' exact questions."""

from __future__ import annotations

import base64

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
