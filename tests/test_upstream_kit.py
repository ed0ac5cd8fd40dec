"""The upstream lmms-eval kit stands alone (issue 24): generated from clsbench's one source, run without clsbench.

* the kit's Python imports only the standard library and lmms-eval's own dependencies, and is ruff-clean;
* imported where ``import clsbench`` fails, it asks byte-identical questions and parses replies identically;
* ``clsbench questions`` writes the questions as data, and the kit reads them instead of drawing;
* in an interpreter WITHOUT clsbench but with lmms-eval 0.7.3, lmms-eval's own CLI runs the kit (built-in
  ``llava_hf`` on the tiny LLaVA, fixture data) and gives clsbench's own accuracy, prompts and letters;
* ``PR.md`` is generated from the registry, with the real output of the smoke run.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from test_parsing import GRADED, OPTIONS

from clsbench.tasks.protocol.parsing import parse_answer
from clsbench.tasks.protocol.questions import format_prompt, make_sample
from clsbench.tasks.protocol.registry import DATASETS
from clsbench.tasks.toolkits.upstream import DATA_TERMS, KIT_DEPENDENCIES, kit_task_names, write_upstream_kit

ROOT = Path(__file__).resolve().parent.parent
PARSING_DATA = Path(__file__).parent / "data" / "parsing"
SAMPLE_KEYS = ("0", "1", "2", "7", "42", "123", "1000", "4999")
GLDV2_NAMES = [f"landmark {index}" for index in range(709)]  # gldv2's names come with the data

# Run in a subprocess: clsbench is made unimportable first, then the kit's top utils.py is loaded by path as
# lmms-eval loads it; it answers the cases given on stdin.
KIT_SCRIPT = r"""
import importlib.util, json, sys
sys.modules["clsbench"] = None
try:
    import clsbench  # noqa: F401
except ImportError:
    pass
else:
    raise SystemExit("clsbench is importable")
folder = sys.argv[1]
spec = importlib.util.spec_from_file_location("utils", folder + "/utils.py")
utils = importlib.util.module_from_spec(spec)
spec.loader.exec_module(utils)
docs = utils._KIT
import pathlib
for path in sorted(pathlib.Path(folder).rglob("*.py")):  # every kit module imports where clsbench cannot
    if path.parent.name != "protocol":
        other = importlib.util.spec_from_file_location("kit_" + path.parent.name + "_" + path.stem, path)
        other.loader.exec_module(importlib.util.module_from_spec(other))
parsing = sys.modules[docs.__package__ + ".parsing"]
cases = json.load(sys.stdin)
questions = []
for case in cases["questions"]:
    sample = docs.make_sample(case["dataset"], case["key"], case["label"], case["names"], n_options=case["n"])
    doc = {"question": sample.question, "options": list(sample.options)}
    questions.append([docs.doc_to_text(doc), list(sample.options), sample.answer])
