"""Installs that do not rot: known-bad versions flagged, versions recorded with every result."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from clsbench.tasks.runtime.environment import (
    VERSIONS_FILE,
    VLMEVALKIT_REQUIREMENTS,
    Finding,
    diagnose,
    package_versions,
    torch_pair_finding,
    vlmevalkit_findings,
    vlmevalkit_requirements,
    write_versions,
)

CLSBENCH = [sys.executable, "-m", "clsbench.tasks.cli"]
GOOD = {
    "clsbench": "0.2.0",
    "lmms_eval": "0.7.3",
    "transformers": "5.24.0",
    "torch": "2.14.1",
    "torchvision": "0.29.1",
    "datasets": "5.2.0",
    "huggingface_hub": "2.4.0",
    "filelock": "3.32.7",
    "open_clip_torch": "3.3.0",
    "sentence-transformers": "6.2.0",
    "accelerate": "1.0.0",
    "decord": "0.6.0",
    "vlmeval": None,
}


def errors(versions: dict) -> list[str]:
    return [finding.message for finding in diagnose(versions, import_checks=False) if finding.level == "error"]


def test_the_tested_set_has_no_known_bad_combination():
    assert errors(GOOD) == []


def test_filelock_4_beside_lmms_eval_0_7_3_is_flagged_with_the_fix():
    found = errors({**GOOD, "filelock": "4.3.1"})
    assert len(found) == 1 and "filelock._api" in found[0] and "pip install 'filelock<4'" in found[0]
    assert errors({**GOOD, "filelock": "4.3.1", "lmms_eval": "0.8.0"}) == []  # only that lmms-eval imports it


@pytest.mark.parametrize(
    "torch,vision,bad",
    [
        ("2.14.1", "0.29.1", False),
        ("2.12.1+cu126", "0.27.1", False),
        ("2.13.0+cpu", "0.29.1", True),
        ("2.9.1", "0.24.1", False),
    ],
)
def test_torch_and_torchvision_must_be_a_released_pair(torch, vision, bad):
    finding = torch_pair_finding(torch, vision)
    assert (finding is not None) is bad
    if bad:
        assert "torchvision 0.28" in finding.message and "fails at import" in finding.message


def test_missing_core_packages_and_untested_versions():
    assert any("transformers is not installed" in m for m in errors({**GOOD, "transformers": None}))
    assert any("transformers 4.40.0" in m for m in errors({**GOOD, "transformers": "4.40.0"}))
    warnings = [
        f.message for f in diagnose({**GOOD, "lmms_eval": "0.8.0"}, import_checks=False) if f.level == "warning"
    ]
    assert any("lmms-eval 0.8.0 is untested" in m for m in warnings)


@pytest.fixture(scope="module")
def fake_filelock_4(tmp_path_factory) -> dict:
    """An environment in which the installed metadata says filelock 4.3.1, as a user's `pip install filelock` gives."""
    site = tmp_path_factory.mktemp("site")
    info = site / "filelock-4.3.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: filelock\nVersion: 4.3.1\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


def test_doctor_flags_filelock_4_installed_by_hand(fake_filelock_4):
    run = subprocess.run([*CLSBENCH, "doctor"], capture_output=True, text=True, env=fake_filelock_4, timeout=120)
    assert run.returncode == 1
    assert "filelock 4.3.1" in run.stdout and "pip install 'filelock<4'" in run.stdout
    assert "1 known-bad combination(s) found." in run.stdout


@pytest.mark.parametrize("command", [["lmms", "--model", "dummy", "--tasks", "cls_logo_mcq"], ["demo"]])
def test_lmms_and_demo_stop_with_the_doctor_message(fake_filelock_4, tmp_path, command):
    run = subprocess.run(
        [*CLSBENCH, *command], capture_output=True, text=True, env=fake_filelock_4, timeout=120, cwd=tmp_path
    )
    assert run.returncode == 3
    assert "filelock._api" in run.stderr and "stopped before running lmms-eval" in run.stderr
    assert list(tmp_path.iterdir()) == []  # nothing was started


