"""The ``clsbench`` command: one entry point for the benchmark, its toolkits and its reports."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import warnings
from pathlib import Path

from clsbench.clip_baselines.cli import CLIP_MODEL_HELP, CLIP_PRETRAINED_HELP
from clsbench.tasks.data.loading import (
    DataError,
    classnames_for,
    data_root,
    find_prepared,
    hub_status,
    is_network_error,
    load_rows,
)
from clsbench.tasks.protocol.catalog import (
    HARD_NEGATIVES,
    TEXT_SIMILAR,
    add_class_names_argument,
    check_protocol_names,
    dataset_table,
    resolve_datasets,
)
from clsbench.tasks.protocol.draws import LETTERS, MAX_OPTIONS
from clsbench.tasks.protocol.questions import DEFAULT_SEED, format_prompt, make_sample
from clsbench.tasks.protocol.registry import DATASETS, HubSource, get_dataset
from clsbench.tasks.runtime.cli_grammar import (
    GrammarParser,
    add_deprecated_option,
    add_legacy_positionals,
    apply_legacy_positionals,
)
from clsbench.tasks.runtime.errors import BadSettingError, ClsbenchError, UnknownNameError
from clsbench.tasks.toolkits.lmms_runner import data_dir_message, lmms_request_messages, run_lmms


def dataset_key(names: str | list[str]) -> str:
    """Exactly one dataset, named in the catalog's one grammar (key, alias, task name), else UnknownNameError."""
    keys = resolve_datasets(names)
    if len(keys) != 1:
        text = names if isinstance(names, str) else " ".join(names)
        raise UnknownNameError(f"--datasets {text} names {len(keys)} datasets; this command takes one")
    return keys[0]


def cmd_list(args: argparse.Namespace) -> int:
    from concurrent.futures import ThreadPoolExecutor

    if args.markdown:
        print(dataset_table())
        return 0

    specs = list(DATASETS.values())
    with ThreadPoolExecutor(max_workers=len(specs)) as pool:

        def status(spec):
            prepared = find_prepared(spec.key, args.data_dir)
            if prepared is not None:
                rows = prepared.meta["rows"]
                size = "" if rows == spec.expected_size else f" (not the paper's {spec.expected_size:,}: partial)"
                return f"local: {rows} rows at {prepared.root}{size}"
            if spec.is_local:
                return f"missing: run `clsbench prepare --datasets {spec.key}`"
            return "not checked" if args.no_check else hub_status(spec.source, args.timeout)

        statuses = list(pool.map(status, specs))
    header = f"{'dataset':<13}{'abbr':<8}{'group':<14}{'size':>8}  {'source':<62}reachable"
    print(header)
    for spec, state in zip(specs, statuses):
        source = (
            f"{spec.source.repo_id}@{spec.source.revision[:7]} [{spec.source.split}]"
            if isinstance(spec.source, HubSource)
            else "local (clsbench prepare)"
        )
        print(
            f"{spec.key:<13}{spec.abbreviation:<8}{spec.group or 'extra':<14}{spec.expected_size:>8,}  "
            f"{source:<62}{state}"
        )
    return 0


def cmd_options(args: argparse.Namespace) -> int:
    # A variant's task name means that variant: refused with the flags that ask it (never the 26-option question).
    check_protocol_names(args.datasets, "options", example=f"--datasets {{datasets}} --index {args.index}")
    spec = get_dataset(dataset_key(args.datasets))
    if args.index < 0:
        raise BadSettingError(f"index must be a row of the split (0 or more), got {args.index}")
    classnames = classnames_for(spec, args.data_dir, args.class_names)
    if args.label is not None:
        label = args.label
    else:
        rows = load_rows(spec, args.data_dir)
        if not 0 <= args.index < len(rows):
            raise DataError(f"{spec.key}: index {args.index} is outside the split (0..{len(rows) - 1})")
        label = int(rows[args.index]["label"])
    sample = make_sample(spec.key, str(args.index), label, classnames, seed=args.seed, n_options=args.n_options)
    print(
        json.dumps(
            {
                "dataset": spec.key,
                "sample_key": sample.sample_key,
                "seed": args.seed,
                "n_options": len(sample.options),  # fewer than asked when the dataset has fewer classes
                "class_names": args.class_names,
                "label": sample.label,
                "class": classnames[sample.label],
                "question": sample.question,
                "options": dict(zip(LETTERS, sample.options)),
                "answer": sample.answer,
                "prompt": format_prompt(sample.question, sample.options),
            },
            indent=2,
            ensure_ascii=False,
        )
    )
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from clsbench.tasks.data.prepare import prepare

    key = dataset_key(args.datasets)
    prepared = prepare(key, args.source, args.data_dir, skip_corrupt=args.skip_corrupt, subset=args.image_ids)
    skipped = len(prepared.meta.get("skipped", []))
    print(
        f"{prepared.key}: {prepared.meta['rows']} rows written to {prepared.root}"
        + (f" ({skipped} skipped)" if skipped else "")
    )
    expected = get_dataset(key).expected_size
    if prepared.meta["rows"] != expected:
        print(
            f"clsbench prepare: warning: the paper's {key} split has {expected:,} images, this copy "
            f"{prepared.meta['rows']:,}; check the raw files (see `clsbench list` and README)",
            file=sys.stderr,
        )
    print(f'use it with: lmms-eval --include_path "$(clsbench tasks-path --data-dir {data_root(args.data_dir)})" ...')
    return 0


