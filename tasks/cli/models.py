"""``clsbench`` subcommands for MLLMs: ``models``, ``export-vlmeval``, ``vlmeval``.

Registered into the core CLI by one call (``add_commands(commands)`` in ``build_parser``); nothing
here imports torch, transformers or VLMEvalKit until a command runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time

from clsbench.tasks.protocol.catalog import add_class_names_argument, check_protocol_names, resolve_datasets
from clsbench.tasks.runtime.cli_grammar import add_deprecated_option, add_legacy_positionals, require_options

DATA_DIR_HELP = "root of prepared datasets (default: $CLSBENCH_DATA or ~/.cache/clsbench/data)"


def dataset_keys(names: list[str]) -> list[str]:
    """Dataset keys from any name the catalog's one grammar accepts (see ``resolve_datasets``)."""
    return resolve_datasets(names)


def cmd_models(args: argparse.Namespace) -> int:
    import textwrap

    from clsbench.models.catalog import MODE_NOTE, compact_listing, markdown_table

    note = MODE_NOTE if args.markdown else textwrap.fill(MODE_NOTE, 110)
    print(note + "\n\n" + (markdown_table() if args.markdown else compact_listing()))
    return 0


def export_targets(items: list[str], class_names: str) -> list[tuple[str, str]]:
    """(dataset key, class-name set) per TSV to write: a VLMEvalKit name keeps its own set
    (``ClsBench_imagenet_openai``); plain names take ``--class-names``."""
    from clsbench.tasks.protocol.registry import DEFAULT_NAMES
    from clsbench.tasks.runtime.errors import BadSettingError
    from clsbench.tasks.toolkits.vlmeval.names import VLMEVAL_DATASETS

    targets: list[tuple[str, str]] = []
    for item in (item for text in items for item in text.replace(",", " ").split()):
        if item in VLMEVAL_DATASETS and VLMEVAL_DATASETS[item][1] != DEFAULT_NAMES:
            key, name_set = VLMEVAL_DATASETS[item]
            if class_names not in (DEFAULT_NAMES, name_set):
                raise BadSettingError(f"{item} shows {name_set} class names, but --class-names is {class_names}")
            found = [(key, name_set)]
        else:
            found = [(key, class_names) for key in dataset_keys([item])]
        targets += [target for target in found if target not in targets]
    return targets


def cmd_export_vlmeval(args: argparse.Namespace) -> int:
    from pathlib import Path

    from clsbench.tasks.protocol.registry import get_dataset
    from clsbench.tasks.runtime.environment import write_versions
    from clsbench.tasks.toolkits.vlmeval.export import ensure_exported, export_identity

    check_protocol_names(
        args.datasets, "export-vlmeval", example="--datasets {datasets} --output-dir " + args.output_dir
    )
    for key, name_set in export_targets(args.datasets, args.class_names):
        name = get_dataset(key).vlmeval_name_for(name_set)
        path = Path(args.output_dir).expanduser().resolve() / f"{name}.tsv"
        before = export_identity(path) if path.is_file() else None
        # a TSV of several GB is not rewritten when it already holds these questions about this data
        why = ensure_exported(
            key, args.output_dir, args.data_dir, name_set, args.images, not args.no_progress, force=args.force
        )
        print(f"{key}: {path}" + ("" if why else " (current: kept; --force rewrites it)"))
        if before is not None and before != export_identity(path):
            print(
                f"clsbench export-vlmeval: {name}.tsv changed: predictions VLMEvalKit made from the earlier one are "
                "stale, and its --reuse would match them to these rows by index; `clsbench vlmeval` moves them "
                "aside (with run.py directly, do not pass --reuse for this dataset)",
                file=sys.stderr,
            )
    write_versions(args.output_dir)
    return 0


def vlmeval_names(datasets: list[str]) -> list[str]:
    """The VLMEvalKit dataset names ``clsbench vlmeval --datasets`` runs, in order, once each.

    An exact VLMEvalKit name keeps its class-name set (``ClsBench_imagenet_openai``), and so does the lmms-eval name
    of that variant (``cls_imagenet_mcq_openai``); any other variant's name is refused, naming the lmms-eval line
    that runs it (``check_protocol_names``); keys, aliases and groups give the paper's protocol.
    """
    from clsbench.tasks.toolkits.vlmeval.names import NAME_SET_TASKS, VLMEVAL_DATASETS, vlmeval_name

    names: list[str] = []
    for item in (item for text in datasets for item in text.replace(",", " ").split()):
        if item in VLMEVAL_DATASETS or item in NAME_SET_TASKS:
            found = [NAME_SET_TASKS.get(item, item)]
        else:
            check_protocol_names(item, "vlmeval", example="--models MODEL --datasets {datasets}")
            found = [vlmeval_name(key) for key in dataset_keys([item])]
        names += [name for name in found if name not in names]
    return names