def test_doctor_on_this_environment_is_clean():
    run = subprocess.run([*CLSBENCH, "doctor"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout
    for name in (
        "lmms_eval",
        "transformers",
        "torch",
        "torchvision",
        "datasets",
        "huggingface_hub",
        "filelock",
        "open_clip_torch",
    ):
        assert f"  {name} " in run.stdout
    assert "llava_onevision" in run.stdout and "No known-bad combination found." in run.stdout


def test_version_flag():
    run = subprocess.run([*CLSBENCH, "--version"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == f"clsbench {package_versions()['clsbench']}"


def test_versions_file_records_what_produced_a_result(tmp_path):
    path = write_versions(tmp_path / "out", {"note": 1})
    record = json.loads(path.read_text())
    assert path.name == VERSIONS_FILE
    assert record["clsbench"] == package_versions()["clsbench"] and record["note"] == 1
    assert record["packages"]["filelock"] == package_versions()["filelock"]


def test_export_and_report_folders_carry_the_versions(fixture_root, tmp_path):
    export = subprocess.run(
        [
            *CLSBENCH,
            "export-vlmeval",
            "--datasets",
            "logo",
            "--output-dir",
            str(tmp_path / "tsv"),
            "--data-dir",
            str(fixture_root),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert export.returncode == 0, export.stderr
    assert (tmp_path / "tsv" / VERSIONS_FILE).is_file()


def test_no_message_tells_users_to_run_huggingface_cli():
    root = Path(__file__).resolve().parents[1]
    for folder in ("tasks", "models", "clip_baselines"):
        for path in (root / folder).rglob("*.py"):
            assert "huggingface-cli" not in path.read_text("utf-8"), path
    assert "huggingface-cli" not in (root / "README.md").read_text("utf-8")


def test_sentencepiece_0_2_3_beside_protobuf_6_is_flagged_with_the_fix():
    found = errors({**GOOD, "sentencepiece": "0.2.3", "protobuf": "6.33.6"})
    assert len(found) == 1 and "VersionError" in found[0] and "pip install 'sentencepiece<0.2.3'" in found[0]
    assert errors({**GOOD, "sentencepiece": "0.2.3", "protobuf": "7.36.1"}) == []  # its gencode's own runtime
    assert errors({**GOOD, "sentencepiece": "0.2.2", "protobuf": "6.33.6"}) == []  # the tested set


def test_doctor_imports_sentencepiece_model_pb2_and_names_the_version_error(tmp_path):
    """A sentencepiece whose generated code is newer than the protobuf runtime, as 0.2.3 beside protobuf 6 is."""
    package = tmp_path / "sentencepiece"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "sentencepiece_model_pb2.py").write_text(  # the check sentencepiece 0.2.3's gencode runs first
        "from google.protobuf import runtime_version as _runtime_version\n"
        "_runtime_version.ValidateProtobufRuntimeVersion(_runtime_version.Domain.PUBLIC, 99, 0, 0, '', 'x.proto')\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([*CLSBENCH, "doctor"], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 1, run.stdout
    assert "sentencepiece_model_pb2` fails (VersionError" in run.stdout
    assert "pip install 'sentencepiece<0.2.3'" in run.stdout and "1 known-bad combination(s) found." in run.stdout


# The VLMEvalKit install check (issue 28 item 6). VLMEvalKit is not installed here: these test clsbench's logic
# on real installed metadata plus one planted distribution; tests/test_vlmeval_run.py runs doctor in a real
# VLMEvalKit venv built from the requirements file.


def test_doctor_without_vlmeval_says_how_to_install_it():
    infos = [f.message for f in diagnose(GOOD, import_checks=False) if f.level == "info"]
    (line,) = [m for m in infos if m.startswith("VLMEvalKit (vlmeval): not installed")]
    assert "git clone https://github.com/open-compass/VLMEvalKit" in line and "checkout e8e78f0" in line
    assert "pip install --no-deps -e VLMEvalKit" in line
    assert f"pip install -r {VLMEVALKIT_REQUIREMENTS}" in line and VLMEVALKIT_REQUIREMENTS.is_file()


def test_the_vlmevalkit_requirements_file_is_exactly_pinned_and_packaged():
    requirements = vlmevalkit_requirements()
    names = {canonicalize_name(r.name): r for r in requirements}
    assert len(names) == len(requirements)  # no distribution twice
    for requirement in requirements:  # every line pinned (the tested set), so the recipe cannot drift
        assert [spec.operator for spec in requirement.specifier] == ["=="], requirement
    # The three that an earlier recipe missed: rouge-score (VLMEvalKit's requirements omit it), antlr4 4.11.1
    # (latex2sympy2_extended refuses constraints.txt's 4.7.2), xlsxwriter (run.py's default .xlsx output).
    assert str(names["rouge-score"].specifier) == "==0.1.2"
    assert str(names["antlr4-python3-runtime"].specifier) == "==4.11.1"
    assert "xlsxwriter" in names
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text("utf-8")
    assert '"clsbench.tasks.runtime" = ["requirements-vlmevalkit.txt"]' in pyproject  # doctor reads it installed


def test_a_requirements_line_that_is_not_a_requirement_is_named(tmp_path):
    path = tmp_path / "r.txt"
    path.write_text("# comment\n\ntermcolor==3.3.0  # why\nnot a requirement!\n")
    with pytest.raises(ValueError, match=r"r\.txt:4: not a requirement line"):
        vlmevalkit_requirements(path)


def test_vlmevalkit_check_names_what_is_missing_and_the_fix(tmp_path):
    # pyyaml is installed here (clsbench needs it); xlsxwriter is not, as in the first recipe's venv.
    path = tmp_path / "requirements.txt"
    path.write_text(f"pyyaml=={metadata.version('pyyaml')}\nxlsxwriter==3.3.1\n")
    findings = vlmevalkit_findings(path)
    assert [(f.level, f.toolkit) for f in findings] == [("error", "vlmeval")]
    assert "not installed: xlsxwriter==3.3.1" in findings[0].message
    assert f"Fix: pip install -r {path}" in findings[0].message and "pyyaml" not in findings[0].message


def test_vlmevalkit_check_flags_an_installed_module_that_does_not_import(tmp_path, monkeypatch):
    path = tmp_path / "requirements.txt"
    path.write_text(f"pyyaml=={metadata.version('pyyaml')}\n")
    assert vlmevalkit_findings(path) == []
    real = importlib.util.find_spec
    gone = {"yaml", "_yaml"}  # pyyaml's two top-level modules, as its installed RECORD lists them
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in gone else real(name, *a))
    (finding,) = vlmevalkit_findings(path)
    assert (
        finding.level == "error" and "not importable" in finding.message and "pyyaml (_yaml, yaml)" in finding.message
    )


def test_vlmevalkit_check_flags_antlr4_4_7_2_beside_latex2sympy2_extended(tmp_path, monkeypatch):
    """constraints.txt's antlr4 4.7.2 (installed here) beside latex2sympy2_extended 1.11.0, whose Requires-Dist line
    below is copied from its wheel's METADATA (PyPI, latex2sympy2_extended-1.11.0-py3-none-any.whl)."""
    assert metadata.version("antlr4-python3-runtime") == "4.7.2"
    site = tmp_path / "site"
    (site / "latex2sympy2_extended").mkdir(parents=True)
    (site / "latex2sympy2_extended" / "__init__.py").write_text("")
    info = site / "latex2sympy2_extended-1.11.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: latex2sympy2_extended\nVersion: 1.11.0\nRequires-Dist: sympy\n"
        "Requires-Dist: antlr4-python3-runtime<=4.13.2,>=4.9.3\n"
        'Requires-Dist: antlr4-python3-runtime==4.9.3; extra == "antlr4-9-3"\n'
    )
    (info / "top_level.txt").write_text("latex2sympy2_extended\n")
    monkeypatch.syspath_prepend(str(site))
    path = tmp_path / "requirements.txt"
    path.write_text("latex2sympy2_extended==1.11.0\nantlr4-python3-runtime==4.11.1\n")
    findings = vlmevalkit_findings(path)
    errors_found = [f.message for f in findings if f.level == "error"]
    warnings = [f.message for f in findings if f.level == "warning"]
    assert errors_found == [
        "VLMEvalKit's run.py will fail on these versions: latex2sympy2_extended needs "
        "antlr4-python3-runtime<=4.13.2,>=4.9.3, but antlr4-python3-runtime 4.7.2 is installed. "
        f"Fix: pip install -r {path}"
    ]
    assert warnings == [
        "VLMEvalKit's run.py was tested with other versions of: antlr4-python3-runtime 4.7.2 (tested: ==4.11.1). "
        f"To get the tested set: pip install -r {path}"
    ]


def test_a_broken_vlmevalkit_install_does_not_stop_lmms_runs(monkeypatch):
    from clsbench.tasks.runtime import environment

    found = [Finding("error", "run.py will fail", "vlmeval"), Finding("error", "filelock 4")]
    monkeypatch.setattr(environment, "diagnose", lambda *a, **k: found)
    assert environment.environment_errors() == ["filelock 4"]


def test_clsbench_vlmeval_without_vlmeval_names_the_tested_recipe():
    run = subprocess.run([*CLSBENCH, "vlmeval", "--models", "m", "--datasets", "logo"], capture_output=True, text=True)
    assert run.returncode == 2
    assert (
        "pip install --no-deps -e VLMEvalKit" in run.stderr
        and f"pip install -r {VLMEVALKIT_REQUIREMENTS}" in run.stderr
    )
    assert "rouge-score" not in run.stderr  # the earlier hint, which does not resolve beside constraints.txt