def cmd_negatives(args: argparse.Namespace) -> int:
    from clsbench.tasks.data import negatives

    key = dataset_key(args.datasets)
    classnames = classnames_for(key, args.data_dir)
    if args.method == TEXT_SIMILAR:
        try:
            path = negatives.text_similar(key, classnames, args.encoder, args.data_dir)
        except Exception as error:  # offline (any HTTP library's error), or no such model: one line
            if not (is_network_error(error) or isinstance(error, (OSError, ValueError))):
                raise
            raise DataError(
                f"the text encoder {args.encoder} could not be loaded ({type(error).__name__}: {str(error)[:200]}). "
                f"Download it on a machine with access (hf download {args.encoder}) and pass its folder, or set "
                "HF_HUB_OFFLINE=1 with a filled cache"
            ) from error
    else:
        from clsbench.clip_baselines.hard_negatives import DEFAULT_MODEL, DEFAULT_PRETRAINED, clip_hard

        # No --model: the protocol's OpenCLIP ViT-L/14 on LAION-2B. Otherwise --model and --pretrained mean what
        # they mean in `clsbench clip` (no --pretrained: the model's own weights, or random ones).
        model = args.model or DEFAULT_MODEL
        pretrained = args.pretrained if args.model or args.pretrained else DEFAULT_PRETRAINED
        path = clip_hard(
            key,
            classnames,
            model,
            pretrained,
            data_dir=args.data_dir,
            out_root=args.data_dir,
            templates=args.templates,
        )
    print(f"{key}: {args.method} negatives written to {path}")
    return 0


def cmd_descriptions(args: argparse.Namespace) -> int:
    from clsbench.tasks.variants.descriptions import collect_descriptions

    for key, path in collect_descriptions(args.runs, args.data_dir).items():
        print(f"{key}: descriptions written to {path}")
    return 0


def cmd_multilabel(args: argparse.Namespace) -> int:
    from clsbench.tasks.variants.multilabel import markdown, rescore

    key = dataset_key(args.datasets)
    print(markdown(rescore(args.runs, args.labels, key, args.data_dir, with_data=args.with_data)))
    return 0


def cmd_tasks_path(args: argparse.Namespace) -> int:
    from clsbench.tasks.cls_mcq.task_folder import PACKAGE_TASK_FOLDER, task_folder_for

    problem = data_dir_message(args.data_dir) if args.data_dir is not None else None
    if problem:  # not a silent fallback to the Hub's task folder
        raise DataError(problem)
    folder = task_folder_for(args.data_dir)
    if folder != PACKAGE_TASK_FOLDER:
        print(
            f"clsbench: wrote the task folder for these prepared copies to {folder} (its YAMLs read them)",
            file=sys.stderr,
        )
    print(folder)
    return 0


def stop_on_known_bad(command: str) -> bool:
    """Print the environment's known-bad combinations (as ``clsbench doctor`` does); True when any was found.

    ``CLSBENCH_SKIP_DOCTOR=1`` turns the check off (at your own risk).
    """
    from clsbench.tasks.runtime.environment import environment_errors

    if os.environ.get("CLSBENCH_SKIP_DOCTOR") == "1":
        return False
    errors = environment_errors()
    for message in errors:
        print(f"clsbench {command}: error: {message}", file=sys.stderr)
    if errors:
        print(
            f"clsbench {command}: stopped before running lmms-eval; `clsbench doctor` shows every installed version "
            "(CLSBENCH_SKIP_DOCTOR=1 skips this check)",
            file=sys.stderr,
        )
    return bool(errors)


