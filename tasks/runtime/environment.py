"""What this install runs on: package versions, the known-bad combinations, and the record kept with results.

``clsbench doctor`` prints :func:`diagnose`; ``clsbench lmms`` and ``clsbench demo`` run the same
check first and stop on an error, instead of letting lmms-eval fail after start-up (and exit 0).
Every output folder clsbench writes gets a :data:`VERSIONS_FILE` from :func:`write_versions`, so a
result can always be traced to the versions that made it.

Versions are read from installed distributions' metadata (no imports), except the few checks that
must import a module to know (torchvision's compiled operators, the LLaVA-NeXT repository).
"""

from __future__ import annotations

import importlib.util
import json
import platform
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

VERSIONS_FILE = "clsbench_versions.json"
# Distributions whose versions decide results or break runs, in the order doctor prints them.
WATCHED = (
    "clsbench",
    "lmms_eval",
    "transformers",
    "torch",
    "torchvision",
    "datasets",
    "huggingface_hub",
    "filelock",
    "open_clip_torch",
    "sentence-transformers",
    "accelerate",
    "decord",
    "sentencepiece",
    "protobuf",
    "vlmeval",
)
TESTED_LMMS_EVAL = "0.7.3"


@dataclass(frozen=True)
class KnownBad:
    """A version range that breaks clsbench (optionally only beside another package's range)."""

    package: str
    bad: str  # a PEP 440 specifier set
    problem: str
    fix: str
    when: tuple[str, str] | None = None  # (other package, its specifier set)


KNOWN_BAD: tuple[KnownBad, ...] = (
    KnownBad(
        "filelock",
        ">=4",
        "lmms-eval 0.7.3's evaluator imports filelock._api, which filelock 4 removed: every evaluation dies "
        "with \"No module named 'filelock._api'\" and lmms-eval still exits 0",
        "pip install 'filelock<4'",
        when=("lmms_eval", "==0.7.3"),
    ),
    KnownBad(
        "sentencepiece",
        ">=0.2.3",
        "sentencepiece 0.2.3's sentencepiece_model_pb2 is protobuf 7.36.1 code and raises VersionError on this older "
        "protobuf runtime, so a checkpoint that ships only a SentencePiece tokenizer.model does not load "
        "(transformers' LlamaConverter and the slow LlamaTokenizer import it); protobuf 7 cannot be installed beside "
        "lmms-eval 0.7.3, which pins wandb 0.25.0 (protobuf<7)",
        "pip install 'sentencepiece<0.2.3'",
        when=("protobuf", "<7.36.1"),
    ),
    KnownBad(
        "transformers",
        "<4.57",
        "clsbench_hf needs the processors and chat templates of transformers 4.57 or newer",
        "pip install 'transformers>=4.57,<6'",
    ),
    KnownBad(
        "datasets",
        "<3",
        "the pinned parquet loads (hf:// data_files at a revision) need datasets 3 or newer",
        "pip install 'datasets>=3,<6'",
    ),
)


@dataclass(frozen=True)
class Finding:
    level: str  # "error" stops clsbench lmms/demo; "warning" and "info" only print
    message: str


def installed_version(distribution: str) -> str | None:
    """The installed version of a distribution, or None."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def clsbench_version() -> str:
    return installed_version("clsbench") or "unknown (not installed)"


def package_versions() -> dict[str, str | None]:
    return {name: installed_version(name) for name in WATCHED}


def _version(text: str | None) -> Version | None:
    try:
        return Version(text) if text else None
    except InvalidVersion:
        return None


def _matches(version: str | None, specifiers: str) -> bool:
    parsed = _version(version)
    return parsed is not None and SpecifierSet(specifiers).contains(parsed, prereleases=True)


def _local_stripped(version: str | None) -> Version | None:
    parsed = _version(version)
    return Version(parsed.base_version) if parsed is not None else None


def torch_pair_finding(torch: str | None, torchvision: str | None) -> Finding | None:
    """torchvision 0.N pairs with torch 2.(N-15) (0.29 with 2.14, 0.27 with 2.12); other pairs fail at import."""
    torch_v, vision_v = _local_stripped(torch), _local_stripped(torchvision)
    if torch_v is None or vision_v is None or torch_v.major != 2 or vision_v.major != 0:
        return None
    if vision_v.minor - 15 == torch_v.minor:
        return None
    expected = f"0.{torch_v.minor + 15}"
    return Finding(
        "error",
        f"torch {torch} and torchvision {torchvision} are not a released pair (torch 2.{torch_v.minor} goes with "
        f"torchvision {expected}): torchvision fails at import. Fix: pip install 'torch=={torch_v.base_version}' "
        f"'torchvision=={expected}.*'",
    )


def torchvision_import_finding() -> Finding | None:
    """Import torchvision: a CPU-only torch wheel beside the registry's torchvision fails here."""
    if importlib.util.find_spec("torchvision") is None:
        return None
    try:
        import torchvision  # noqa: F401
    except Exception as error:  # RuntimeError "operator torchvision::nms does not exist", among others
        return Finding(
            "error",
            f"torchvision does not import ({type(error).__name__}: {error}). This is what a CPU-only torch wheel "
            "beside the registry's torchvision gives. Fix: install a matching pair from the registry, e.g. "
            "pip install 'torch==2.14.1' 'torchvision==0.29.1'",
        )
    return None