def cmd_vlmeval(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("vlmeval") is None:
        from clsbench.tasks.runtime.environment import VLMEVALKIT_INSTALL  # the one recipe (README "VLMEvalKit")

        print(
            f"clsbench vlmeval: error: VLMEvalKit is not installed (it is not on PyPI): {VLMEVALKIT_INSTALL}",
            file=sys.stderr,
        )
        return 2
    from clsbench.models.vlmeval.registration import register_models
    from clsbench.tasks.toolkits.vlmeval.run import (
        mode_of,
        parse_model_args,
        print_predictions,
        print_table,
        run_vlmeval,
    )

    names = vlmeval_names(args.datasets)
    extra = [arg for arg in args.passthrough if arg != "--"]
    started = time.time()
    try:
        code = run_vlmeval(
            args.models,
            names,
            work_dir=args.output_dir,
            lmu_data=args.lmu_data,
            data_dir=args.data_dir,
            model_args=parse_model_args(args.model_args),
            run_py=args.run_py,
            extra_args=extra,
            register_models=register_models,  # the datasets are registered beside them, by run_vlmeval
        )
    except FileNotFoundError as error:
        print(f"clsbench vlmeval: error: {error}", file=sys.stderr)
        return 2
    if code == 0 and mode_of(extra) == "infer":  # no scores: say so, and where the predictions are
        print_predictions(args.output_dir, args.models, names, newer_than=started)
    elif code == 0:
        print_table(args.output_dir, args.models, names, newer_than=started)
    else:  # what failed was printed; an earlier run's scores in the same work dir are not this run's
        print("clsbench vlmeval: no table: the run failed (see above)", file=sys.stderr)
    return code


def add_commands(commands) -> None:
    """Add the MLLM subcommands to the core CLI's subparsers."""
    p = commands.add_parser(
        "models", help="how to run the paper's MLLMs: commands per toolkit, needs, what was checked"
    )
    p.add_argument("--markdown", action="store_true", help="print the README's Markdown table instead of the listing")
    p.set_defaults(run=cmd_models)

    p = commands.add_parser("export-vlmeval", help="write VLMEvalKit MCQ TSVs with the lmms-eval tasks' questions")
    p.add_argument(
        "--datasets",
        nargs="+",
        metavar="DATASET",
        help="dataset keys (food101), names (ClsBench_food101, cls_food101_mcq) or groups (cls_mcq = the paper's ten)",
    )
    p.add_argument(
        "--output-dir", required=True, help="folder for ClsBench_<dataset>.tsv (VLMEvalKit reads $LMUData/<name>.tsv)"
    )
    add_legacy_positionals(p, ("datasets*",), required=("datasets",))
    p.add_argument("--data-dir", help=DATA_DIR_HELP)
    add_class_names_argument(p, " (written as ClsBench_<dataset>_<set>, e.g. ClsBench_imagenet_openai)")
    p.add_argument(
        "--images",
        choices=("auto", "inline", "files"),
        default="auto",
        help="inline: base64 in the TSV; files: the original image files in <output-dir>/images/<name>/ "
        "(VLMEvalKit re-encodes inline TSVs over 1 GiB as JPEG); auto (default): files when the TSV would pass 1 GiB",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar (one per dataset by default)")
    p.add_argument(
        "--force",
        action="store_true",
        help="rewrite every TSV (by default one that holds these questions about this data is kept)",
    )
    p.set_defaults(run=cmd_export_vlmeval)

    p = commands.add_parser(
        "vlmeval",
        help="run VLMEvalKit's own run.py with the clsbench datasets and models registered",
        description="Anything after `--` goes to VLMEvalKit's run.py unchanged (e.g. -- --mode infer --reuse).",
    )
    p.add_argument("--models", nargs="+", metavar="MODEL", help="VLMEvalKit model names (see `clsbench models`)")
    add_deprecated_option(p, "--model", "--models", dest="models", nargs="+")
    p.add_argument(
        "--datasets",
        nargs="+",
        metavar="DATASET",
        help="dataset keys, names (ClsBench_food101) or groups (cls_mcq = all ten), comma- or space-separated",
    )
    add_deprecated_option(p, "--data", "--datasets", dest="datasets", nargs="+")
    p.add_argument(
        "--model-args",
        help="k=v,... for clsbench.models.vlmeval.model.ClsbenchVLM (model_path=...,mode=score): "
        "registers each --models name with these settings (default: none, VLMEvalKit's own models)",
    )
    p.add_argument("--output-dir", default="./outputs", help="results folder: VLMEvalKit's --work-dir")
    add_deprecated_option(p, "--work-dir", "--output-dir", dest="output_dir")
    p.add_argument(
        "--lmu-data",
        help="VLMEvalKit's TSV folder, the --output-dir of export-vlmeval (default: $LMUData, else ~/LMUData); "
        "missing or stale TSVs are exported into it",
    )
    p.add_argument("--data-dir", help=DATA_DIR_HELP)
    p.add_argument("--run-py", help="VLMEvalKit's run.py (default: next to the installed vlmeval package)")
    p.add_argument("passthrough", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    require_options(p, ("models", "datasets"))
    p.set_defaults(run=cmd_vlmeval)
