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

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
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
    level: str  # "error" stops clsbench lmms/demo (unless `toolkit` names another); "warning" and "info" only print
    message: str
    toolkit: str | None = None  # "vlmeval": concerns only VLMEvalKit's run.py, so it never stops lmms-eval runs


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


# What VLMEvalKit's run.py needs beside clsbench when VLMEvalKit is installed with --no-deps (package data; the
# file says how each line was found). VLMEvalKit's own requirements.txt does not resolve against constraints.txt.
VLMEVALKIT_REQUIREMENTS = Path(__file__).with_name("requirements-vlmevalkit.txt")
VLMEVALKIT_COMMIT = "e8e78f0"  # the VLMEvalKit commit the requirements file and the end-to-end tests were checked at
VLMEVALKIT_INSTALL = (
    f"git clone https://github.com/open-compass/VLMEvalKit && git -C VLMEvalKit checkout {VLMEVALKIT_COMMIT} && "
    f"pip install --no-deps -e VLMEvalKit && pip install -r {VLMEVALKIT_REQUIREMENTS}"
)


def vlmevalkit_requirements(path: str | Path = VLMEVALKIT_REQUIREMENTS) -> list[Requirement]:
    """The requirement lines of the VLMEvalKit requirements file (comments and blank lines skipped)."""
    requirements = []
    for number, raw in enumerate(Path(path).read_text("utf-8").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            requirements.append(Requirement(line))
        except InvalidRequirement as error:
            raise ValueError(f"{path}:{number}: not a requirement line: {raw!r} ({error})") from error
    return requirements


def _modules_by_distribution() -> dict[str, list[str]]:
    """Installed distribution (canonical name) -> the top-level modules it provides (from the installed metadata)."""
    provided: dict[str, list[str]] = {}
    for module, owners in metadata.packages_distributions().items():
        if module.isidentifier():
            for owner in owners:
                provided.setdefault(canonicalize_name(owner), []).append(module)
    return {name: sorted(set(modules)) for name, modules in provided.items()}


def _unmet_dependencies(distribution: str) -> list[str]:
    """``distribution``'s own requirements (no extras) that the installed versions do not meet."""
    unmet = []
    environment = {**default_environment(), "extra": ""}
    for text in metadata.requires(distribution) or []:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        have = installed_version(requirement.name)
        if have is None:
            unmet.append(f"{distribution} needs {requirement}, which is not installed")
        elif requirement.specifier and not requirement.specifier.contains(have, prereleases=True):
            unmet.append(f"{distribution} needs {requirement}, but {requirement.name} {have} is installed")
    return unmet


def vlmevalkit_findings(path: str | Path = VLMEVALKIT_REQUIREMENTS) -> list[Finding]:
    """Check this environment against the VLMEvalKit requirements file: what run.py will fail on, and the fix.

    Each line's distribution must be installed, provide an importable module, and have its own dependencies met
    (latex2sympy2_extended refuses antlr4-python3-runtime 4.7.2, constraints.txt's pin); a version other than the
    file's pin is only a warning (untested, not known to fail).
    """
    fix = f"pip install -r {path}"
    missing, unimportable, unmet, other = [], [], [], []
    provided = _modules_by_distribution()
    for requirement in vlmevalkit_requirements(path):
        have = installed_version(requirement.name)
        if have is None:
            missing.append(str(requirement))
            continue
        if not requirement.specifier.contains(have, prereleases=True):
            other.append(f"{requirement.name} {have} (tested: {requirement.specifier})")
        modules = provided.get(canonicalize_name(requirement.name), [])
        if not modules or all(importlib.util.find_spec(module) is None for module in modules):
            unimportable.append(f"{requirement.name} ({', '.join(modules) or 'no module found'})")
        unmet += _unmet_dependencies(requirement.name)
    findings = []
    if missing:
        findings.append(
            Finding(
                "error",
                f"VLMEvalKit's run.py needs packages that are not installed: {', '.join(missing)}. Fix: {fix}",
                "vlmeval",
            )
        )
    if unimportable:
        findings.append(
            Finding(
                "error",
                f"installed but not importable, so VLMEvalKit's run.py will fail: {', '.join(unimportable)}. "
                f"Fix: pip install --force-reinstall -r {path}",
                "vlmeval",
            )
        )
    if unmet:
        findings.append(
            Finding(
                "error",
                f"VLMEvalKit's run.py will fail on these versions: {'; '.join(unmet)}. Fix: {fix}",
                "vlmeval",
            )
        )
    if other:
        findings.append(
            Finding(
                "warning",
                f"VLMEvalKit's run.py was tested with other versions of: {', '.join(other)}. To get the tested set: "
                f"{fix}",
                "vlmeval",
            )
        )
    return findings


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
    if versions.get("vlmeval"):
        findings.append(Finding("info", f"VLMEvalKit (vlmeval): installed, {versions['vlmeval']}", "vlmeval"))
        findings += vlmevalkit_findings()
    else:
        findings.append(
            Finding(
                "info",
                "VLMEvalKit (vlmeval): not installed (not on PyPI; only `clsbench vlmeval` needs it). Install it "
                f"beside clsbench: {VLMEVALKIT_INSTALL}",
                "vlmeval",
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
    """The error-level findings for this environment (what stops ``clsbench lmms`` and ``demo``).

    A broken VLMEvalKit install is left out: it stops nothing that runs through lmms-eval (doctor still names it).
    """
    return [finding.message for finding in diagnose() if finding.level == "error" and finding.toolkit != "vlmeval"]


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
