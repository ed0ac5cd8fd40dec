"""The variant catalog and every name derived from the registry: one owner for each.

* :data:`MCQ_VARIANTS` and :data:`FREE_FORM_KINDS`: every protocol variant (option count, negatives,
  class-name set, fixed question; free-form answers, the text-only test) and its task suffix;
* :func:`task_name`, :func:`group_name`, :func:`variant_folder`, :func:`variant_tag`: the lmms-eval
  names and folders the task YAMLs are generated with (``cls_mcq/_generate_configs.py``);
* :func:`resolve_datasets`: the one grammar for naming datasets on every command line (keys, aliases,
  VLMEvalKit names, groups, lmms-eval task and group names);
* :func:`dataset_table`: the README's dataset table;
* :data:`VLMEVAL_DATASETS`: every VLMEvalKit dataset name, with its dataset and class-name set;
* :func:`vlmeval_model_name`, :func:`parse_vlmeval_model_name`: the grammar of clsbench's VLMEvalKit model names
  (``clsbench_<checkpoint slug>`` generates, ``...-score`` scores): ``clsbench.models.catalog`` registers by it and
  ``clsbench report`` reads a row's answer mode back from it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal, get_args

from clsbench.tasks.protocol.draws import DERIVATION_VERSION, MAX_OPTIONS
from clsbench.tasks.protocol.registry import (
    DATASETS,
    DEFAULT_NAMES,
    GROUPS,
    DatasetSpec,
    HubSource,
    dataset_for_name,
    datasets_in_group,
    paper_datasets,
)
from clsbench.tasks.runtime.errors import UnknownNameError

GROUP_TASKS = {"general": "cls_general_mcq", "fine-grained": "cls_finegrained_mcq"}


ALL_TASKS_GROUP = "cls_mcq"


# Every VLMEvalKit dataset name -> (dataset key, class-name set): the paper's questions per dataset, plus one per
# alternative class-name set (``ClsBench_imagenet_openai``). The export, ``clsbench vlmeval`` and the report read it.
VLMEVAL_DATASETS: dict[str, tuple[str, str]] = {
    spec.vlmeval_name_for(name_set): (key, name_set) for key, spec in DATASETS.items() for name_set in spec.name_sets
}


# clsbench's VLMEvalKit model names: answer mode -> the suffix after ``clsbench_<slug>`` (VLMEvalKit's --model takes
# a name, not arguments, so the mode is in the name). Only the two modes ``clsbench.models.catalog`` registers.
VLMEVAL_MODEL_PREFIX = "clsbench_"
VLMEVAL_MODE_SUFFIXES = {"generate": "", "score": "-score"}


def checkpoint_slug(checkpoint: str) -> str:
    """A Hub id's last part, lower-case (``Qwen/Qwen2-VL-7B-Instruct`` -> ``qwen2-vl-7b-instruct``)."""
    return checkpoint.rstrip("/").split("/")[-1].lower()


def vlmeval_model_name(checkpoint: str, mode: str) -> str:
    """The VLMEvalKit model name clsbench registers for a checkpoint in an answer mode
    (``clsbench_qwen2-vl-7b-instruct``, ``clsbench_qwen2-vl-7b-instruct-score``)."""
    return f"{VLMEVAL_MODEL_PREFIX}{checkpoint_slug(checkpoint)}{VLMEVAL_MODE_SUFFIXES[mode]}"


def parse_vlmeval_model_name(name: str) -> tuple[str, str] | None:
    """(checkpoint slug, answer mode) of a name in :func:`vlmeval_model_name`'s grammar; None for any other name
    (VLMEvalKit's own wrappers, such as ``Qwen2-VL-7B-Instruct``, which always generate)."""
    if not name.startswith(VLMEVAL_MODEL_PREFIX) or len(name) == len(VLMEVAL_MODEL_PREFIX):
        return None
    stem = name[len(VLMEVAL_MODEL_PREFIX) :]
    for mode, suffix in sorted(VLMEVAL_MODE_SUFFIXES.items(), key=lambda item: -len(item[1])):
        if suffix and stem.endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)], mode
    return stem, "generate"