def cmd_doctor(args: argparse.Namespace) -> int:
    from clsbench.tasks.runtime.environment import doctor_report

    text, has_errors = doctor_report()
    print(text)
    return 1 if has_errors else 0


def cmd_lmms(args: argparse.Namespace) -> int:
    # Names and the data root are checked in about a second, before the environment check and lmms-eval's
    # task indexing (tens of seconds) would end in a generic failure.
    if args.output_dir is not None:  # clsbench's name for lmms-eval's --output_path
        if any(arg.split("=", 1)[0] == "--output_path" for arg in args.lmms_args):
            raise BadSettingError("--output-dir and --output_path name the same folder: give one")
        args.lmms_args = [*args.lmms_args, "--output_path", args.output_dir]
    problems = lmms_request_messages(args.lmms_args, args.data_dir)
    for problem in problems:
        print(f"clsbench lmms: error: {problem}", file=sys.stderr)
    if problems:
        return 2
    if stop_on_known_bad("lmms"):
        return 3
    code, written = run_lmms(args.lmms_args, args.data_dir)
    for path in written:
        print(f"clsbench: results in {path}", file=sys.stderr)
    return code


def cmd_questions(args: argparse.Namespace) -> int:
    from clsbench.tasks.data.question_table import write_question_table

    check_protocol_names(args.datasets, "questions")
    keys = resolve_datasets(args.datasets)
    if args.output and len(keys) != 1:  # the deprecated --output names one file
        raise BadSettingError(f"--output names one file but --datasets names {len(keys)} datasets; use --output-dir")
    for key in keys:
        output = args.output or Path(args.output_dir) / f"{key}_questions.parquet"
        path = write_question_table(
            key, output, args.data_dir, seed=args.seed, n_options=args.n_options, name_set=args.class_names
        )
        print(f"{key}: {path}")
    return 0


def cmd_upstream(args: argparse.Namespace) -> int:
    from clsbench.tasks.runtime.environment import clsbench_version
    from clsbench.tasks.toolkits.upstream import write_upstream_kit

    folder = write_upstream_kit(
        args.output_dir, clsbench_version(), smoke=args.smoke, smoke_task=args.smoke_task, data_dir=args.data_dir
    )
    print(
        f"clsbench: the task folder is {folder} (copy it to lmms_eval/tasks/), the PR description "
        f"{folder.parent / 'PR.md'}"
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from clsbench.tasks.cli.demo import run_demo

    if stop_on_known_bad("demo"):
        return 3

    return run_demo(Path(args.output_dir), samples=args.samples)


def add_question_settings(p: argparse.ArgumentParser, data_dir_help: str) -> None:
    """The settings that pick a question (seed, option count, class names) and where the data is: one declaration
    for every subcommand that asks questions."""
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="question seed (default 0, the paper's protocol)")
    p.add_argument("--n-options", type=int, default=MAX_OPTIONS, help="options per question, 2..26")
    add_class_names_argument(p)
    p.add_argument("--data-dir", help=data_dir_help)


