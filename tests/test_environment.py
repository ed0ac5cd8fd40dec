"""Installs that do not rot: known-bad versions flagged, versions recorded with every result."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from clsbench.tasks.runtime.environment import (
    VERSIONS_FILE,
    diagnose,
    package_versions,
    torch_pair_finding,
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