# Bumped whenever a question, prompt or score changes (2.0: Food-101 label order fixed, ImageNet shows the
# paper's WordNet names, the papers' verbatim free-form prompts).
TASK_VERSION = "3.0"  # 3.0: the paper's prompt layout (instruction on its own line; clsbench 0.4)

# The version of the questions as a whole: how options are drawn and how the task asks them. Every record of
# questions made outside lmms-eval carries it (``clsbench questions`` tables, VLMEvalKit TSV sidecars), so
# questions from another clsbench protocol are never taken for this one's.
PROTOCOL_VERSION = f"{DERIVATION_VERSION}/{TASK_VERSION}"


Negatives = Literal["random", "text-similar", "clip-hard"]
"""How a question's wrong options are picked: at random (the papers' protocol), or ranked by the file
``clsbench negatives`` writes (:mod:`clsbench.tasks.data.negatives`): the nearest class names in text, or a CLIP
model's top wrong classes for the image."""
NEGATIVES: tuple[Negatives, ...] = get_args(Negatives)
RANDOM, TEXT_SIMILAR, CLIP_HARD = NEGATIVES
HARD_NEGATIVES: tuple[Negatives, ...] = (TEXT_SIMILAR, CLIP_HARD)  # the methods read from a negatives file


@dataclass(frozen=True)
class McqVariant:
    """A protocol variant: one task per dataset, plus three groups, all named with ``suffix``."""

    suffix: str
    n_options: int = MAX_OPTIONS
    negatives: Negatives = RANDOM
    name_set: str = DEFAULT_NAMES  # another class-name set: only datasets that offer it get the variant, no groups
    question: str | None = None  # one question for every sample instead of the dataset's ten wordings
    description: str = ""  # one line for the task folder's README

    def applies_to(self, spec: DatasetSpec) -> bool:
        return self.name_set in spec.name_sets

    @property
    def has_groups(self) -> bool:
        return self.name_set == DEFAULT_NAMES


MCQ_VARIANTS: dict[str, McqVariant] = {
    variant.suffix: variant
    for variant in (
        McqVariant("", description="the paper's protocol: 26 options, 25 random wrong classes"),
        McqVariant("_4opt", 4, description="4 options (P1 Appendix B.2, option-count ablation)"),
        McqVariant("_8opt", 8, description="8 options (P1 Appendix B.2)"),
        McqVariant("_16opt", 16, description="16 options (P1 Appendix B.2)"),
        McqVariant(
            "_textsim",
            MAX_OPTIONS,
            TEXT_SIMILAR,
            description="the 25 wrong classes nearest in text embedding (P1 Appendix B.3)",
        ),
        McqVariant(
            "_cliphard",
            5,
            CLIP_HARD,
            question="What type of object is in this photo?",
            description="5 options, CLIP-hard negatives, one fixed question (the fine-grained-knowledge paper)",
        ),
        McqVariant(
            "_openai",
            name_set="openai",
            description="ImageNet with OpenAI's CLIP class names instead of the paper's WordNet names",
        ),
    )
}


@dataclass(frozen=True)
class FreeFormKind:
    """Tasks beyond the MCQ variants: open/closed-world answers and the text-only LLM test."""

    suffix: str
    template: str  # the shared YAML in cls_mcq/ that its task YAMLs include
    metrics: tuple[str, ...]
    group: str | None  # one group over all its datasets, or none
    max_classes: int | None = None  # closed world lists every class name in the prompt
    description: str = ""  # one line for the task folder's README