def build_parser() -> argparse.ArgumentParser:
    from clsbench.tasks.runtime.environment import clsbench_version

    parser = argparse.ArgumentParser(prog="clsbench", description=__doc__, allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"clsbench {clsbench_version()}")
    # GrammarParser: every subcommand's --help shows its defaults (tests/test_cli_grammar.py checks the names)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=GrammarParser)
    data_dir_help = "root of prepared datasets (default: $CLSBENCH_DATA or ~/.cache/clsbench/data)"
    one_dataset_help = "one dataset: key (food101) or any name for it (Food, ClsBench_food101)"

    p = commands.add_parser("list", help="the datasets with group, size, source and whether the data is reachable")
    p.add_argument("--data-dir", help=data_dir_help)
    p.add_argument("--no-check", action="store_true", help="do not ask the Hub whether the pinned revisions answer")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per Hub check")
    p.add_argument("--markdown", action="store_true", help="print the README's dataset table instead (no checks)")
    p.set_defaults(run=cmd_list)

    p = commands.add_parser("options", help="the question for one sample, as JSON")
    p.add_argument(
        "--datasets",
        nargs="+",
        metavar="DATASET",
        help=one_dataset_help + "; a variant's task name (cls_food101_mcq_4opt) is refused with the flags that "
        "ask it (--n-options 4)",
    )
    p.add_argument("--index", type=int, help="row index in the evaluation split (the sample key)")
    p.add_argument("--label", type=int, help="the sample's label, to skip loading the data (default: read it)")
    add_question_settings(p, data_dir_help)
    add_legacy_positionals(p, ("datasets", "index"), required=("datasets", "index"))
    p.set_defaults(run=cmd_options)

    p = commands.add_parser("questions", help="each dataset's questions (options, answer letter, wording) as parquet")
    p.add_argument(
        "--datasets",
        nargs="+",
        metavar="DATASET",
        help="datasets: keys (food101), names (Food, ClsBench_food101) or groups (cls_mcq), comma- or "
        "space-separated; a variant's task name (cls_food101_mcq_4opt) is refused with the flags that ask it",
    )
    p.add_argument("--output-dir", default=".", help="folder for <dataset>_questions.parquet")
    add_deprecated_option(p, "--output", "--output-dir", dest="output")
    add_question_settings(p, data_dir_help)
    add_legacy_positionals(p, ("datasets",), required=("datasets",))
    p.set_defaults(run=cmd_questions, output=None)

    p = commands.add_parser("prepare", help="build a local dataset in the standard schema from raw files")
    p.add_argument("--datasets", nargs="+", metavar="DATASET", help=one_dataset_help)
    p.add_argument("--source", required=True, help="the raw files (see `clsbench list` and README)")
    p.add_argument("--data-dir", help=f"data root to write <root>/<dataset>/ into ({data_dir_help.split('(')[1]}")
    p.add_argument("--skip-corrupt", action="store_true", help="leave out unreadable images (listed in clsbench.json)")
    p.add_argument(
        "--image-ids",
        metavar="FILE",
        help="gldv2: a file of test image ids to keep, e.g. the paper's subset (default: every image)",
    )
    add_deprecated_option(p, "--subset", "--image-ids", dest="image_ids")
    add_legacy_positionals(p, ("datasets",), required=("datasets",))
    p.set_defaults(run=cmd_prepare)

    p = commands.add_parser("negatives", help="precompute hard negatives into the file the hard-negative tasks read")
    p.add_argument("--datasets", nargs="+", metavar="DATASET", help=one_dataset_help)
    p.add_argument(
        "--method",
        required=True,
        choices=HARD_NEGATIVES,
        help="text-similar: nearest class names (per class); clip-hard: a CLIP model's top wrong classes (per image)",
    )
    p.add_argument(
        "--encoder",
        default="sentence-transformers/all-MiniLM-L6-v2",
        help="text-similar: a sentence-transformers model id or path",
    )
    p.add_argument(
        "--model",
        help="clip-hard: the CLIP model, as in `clsbench clip`: " + CLIP_MODEL_HELP + " (default: ViT-L-14 with "
        "--pretrained laion2b_s32b_b82k, the protocol's OpenCLIP ViT-L/14 trained on LAION-2B)",
    )
    p.add_argument(
        "--pretrained",
        help="clip-hard: as in `clsbench clip`: " + CLIP_PRETRAINED_HELP + "; laion2b_s32b_b82k when --model is not "
        "given)",
    )
    p.add_argument(
        "--templates",
        choices=("single", "ensemble"),
        default="single",
        help="clip-hard: zero-shot prompts for ranking (default: single, 'a photo of a {}', as P2 and P3 print it)",
    )
    p.add_argument("--data-dir", help=data_dir_help)
    add_legacy_positionals(p, ("datasets",), required=("datasets",))
    p.set_defaults(run=cmd_negatives)

    p = commands.add_parser("descriptions", help="collect cls_<dataset>_describe replies for the text-only tasks")
    p.add_argument("runs", nargs="+", help="lmms-eval --output_path folders of describe runs made with --log_samples")
    p.add_argument(
        "--data-dir",
        help="data root to write descriptions/<dataset>.json into (default: $CLSBENCH_DATA or ~/.cache/clsbench/data)",
    )
    p.set_defaults(run=cmd_descriptions)

    p = commands.add_parser("multilabel", help="single- and multi-label accuracy (ReGT, ReaL) of logged predictions")
    p.add_argument(
        "runs", nargs="+", help="lmms-eval --output_path folders (with --log_samples) or clsbench clip outputs"
    )
    p.add_argument("--labels", required=True, help="valid labels per image: JSON list (ReaL order), JSON object or CSV")
    p.add_argument("--datasets", nargs="+", default=["imagenet"], metavar="DATASET", help="the runs' dataset (one)")
    add_deprecated_option(p, "--dataset", "--datasets", dest="datasets", nargs="+")
    p.add_argument("--data-dir", help=data_dir_help)
    p.add_argument(
        "--with-data", action="store_true", help="read image ids from the data for predictions that lack them (CLIP)"
    )
    p.set_defaults(run=cmd_multilabel)

    p = commands.add_parser("tasks-path", help="the folder to pass to lmms-eval --include_path")
    p.add_argument("--data-dir", help=data_dir_help)
    p.set_defaults(run=cmd_tasks_path)

    p = commands.add_parser(
        "lmms",
        help="lmms-eval's CLI with clsbench tasks included; non-zero exit when it fails",
        description="Every argument but --data-dir and --output-dir goes to lmms-eval unchanged. Task and model "
        "names, a model's packages and --data-dir are checked first.",
        allow_abbrev=False,
    )
    p.add_argument("--data-dir", help=data_dir_help)
    p.add_argument(
        "--output-dir",
        help="results folder: lmms-eval's --output_path, which is accepted too (default: ./clsbench_results)",
    )
    p.set_defaults(run=cmd_lmms)

    p = commands.add_parser(
        "upstream-lmms-eval", help="write the task folder as it would go into lmms-eval, and a PR description"
    )
    p.add_argument("--output-dir", help="folder to write cls_mcq/ and PR.md into")
    p.add_argument(
        "--smoke", action="store_true", help="run lmms-eval's CLI (dummy model) on the kit and put its output in PR.md"
    )
    p.add_argument("--smoke-task", default="cls_food101_mcq", help="the smoke run's task (default cls_food101_mcq)")
    p.add_argument(
        "--data-dir", help="data root whose prepared copy the smoke run reads (default: none: the pinned Hub splits)"
    )
    add_legacy_positionals(p, ("output_dir",), required=("output_dir",))
    p.set_defaults(run=cmd_upstream)

    p = commands.add_parser(
        "doctor", help="installed versions of clsbench's dependencies and every known-bad combination"
    )
    p.set_defaults(run=cmd_doctor)

    p = commands.add_parser("demo", help="the whole path offline: fixture data, a tiny model, real lmms-eval, a table")
    p.add_argument("--output-dir", default="clsbench_demo", help="where fixtures, the tiny model and results go")
    p.add_argument("--samples", type=int, default=8, help="fixture samples per dataset")
    p.set_defaults(run=cmd_demo)

    from clsbench.clip_baselines.cli import add_clip_parser

    add_clip_parser(commands)
    from clsbench.tasks.report.build import add_report_command

    add_report_command(commands)
    from clsbench.tasks.cli.models import add_commands as add_mllm_commands

    add_mllm_commands(commands)
    from clsbench.tasks.cli.plan import add_plan_command

    add_plan_command(commands)
    plain_help(parser, commands)
    return parser