parses = [parsing.parse_answer(reply, options) for reply, options in cases["parses"]]
loaded = sorted(name for name, module in sys.modules.items() if "clsbench" in name and module is not None)
json.dump({"questions": questions, "parses": parses, "modules": loaded}, sys.stdout)
"""


@pytest.fixture(scope="module")
def kit(tmp_path_factory) -> Path:
    return write_upstream_kit(tmp_path_factory.mktemp("kit"), "test")


def question_cases() -> list[dict]:
    cases = []
    for key, spec in DATASETS.items():
        for name_set in spec.name_sets:
            names = list(spec.names(name_set) or GLDV2_NAMES)
            for sample_key in SAMPLE_KEYS:
                label = int(hashlib.sha256(f"{key}{sample_key}".encode()).hexdigest(), 16) % len(names)
                for n in (26, 4):
                    cases.append({"dataset": key, "key": sample_key, "label": label, "names": names, "n": n})
    return cases


def parse_cases() -> list[tuple]:
    cases = [(reply, OPTIONS) for reply, _ in GRADED]
    questions = {q["qid"]: q["options"] for q in json.loads((PARSING_DATA / "questions.json").read_text())}
    for table in sorted(PARSING_DATA.glob("graded_*.jsonl")):
        for line in table.read_text("utf-8").splitlines():
            row = json.loads(line)
            cases.append((row["reply"], questions[row["qid"]]))
    return cases


def test_kit_asks_and_parses_byte_identically_where_clsbench_cannot_be_imported(kit):
    cases = {"questions": question_cases(), "parses": parse_cases()}
    run = subprocess.run(
        [sys.executable, "-c", KIT_SCRIPT, str(kit)],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    answer = json.loads(run.stdout)
    assert not [m for m in answer["modules"] if m.split(".")[0] == "clsbench"]
    expected = []
    for case in cases["questions"]:
        sample = make_sample(case["dataset"], case["key"], case["label"], case["names"], n_options=case["n"])
        expected.append([format_prompt(sample.question, sample.options), list(sample.options), sample.answer])
    assert len(expected) >= 150 and {case["dataset"] for case in cases["questions"]} == set(DATASETS)
    assert answer["questions"] == expected
    assert len(cases["parses"]) > 600
    assert answer["parses"] == [parse_answer(reply, options) for reply, options in cases["parses"]]


def test_kit_python_needs_only_lmms_evals_dependencies_and_is_ruff_clean(kit):
    allowed = set(sys.stdlib_module_names) | KIT_DEPENDENCIES
    python_files = sorted(kit.rglob("*.py"))
    assert {"utils.py", "convert_dataset.py", "draws.py", "parsing.py", "questions.py", "docs.py"} <= {
        path.name for path in python_files
    }
    for path in python_files:
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            assert all(name.split(".")[0] in allowed for name in names), (path, names)
    assert not list(kit.rglob("hooks.py")) and not list(kit.rglob("_generate_configs.py"))
    ruff = [sys.executable, "-m", "ruff"]
    config = ["--config", str(ROOT / "pyproject.toml")]
    for command in (["check", *config, str(kit)], ["format", "--check", *config, str(kit)]):
        run = subprocess.run([*ruff, *command], capture_output=True, text=True)
        assert run.returncode == 0, run.stdout + run.stderr


def test_pr_text_and_readme_come_from_the_registry(kit):
    pr = (kit.parent / "PR.md").read_text("utf-8")
    readme = (kit / "README.md").read_text("utf-8")
    assert set(DATA_TERMS) == set(DATASETS)
    for key, spec in DATASETS.items():
        for text in (pr, readme):
            assert f"`cls_{key}_mcq`" in text and spec.title in text, key
    for text in (pr, readme):
        assert "others" not in text and "arXiv:2412.16418" in text
        assert "pip install clsbench" not in text and "(PyPI)" not in text
    assert "it is not on PyPI" in pr and "Model wrappers" in pr and "cls_<dataset>_mcq_textsim" in pr
    assert "Not run when this text was generated" in pr  # no smoke run was asked: the text says so
    for name in kit_task_names():
        assert list(kit.rglob(f"{name}.yaml")), name


def test_questions_command_writes_the_table_the_kit_reads(fixture_root, kit, tmp_path):
    import datasets
    import pyarrow.parquet as pq

    from clsbench.tasks.cli.main import main
    from clsbench.tasks.data.loading import load_rows
    from clsbench.tasks.data.samples import add_questions

    out = tmp_path / "logo_questions.parquet"  # --output-dir DIR writes DIR/<dataset>_questions.parquet
    assert (
        main(
            [
                "questions",
                "--datasets",
                "cls_logo_mcq",
                "--n-options",
                "4",
                "--data-dir",
                str(fixture_root),
                "--output-dir",
                str(out.parent),
            ]
        )
        == 0
    )
    table = pq.read_table(out).to_pylist()
    docs = add_questions(load_rows("logo", fixture_root), "logo", n_options=4)
    assert [row["options"] for row in table] == docs["options"] and [row["answer"] for row in table] == docs["answer"]
    assert {row["protocol_version"] for row in table} == {"clsbench-v1/3.0"} and table[0]["n_options"] == 4
    assert [DATASETS["logo"].questions[row["wording_index"]] for row in table] == docs["question"]
    # a variant's task name is refused with the flags that ask it (one grammar with `clsbench options`)
    assert (
        main(
            [
                "questions",
                "--datasets",
                "cls_logo_mcq_4opt",
                "--data-dir",
                str(fixture_root),
                "--output-dir",
                str(out.parent),
            ]
        )
        != 0
    )

    spec = importlib.util.spec_from_file_location("utils", kit / "utils.py")
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    rows = load_rows("logo", fixture_root)
    stored = pq.read_table(out).drop_columns(["dataset", "label", "source_id"])
    tampered = {name: stored.column(name).to_pylist() for name in stored.column_names}
    tampered["options"][0] = list(reversed(tampered["options"][0]))  # read, not redrawn: the reversal shows
    tampered["answer"][0] = "ABCD"[3 - "ABCD".index(tampered["answer"][0])]
    tampered["option_labels"][0] = list(reversed(tampered["option_labels"][0]))
    with_questions = datasets.concatenate_datasets([rows, datasets.Dataset.from_dict(tampered)], axis=1)
    read = utils._KIT.questions_for(with_questions, "logo", n_options=4)
    assert read["options"] == tampered["options"] and read["answer"] == tampered["answer"]
    redrawn = utils._KIT.questions_for(with_questions, "logo", n_options=26)  # made for 4 options: drawn again
    assert redrawn["options"] == add_questions(load_rows("logo", fixture_root), "logo")["options"]
    tampered["answer"][1] = "ABCD"[("ABCD".index(tampered["answer"][1]) + 1) % 4]
    wrong = datasets.concatenate_datasets([rows, datasets.Dataset.from_dict(tampered)], axis=1)
    with pytest.raises(RuntimeError, match="is not its label"):
        utils._KIT.questions_for(wrong, "logo", n_options=4)


def isolated_python(tmp_path: Path) -> tuple[Path, Path]:
    """A venv whose packages are this venv's but clsbench's (symlinked), with lmms_eval copied: (python, lmms_eval)."""
    site = Path(sysconfig.get_paths()["purelib"])
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    links = tmp_path / "site"
    links.mkdir()
    for entry in site.iterdir():
        name = entry.name
        if "clsbench" in name.lower() or name == "lmms_eval" or name.endswith(".pth") or name == "__pycache__":
            continue
        (links / name).symlink_to(entry)
    shutil.copytree(site / "lmms_eval", links / "lmms_eval", symlinks=True)
    python = venv / "bin" / "python"
    venv_site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    (venv_site / "packages_but_clsbench.pth").write_text(f"{links}\n")
    return python, links / "lmms_eval"


def offline_env(**extra) -> dict:
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "CLSBENCH_LMMS_TASKS": "0", **extra}


def logged(output: Path, task: str) -> tuple[dict, list[dict]]:
    results = sorted(output.rglob("*_results.json"))
    assert results, f"no results under {output}"
    samples = sorted(output.rglob(f"*samples_{task}*.jsonl"))
    assert samples, f"no logged samples under {output}"
    rows = [json.loads(line) for line in samples[-1].read_text().splitlines()]
    return json.loads(results[-1].read_text())["results"][task], sorted(rows, key=lambda row: row["doc_id"])


def test_kit_runs_in_lmms_eval_without_clsbench_as_clsbench_does(fixture_root, tiny_llava, tmp_path):
    kit = write_upstream_kit(
        tmp_path / "kit", "test", smoke=True, smoke_task="cls_logo_mcq", data_dir=fixture_root
    )  # the smoke run: lmms-eval's CLI with the dummy model, its real output pasted into PR.md
    pr = (kit.parent / "PR.md").read_text("utf-8")
    smoke = pr.split("## How to test")[1].split("## Not included")[0]
    assert "python -m lmms_eval --model dummy --model_args response=A --tasks cls_logo_mcq --limit 8" in smoke
    assert "|cls_logo_mcq|" in smoke.replace(" ", "") and "accuracy" in smoke and "6 rows" in smoke

    python, lmms_eval = isolated_python(tmp_path)
    env = offline_env()
    check = subprocess.run(
        [str(python), "-c", "import lmms_eval, datasets, PIL; import clsbench"], capture_output=True, text=True, env=env
    )
    assert check.returncode != 0 and "No module named 'clsbench'" in check.stderr, check.stderr
    shutil.copytree(kit, lmms_eval / "tasks" / "cls_mcq")
    point = subprocess.run(  # as the kit's README tells a user with a local copy
        [str(python), "convert_dataset.py", "logo", "--prepared", str(fixture_root / "logo")],
        cwd=lmms_eval / "tasks" / "cls_mcq",
        capture_output=True,
        text=True,
        env=env,
    )
    assert point.returncode == 0, point.stderr
    model = ["--model", "llava_hf", "--model_args", f"pretrained={tiny_llava},device_map=cpu,device=cpu"]
    common = [*model, "--tasks", "cls_logo_mcq", "--limit", "8", "--batch_size", "1", "--log_samples"]
    kit_run = subprocess.run(
        [str(python), "-m", "lmms_eval", *common, "--output_path", str(tmp_path / "kit_out")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert "clsbench" not in kit_run.stderr.replace("CLSBENCH", ""), kit_run.stderr[-3000:]
    package_run = subprocess.run(
        [sys.executable, "-m", "clsbench.tasks.cli", "lmms", "--data-dir", str(fixture_root), *common]
        + ["--output_path", str(tmp_path / "package_out")],
        capture_output=True,
        text=True,
        env=offline_env(),
        cwd=tmp_path,
        timeout=300,
    )
    assert package_run.returncode == 0, package_run.stderr[-3000:]
    kit_result, kit_rows = logged(tmp_path / "kit_out", "cls_logo_mcq")
    package_result, package_rows = logged(tmp_path / "package_out", "cls_logo_mcq")
    assert len(kit_rows) == len(package_rows) == 6  # the fixture has 6 rows; --limit 8 takes them all
    assert kit_result["accuracy,none"] == package_result["accuracy,none"]
    assert kit_result["unparseable_rate,none"] == package_result["unparseable_rate,none"]
    for ours, theirs in zip(kit_rows, package_rows):
        assert ours["input"] == theirs["input"] and ours["target"] == theirs["target"]
        assert ours["filtered_resps"] == theirs["filtered_resps"]
        assert ours["decision"] == theirs["decision"]


def test_kit_names_convert_dataset_until_a_local_dataset_is_pointed_at(kit, capsys):
    import datasets

    spec = importlib.util.spec_from_file_location("utils", kit / "utils.py")
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    sentinel = datasets.load_dataset("parquet", data_files={"test": str(kit / "_missing_local_data.parquet")})["test"]
    with pytest.raises(RuntimeError, match=r"python convert_dataset.py logo --source RAW_DIR"):
        utils.cls_process_docs_logo(sentinel)
    assert "cls_mcq: error: logo: FlickrSportLogos-10 is not on the Hugging Face Hub" in capsys.readouterr().err