_FREE_FORM_METRICS = ("strict_accuracy", "mapped_accuracy", "contains_accuracy", "out_of_list_rate")
FREE_FORM_KINDS: dict[str, FreeFormKind] = {
    kind.suffix: kind
    for kind in (
        FreeFormKind(
            "_open",
            "_open_template_yaml",
            _FREE_FORM_METRICS,
            "cls_open",
            description="open world: no options, the class name in free form (P1 Appendix B.1)",
        ),
        FreeFormKind(
            "_closed",
            "_closed_template_yaml",
            _FREE_FORM_METRICS,
            "cls_closed",
            max_classes=256,
            description="closed world: every class name in the prompt (P1 Appendix B.1)",
        ),
        FreeFormKind(
            "_closed_p2",
            "_closed_p2_template_yaml",
            _FREE_FORM_METRICS,
            "cls_closed_p2",
            max_classes=256,
            description="closed world with P2's prompt (section 2.3)",
        ),
        FreeFormKind(
            "_describe",
            "_describe_template_yaml",
            ("described",),
            None,
            description="the privileged describe step of the text-only test (P1 Appendix C.2)",
        ),
        FreeFormKind(
            "_textonly",
            "_textonly_template_yaml",
            ("accuracy", "unparseable_rate"),
            "cls_textonly",
            description="the text-only LLM test on those descriptions (P1 section 5.1)",
        ),
    )
}


def variant_folder(suffix: str) -> str:
    """The subfolder of ``cls_mcq/`` with a variant's YAMLs: ``4opt`` for ``_4opt``; the paper's is the top."""
    return suffix.lstrip("_")


def variant_tag(suffix: str) -> str:
    """The lmms-eval ``tag`` on every task of a variant: runs them all, each reported alone (no group average)."""
    return f"cls{suffix or '_mcq'}_tasks"


def task_name(key: str, suffix: str = "") -> str:
    """``cls_<key>_mcq<suffix>`` for the MCQ variants, ``cls_<key><suffix>`` for the free-form kinds."""
    return f"cls_{key}{suffix}" if suffix in FREE_FORM_KINDS else f"cls_{key}_mcq{suffix}"


def kind_datasets(kind: FreeFormKind) -> list[DatasetSpec]:
    if kind.max_classes is None:
        return list(DATASETS.values())
    return [spec for spec in DATASETS.values() if spec.classnames and len(spec.classnames) <= kind.max_classes]


def kind_group_datasets(kind: FreeFormKind) -> list[DatasetSpec]:
    """The datasets a free-form kind's group averages: the paper's only (an extra such as Pet has a task, no say)."""
    return [spec for spec in kind_datasets(kind) if spec.in_paper]


def group_name(group: str | None, suffix: str = "") -> str:
    """The group task for a paper group ("general", "fine-grained") or all ten (None)."""
    return (GROUP_TASKS[group] if group else ALL_TASKS_GROUP) + suffix


@cache
def _members() -> dict[str, list[str]]:
    """Every task and group name -> its dataset keys, from the same facts the YAMLs are generated from."""
    members: dict[str, list[str]] = {"all": list(DATASETS)}
    members.update({group: [spec.key for spec in datasets_in_group(group)] for group in GROUPS})
    for suffix, variant in MCQ_VARIANTS.items():
        for spec in DATASETS.values():
            if variant.applies_to(spec):
                members[task_name(spec.key, suffix)] = [spec.key]
        if variant.has_groups:
            for group in GROUPS:
                members[group_name(group, suffix)] = [spec.key for spec in datasets_in_group(group)]
            members[group_name(None, suffix)] = [spec.key for spec in paper_datasets()]
    for suffix, kind in FREE_FORM_KINDS.items():
        keys = [spec.key for spec in kind_datasets(kind)]
        members.update({task_name(key, suffix): [key] for key in keys})
        if kind.group:
            members[kind.group] = [spec.key for spec in kind_group_datasets(kind)]
    return members