def _plain(text: str | None) -> str | None:
    """Help without reStructuredText markup (``x``, :mod:`x`): docstrings serve as help; a terminal shows it raw."""
    return re.sub(r":[a-z]+:`([^`]+)`", r"\1", text).replace("``", "") if text else text


def plain_help(parser: argparse.ArgumentParser, commands) -> None:
    """Every help text plain, and every subcommand with a description (its one-line help, where it has none)."""
    parser.description = _plain(parser.description)
    helps = {choice.dest: choice.help for choice in commands._choices_actions}
    for name, sub in commands.choices.items():
        sub.description = _plain(sub.description or helps.get(name))
        for action in sub._actions:
            action.help = _plain(action.help)
    for choice in commands._choices_actions:
        choice.help = _plain(choice.help)


_python_formatwarning = warnings.formatwarning


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """clsbench's own warnings as one plain line (``clsbench: warning: ...``), without Python's file and source
    line, which tell a user nothing; other packages' warnings as Python formats them."""
    if category.__module__.startswith("clsbench."):
        return f"clsbench: warning: {message}\n"
    return _python_formatwarning(message, category, filename, lineno, line)


def main(argv: list[str] | None = None) -> int:
    """The ``clsbench`` command.

    Args:
        argv: the arguments after ``clsbench`` (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 on success, 2 on a usage or data error (its message printed), else the subcommand's.
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if args.command == "lmms":
        args.lmms_args = extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    apply_legacy_positionals(args)  # old spellings, one release: `clsbench options food101 0`
    warnings.formatwarning = _format_warning
    try:
        return args.run(args)
    except ClsbenchError as error:  # anything else is a bug: its traceback shows
        print(f"clsbench {args.command}: error: {error}", file=sys.stderr)
        return 2
    finally:
        warnings.formatwarning = _python_formatwarning


if __name__ == "__main__":
    sys.exit(main())
