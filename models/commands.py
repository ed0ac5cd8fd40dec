"""``clsbench`` subcommands for MLLMs: ``models``, ``export-vlmeval``, ``vlmeval``.

Registered into the core CLI by one call (``add_commands(commands)`` in ``build_parser``); nothing
here imports torch, transformers or VLMEvalKit until a command runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys

from clsbench.tasks.lmms_tasks import ALL_TASKS_GROUP, GROUP_TASKS
from clsbench.tasks.registry import DATASETS, dataset_for_name

DATA_DIR_HELP = "root of prepared datasets (default: $CLSBENCH_DATA or ~/.cache/clsbench/data)"
GROUP_MEMBERS = {
    **{name: [key for key, spec in DATASETS.items() if spec.group == group] for group, name in GROUP_TASKS.items()},
    ALL_TASKS_GROUP: list(DATASETS),
    "all": list(DATASETS),
}


def dataset_keys(names: list[str]) -> list[str]:
    """Dataset keys from keys, VLMEvalKit names (``ClsBench_food101``), lmms-eval task names
    (``cls_food101_mcq``) or groups (``cls_mcq``), in order, once each."""
    from clsbench.tasks.lmms_tasks import task_name
    from clsbench.tasks.vlmeval import NAME_TO_KEY

    task_names = {task_name(key): key for key in DATASETS}
    keys: list[str] = []
    for name in names:
        if name in GROUP_MEMBERS:
            found = GROUP_MEMBERS[name]
        elif name in DATASETS:
            found = [name]
        elif name in NAME_TO_KEY or name in task_names:
            found = [NAME_TO_KEY.get(name) or task_names[name]]
        elif dataset_for_name(name):
            found = [dataset_for_name(name)]
        else:
            raise KeyError(
                f"unknown dataset {name!r}; use a key ({', '.join(DATASETS)}), a name like ClsBench_food101 or cls_food101_mcq, "
                f"or a group ({', '.join(GROUP_MEMBERS)})"
            )
        keys += [key for key in found if key not in keys]
    return keys


def cmd_models(args: argparse.Namespace) -> int:
    from .coverage import MODE_NOTE, compact_listing, markdown_table

    import textwrap

    note = MODE_NOTE if args.markdown else textwrap.fill(MODE_NOTE, 110)
    print(note + "\n\n" + (markdown_table() if args.markdown else compact_listing()))
    return 0


def cmd_export_vlmeval(args: argparse.Namespace) -> int:
    from clsbench.tasks.environment import write_versions
    from clsbench.tasks.vlmeval import write_tsv

    for key in dataset_keys(args.datasets):
        path = write_tsv(key, args.output_dir, args.data_dir, args.class_names)
        print(f"{key}: {path}")
    write_versions(args.output_dir)
    return 0


def cmd_vlmeval(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("vlmeval") is None:
        print(
            "clsbench vlmeval: error: VLMEvalKit is not installed (it is not on PyPI): git clone "
            "https://github.com/open-compass/VLMEvalKit && pip install -e VLMEvalKit rouge-score",
            file=sys.stderr,
        )
        return 2
    from clsbench.tasks.vlmeval import (
        VLMEVAL_DATASETS,
        parse_model_args,
        print_table,
        run_vlmeval,
        vlmeval_name,
    )

    names: list[str] = []
    for item in args.data:  # an exact VLMEvalKit name keeps its class-name set (ClsBench_imagenet_openai)
        found = [item] if item in VLMEVAL_DATASETS else [vlmeval_name(key) for key in dataset_keys([item])]
        names += [name for name in found if name not in names]
    extra = [arg for arg in args.passthrough if arg != "--"]
    try:
        code = run_vlmeval(
            args.model, names, work_dir=args.work_dir, lmu_data=args.lmu_data, data_dir=args.data_dir,
            model_args=parse_model_args(args.model_args), run_py=args.run_py, extra_args=extra,
        )
    except FileNotFoundError as error:
        print(f"clsbench vlmeval: error: {error}", file=sys.stderr)
        return 2
    print_table(args.work_dir, args.model, names)
    return code


def add_commands(commands) -> None:
    """Add the MLLM subcommands to the core CLI's subparsers."""
    p = commands.add_parser("models", help="how to run the paper's MLLMs: commands per toolkit, needs, what was checked")
    p.add_argument("--markdown", action="store_true", help="print the README's Markdown table instead of the listing")
    p.set_defaults(run=cmd_models)

    p = commands.add_parser("export-vlmeval", help="write VLMEvalKit MCQ TSVs with the lmms-eval tasks' questions")
    p.add_argument("datasets", nargs="+", help="dataset keys (food101), names (ClsBench_food101, cls_food101_mcq) or groups (cls_mcq = all ten)")
    p.add_argument("--output-dir", required=True, help="folder for ClsBench_<dataset>.tsv (VLMEvalKit reads $LMUData/<name>.tsv)")
    p.add_argument("--data-dir", help=DATA_DIR_HELP)
    p.add_argument("--class-names", default="paper", metavar="SET",
                   help="class-name set shown: paper (default) or, for imagenet, openai (written as ClsBench_imagenet_openai)")
    p.set_defaults(run=cmd_export_vlmeval)

    p = commands.add_parser(
        "vlmeval",
        help="run VLMEvalKit's own run.py with the clsbench datasets and models registered",
        description="Anything after `--` goes to VLMEvalKit's run.py unchanged (e.g. -- --mode infer --reuse).",
    )
    p.add_argument("--model", nargs="+", required=True, help="VLMEvalKit model names (see `clsbench models`)")
    p.add_argument("--data", nargs="+", required=True, help="dataset keys, names (ClsBench_food101) or groups (cls_mcq = all ten)")
    p.add_argument("--model-args", help="k=v,... for clsbench.models.vlmeval_model.ClsbenchVLM (model_path=...,mode=score): "
                   "registers each --model name with these settings")
    p.add_argument("--work-dir", default="./outputs", help="VLMEvalKit's --work-dir")
    p.add_argument("--lmu-data", help="where the TSVs are ($LMUData, default ~/LMUData); missing ones are exported")
    p.add_argument("--data-dir", help=DATA_DIR_HELP)
    p.add_argument("--run-py", help="VLMEvalKit's run.py (default: next to the installed vlmeval package)")
    p.add_argument("passthrough", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(run=cmd_vlmeval)