def resolve_datasets(names: str | Sequence[str], *, strict: bool = True) -> list[str]:
    """Dataset keys, in order and once each, from the one grammar every subcommand accepts.

    Items are separated by commas or spaces; each is a dataset key, an alias (paper abbreviation,
    VLMEvalKit name ``ClsBench_food101``, CLIP_benchmark's ``cars``), a paper group (``general``,
    ``fine-grained``), ``all``, or an lmms-eval task or group name (``cls_food101_mcq_4opt``,
    ``cls_mcq``).

    Args:
        names: one string (comma- or space-separated) or several.
        strict: raise KeyError on an unknown item, naming the choices; otherwise skip it.

    Returns:
        Registry keys, in the order named, each once.
    """
    parts = [names] if isinstance(names, str) else list(names)
    items = [item for part in parts for item in re.split(r"[,\s]+", part) if item]
    members = _members()
    keys: list[str] = []
    for item in items:
        found = members.get(item) or ([dataset_for_name(item)] if dataset_for_name(item) else None)
        if found is None:
            if strict:
                close = difflib.get_close_matches(item, [*DATASETS, *members], n=3, cutoff=0.6)
                hint = f"did you mean {' or '.join(close)}? Otherwise " if close else ""
                raise UnknownNameError(
                    f"unknown dataset {item!r}; {hint}use a key ({', '.join(DATASETS)}), an alias such as "
                    f"ClsBench_food101, a group (all, {', '.join(GROUPS)}) or a task or group name such as "
                    f"{task_name('food101')} or {group_name(None)}"
                )
            continue
        keys += found
    if strict and not keys:
        raise UnknownNameError("no datasets given")
    return list(dict.fromkeys(keys))


def datasets_of_tasks(names: str | list[str]) -> list[str]:
    """Dataset keys behind lmms-eval task or group names; names that are not ours are skipped."""
    return resolve_datasets(names, strict=False)


def dataset_table() -> str:
    """The README's dataset table (``clsbench list --markdown``), derived from the registry: a new entry appears here.

    Returns:
        A Markdown table: key, paper abbreviation, group, size, source at its pinned revision, and
        the only files of the split that are read.
    """
    lines = [
        "| key | paper | group | size | source (pinned revision) | split: the only files read |",
        "|---|---|---|---|---|---|",
    ]
    for spec in DATASETS.values():
        source = spec.source
        if isinstance(source, HubSource):
            where = f"`{source.repo_id}@{source.revision[:7]}`"
            files = f"{source.split}: `{source.data_files}`"
            files += f" (builder `{source.builder}`)" if source.builder != "parquet" else ""
        else:
            where, files = f"local: `clsbench prepare --datasets {spec.key}`", "—"
        group = spec.group or "extra (no group)"
        abbreviation = spec.abbreviation if spec.in_paper else f"({spec.abbreviation}, not in the paper)"
        lines.append(f"| `{spec.key}` | {abbreviation} | {group} | {spec.expected_size:,} | {where} | {files} |")
    return "\n".join(lines)


@cache
def _protocol_of_names() -> dict[str, str]:
    """Every variant task or group name -> its suffix (the paper's own names map to "")."""
    suffixes: dict[str, str] = {}
    for suffix, variant in MCQ_VARIANTS.items():
        suffixes.update({task_name(spec.key, suffix): suffix for spec in DATASETS.values() if variant.applies_to(spec)})
        if variant.has_groups:
            suffixes.update({group_name(group, suffix): suffix for group in GROUPS})
            suffixes[group_name(None, suffix)] = suffix
    for suffix, kind in FREE_FORM_KINDS.items():
        suffixes.update({task_name(spec.key, suffix): suffix for spec in kind_datasets(kind)})
        if kind.group:
            suffixes[kind.group] = suffix
    return suffixes