def sentencepiece_import_finding() -> Finding | None:
    """Import sentencepiece's protobuf model module, as converting a ``tokenizer.model`` to a fast tokenizer does."""
    if importlib.util.find_spec("sentencepiece") is None:
        return None
    try:
        from sentencepiece import sentencepiece_model_pb2  # noqa: F401
    except Exception as error:  # google.protobuf.runtime_version.VersionError: gencode newer than the runtime
        return Finding(
            "error",
            f"`from sentencepiece import sentencepiece_model_pb2` fails ({type(error).__name__}: {error}): a "
            "checkpoint that ships only a SentencePiece tokenizer.model will not load. Fix: pip install "
            "'sentencepiece<0.2.3' (or a protobuf at least as new as the version the error names)",
        )
    return None


def diagnose(versions: dict[str, str | None] | None = None, *, import_checks: bool = True) -> list[Finding]:
    """Every known-bad combination in ``versions`` (default: this environment), most serious first."""
    versions = package_versions() if versions is None else versions
    findings: list[Finding] = []
    for rule in KNOWN_BAD:
        if not _matches(versions.get(rule.package), rule.bad):
            continue
        if rule.when and not _matches(versions.get(rule.when[0]), rule.when[1]):
            continue
        findings.append(Finding("error", f"{rule.package} {versions[rule.package]}: {rule.problem}. Fix: {rule.fix}"))
    pair = torch_pair_finding(versions.get("torch"), versions.get("torchvision"))
    if pair:
        findings.append(pair)
    if import_checks and not pair:
        broken = torchvision_import_finding()
        if broken:
            findings.append(broken)
    flagged_sentencepiece = any(f.message.startswith("sentencepiece ") for f in findings)
    if import_checks and not flagged_sentencepiece:
        broken = sentencepiece_import_finding()
        if broken:
            findings.append(broken)
    for name in ("lmms_eval", "transformers", "torch", "datasets"):
        if versions.get(name) is None:
            findings.append(Finding("error", f"{name} is not installed. Fix: pip install clsbench (it depends on it)"))
    lmms = versions.get("lmms_eval")
    if lmms and lmms != TESTED_LMMS_EVAL:
        findings.append(
            Finding(
                "warning",
                f"lmms-eval {lmms} is untested: clsbench is tested with {TESTED_LMMS_EVAL} "
                f"(pip install 'lmms-eval=={TESTED_LMMS_EVAL}')",
            )
        )
    if _matches(versions.get("transformers"), ">=6"):
        findings.append(
            Finding(
                "warning",
                f"transformers {versions['transformers']} is an untested major version "
                "(tested: 5.x; see constraints.txt)",
            )
        )
    if versions.get("decord") is None and lmms:
        findings.append(
            Finding(
                "warning",
                "decord is not installed: lmms-eval's HF model files (llava_hf, qwen2_vl, ...) "
                "import it at top level. Fix: pip install decord",
            )
        )
    if versions.get("open_clip_torch") is None:
        findings.append(
            Finding(
                "info",
                "open_clip_torch is not installed: `clsbench clip` and the demo need it (pip install 'clsbench[clip]')",
            )
        )
    if import_checks:
        llava = importlib.util.find_spec("llava") is not None
        findings.append(
            Finding(
                "info",
                "lmms-eval's llava_onevision model: "
                + (
                    "the LLaVA-NeXT repository (`llava`) is importable"
                    if llava
                    else "needs the LLaVA-NeXT repository, which is not installed (pip install "
                    "git+https://github.com/LLaVA-VL/LLaVA-NeXT.git); or use --model clsbench_hf with "
                    "pretrained=llava-hf/llava-onevision-qwen2-7b-ov-hf"
                ),
            )
        )
    findings.append(
        Finding(
            "info",
            "VLMEvalKit (vlmeval): "
            + (
                f"installed, {versions['vlmeval']}"
                if versions.get("vlmeval")
                else "not installed (not on PyPI; only `clsbench vlmeval` needs it)"
            ),
        )
    )
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(findings, key=lambda finding: order[finding.level])


def doctor_report(versions: dict[str, str | None] | None = None) -> tuple[str, bool]:
    """The text ``clsbench doctor`` prints, and whether any error was found."""
    versions = package_versions() if versions is None else versions
    findings = diagnose(versions)
    lines = [
        f"clsbench {versions.get('clsbench') or clsbench_version()} on Python {platform.python_version()} "
        f"({platform.machine()})",
        "",
    ]
    width = max(len(name) for name in versions)
    lines += [f"  {name:<{width}}  {version or '-'}" for name, version in versions.items()]
    lines.append("")
    errors = [finding for finding in findings if finding.level == "error"]
    lines += [f"{finding.level}: {finding.message}" for finding in findings]
    lines.append("")
    lines.append(f"{len(errors)} known-bad combination(s) found." if errors else "No known-bad combination found.")
    return "\n".join(lines), bool(errors)


def environment_errors() -> list[str]:
    """The error-level findings for this environment (what stops ``clsbench lmms`` and ``demo``)."""
    return [finding.message for finding in diagnose() if finding.level == "error"]


def versions_record(extra: dict | None = None) -> dict:
    """What :func:`write_versions` writes: clsbench's and its dependencies' versions, the command, the time."""
    return {
        "clsbench": clsbench_version(),
        "packages": package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "command": [Path(sys.argv[0]).name, *sys.argv[1:]],
        "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **(extra or {}),
    }


def write_versions(folder: str | Path, extra: dict | None = None) -> Path:
    """Record the versions that produced the results in ``folder`` (``clsbench_versions.json``)."""
    path = Path(folder) / VERSIONS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(versions_record(extra), indent=1) + "\n", "utf-8")
    partial.replace(path)
    return path