def add_class_names_argument(parser, note: str = "") -> None:
    """``--class-names SET``, declared once for every subcommand that shows class names; the sets from the registry.

    ``parser`` is an ``argparse`` parser; ``note`` ends the help (what the command does with the set)."""
    offered: dict[str, list[str]] = {}
    for key, spec in DATASETS.items():
        for name_set in spec.name_sets:
            if name_set != DEFAULT_NAMES:
                offered.setdefault(name_set, []).append(key)
    others = "".join(f" or, for {', '.join(keys)}, {name_set}" for name_set, keys in offered.items())
    parser.add_argument(
        "--class-names",
        default=DEFAULT_NAMES,
        metavar="SET",
        help=f"class-name set shown: {DEFAULT_NAMES} (default; ImageNet's first WordNet lemmas){others}{note}",
    )


# What each command can set of an MCQ variant: its flags, or None where the command cannot ask that protocol.
_COMMAND_SETTINGS = {
    "options": {"n_options": "--n-options", "name_set": "--class-names"},
    "questions": {"n_options": "--n-options", "name_set": "--class-names"},
    "clip": {"n_options": "--n-options", "name_set": "--class-names", "negatives": "--negatives"},
    "export-vlmeval": {"name_set": "--class-names"},
    "vlmeval": {},
    "plan": {},  # Table 2's runbook: the paper's protocol only
}


class ProtocolNameError(UnknownNameError):
    """A variant's task or group name given to a command that would otherwise run another protocol."""


def protocol_flags(suffix: str, command: str) -> str | None:
    """The flags with which ``clsbench <command>`` asks a variant's questions, or None when it cannot.

    The cliphard variant's fixed question is an MLLM prompt: CLIP scores class names, so for ``clip`` only
    its options (5, CLIP-hard negatives) count.
    """
    if suffix in FREE_FORM_KINDS:
        return None
    variant = MCQ_VARIANTS[suffix]
    settings = _COMMAND_SETTINGS[command]
    wanted = {
        "n_options": (variant.n_options, MAX_OPTIONS),
        "name_set": (variant.name_set, DEFAULT_NAMES),
        "negatives": (variant.negatives, RANDOM),
    }
    flags = []
    for field_name, (value, default) in wanted.items():
        if value == default:
            continue
        if field_name not in settings:
            return None
        flags.append(f"{settings[field_name]} {value}")
    if variant.question is not None and command != "clip":
        return None
    return " ".join(flags)


def check_protocol_names(names: str | Sequence[str], command: str, *, example: str = "--datasets {datasets}") -> None:
    """Refuse a variant's task or group name where ``command`` would silently ask the paper's protocol instead.

    A name means one protocol on every path: ``cls_food101_mcq_4opt`` is 4 options wherever it is given. A
    command that takes plain dataset names plus flags says which flags give the variant, or which tool runs it.

    Args:
        names: the items as the user gave them (comma- or space-separated strings).
        command: ``options``, ``clip``, ``export-vlmeval`` or ``vlmeval``.
        example: the rest of the suggested command line, ``{datasets}`` standing for the dataset keys.

    Raises:
        ProtocolNameError: naming the variant and the command that runs it.
    """
    parts = [names] if isinstance(names, str) else list(names)
    suffixes = _protocol_of_names()
    for item in (item for part in parts for item in re.split(r"[,\s]+", part) if item):
        suffix = suffixes.get(item)
        if not suffix:
            continue
        keys = " ".join(resolve_datasets(item))
        kind = FREE_FORM_KINDS.get(suffix) or MCQ_VARIANTS[suffix]
        flags = protocol_flags(suffix, command)
        what = f"{item!r} is the {suffix.lstrip('_')} protocol ({kind.description})"
        if flags is not None:
            line = f"clsbench {command} {example.format(datasets=keys)} {flags}".rstrip()
            raise ProtocolNameError(f"{what}; `clsbench {command}` takes it as dataset names plus flags: {line}")
        raise ProtocolNameError(
            f"{what}, which `clsbench {command}` cannot ask (it would run the paper's 26-option protocol); run it "
            f"with lmms-eval: clsbench lmms --model MODEL --model_args ... --tasks {item}"
        )
