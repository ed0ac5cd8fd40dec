"""``clsbench clip``: CLIP zero-shot baselines on the benchmark's own questions.

Also runnable as ``python -m clsbench.clip_baselines`` (same arguments), which is what
``accelerate launch -m clsbench.clip_baselines ...`` and ``torchrun -m`` start on every process.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from clsbench.clip_baselines.models import PAPER_MODELS
from clsbench.clip_baselines.results import CLIP_BENCHMARK_DIR, MODES, TEMPLATE_CHOICES
from clsbench.tasks.protocol.catalog import CLIP_HARD, NEGATIVES, RANDOM, add_class_names_argument
from clsbench.tasks.protocol.draws import MAX_OPTIONS
from clsbench.tasks.runtime.cli_grammar import DefaultsHelpFormatter
from clsbench.tasks.runtime.errors import BadSettingError, ClsbenchError

DEFAULT_OUT = "clip_results"
DESCRIPTION = (
    "CLIP zero-shot baselines on the benchmark's own questions: any open_clip model, mcq (each sample's options) "
    "or full (all classes) mode, prompt ensembles, cached text embeddings, resumable results."
)
EPILOG = (
    "examples:\n"
    "  clsbench clip --model openai-vit-l-14 --datasets food101,cub200 --mode mcq --output-dir clip_results\n"
    "  clsbench clip --model ViT-B-32 --pretrained laion2b_s34b_b79k --mode full --templates single\n"
    "  accelerate launch --multi_gpu --num_processes 8 -m clsbench.clip_baselines --model siglip-so400m \\\n"
    "      --output-dir clip_results"
)


# --model and --pretrained mean the same in `clsbench clip` and `clsbench negatives --method clip-hard`.
CLIP_MODEL_HELP = "a paper model (see --list-models), an open_clip name, hf-hub:ORG/REPO or local-dir:PATH"
CLIP_PRETRAINED_HELP = "open_clip pretrained tag or checkpoint file (default: the model's own, or random weights"


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--model", help=CLIP_MODEL_HELP + " (required unless --list-models)")
    parser.add_argument("--pretrained", help=CLIP_PRETRAINED_HELP + ")")
    parser.add_argument(
        "--datasets",
        nargs="+",
        default=["all"],
        metavar="DATASET",
        help="dataset keys (comma- or space-separated), 'all', 'general', 'fine-grained', or CLIP_benchmark's "
        "names (cars, flowers, imagenet1k, ...) (default: all)",
    )
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="mcq",
        help="mcq: choose among each sample's options (the MLLM questions); full: all classes",
    )
    parser.add_argument(
        "--templates",
        choices=TEMPLATE_CHOICES,
        help="ensemble: the dataset's CLIP prompts, averaged; single: 'a photo of a {}' "
        "(default: single with --negatives clip-hard, as the 5-way protocol; else ensemble, as the paper)",
    )
    parser.add_argument("--seed", type=int, default=0, help="question seed (mcq), as for the MLLM tasks")
    parser.add_argument("--n-options", type=int, default=MAX_OPTIONS, help="options per question (mcq), 2..26")
    parser.add_argument(
        "--negatives",
        choices=NEGATIVES,
        default=RANDOM,
        help="mcq wrong classes: random, or read from `clsbench negatives` file (as the _textsim/_cliphard tasks)",
    )
    add_class_names_argument(parser, ", as in the MLLM questions")
    parser.add_argument(
        "--output-dir",
        default=DEFAULT_OUT,
        help=f"results root; the run goes to <output-dir>/<run name>/ (default: ./{DEFAULT_OUT})",
    )
    parser.add_argument(
        "--data-dir", help="root of prepared datasets (default: $CLSBENCH_DATA or ~/.cache/clsbench/data)"
    )
    parser.add_argument(
        "--cache-dir", help="text-embedding cache (default: $CLSBENCH_CLIP_CACHE or ~/.cache/clsbench/clip_text)"
    )
    parser.add_argument("--model-cache-dir", help="where open_clip keeps downloaded weights (default: the HF cache)")
    parser.add_argument("--batch-size", type=int, default=64, help="images per encoder call, per process")
    parser.add_argument(
        "--workers", type=int, help="DataLoader workers per process (default: up to 4 on GPU, none on CPU)"
    )
    parser.add_argument(
        "--precision",
        choices=("auto", "fp32", "fp16", "bf16"),
        default="auto",
        help="auto: fp16 autocast on GPU, fp32 on CPU",
    )
    parser.add_argument("--cpu", action="store_true", help="run on CPU even when a GPU is present")
    parser.add_argument("--flush-every", type=int, default=1024, help="images between appends to the predictions file")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--list-models", action="store_true", help="print the paper's six models and exit")
    return parser


def add_clip_parser(commands) -> argparse.ArgumentParser:
    """Register ``clip`` on the ``clsbench`` command's subparsers."""
    parser = commands.add_parser(
        "clip",
        help="CLIP zero-shot baselines on the same questions (open_clip models; mcq or full)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=DefaultsHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(run=cmd_clip)
    return parser


def list_models() -> str:
    lines = [f"{'name':<28}{'open_clip model':<28}{'pretrained':<32}IN-1k zero-shot  vision tower of"]
    for spec in PAPER_MODELS.values():
        lines.append(
            f"{spec.key:<28}{spec.model_name:<28}{spec.pretrained:<32}{spec.imagenet_zeroshot:>6.1f}%"
            f"          {spec.towers or '-'}"
        )
    return "\n".join(lines)


def cmd_clip(args: argparse.Namespace) -> int:
    from clsbench.clip_baselines.results import accuracies
    from clsbench.clip_baselines.run import run_clip
    from clsbench.tasks.report.lmms_results import markdown_table, table_row

    if args.list_models:
        print(list_models())
        return 0
    if not args.model:
        raise BadSettingError("--model is required (see --list-models)")
    from accelerate import PartialState

    run_dirs: list[Path] = []

    def report(key: str, summary: dict, run_dir: Path) -> None:
        run_dirs[:] = [run_dir]
        print(
            f"{key}: accuracy {summary['accuracy']:.2%} on {summary['n_samples']} samples "
            f"-> {run_dir / (key + '.json')}",
            flush=True,
        )

    if args.templates is None:
        args.templates = "single" if args.negatives == CLIP_HARD else "ensemble"
    state = PartialState(cpu=args.cpu)
    try:
        summaries = run_clip(
            args.model,
            args.pretrained,
            args.datasets,
            args.output_dir,
            mode=args.mode,
            templates=args.templates,
            seed=args.seed,
            n_options=args.n_options,
            negatives=args.negatives,
            class_names=args.class_names,
            data_dir=args.data_dir,
            cache_dir=args.cache_dir,
            model_cache_dir=args.model_cache_dir,
            batch_size=args.batch_size,
            workers=args.workers,
            precision=args.precision,
            cpu=args.cpu,
            flush_every=args.flush_every,
            progress=not args.no_progress,
            on_dataset=report,
        )
        if state.is_main_process and summaries:
            first = next(iter(summaries.values()))
            label = f"{first['model']} {first['pretrained'] or ''} ({args.mode}, {args.templates})".replace("  ", " ")
            print("\n" + markdown_table({label: table_row(accuracies(summaries))}))
            print(f"\nCLIP_benchmark's CSV of this run: clip_benchmark build {run_dirs[0] / CLIP_BENCHMARK_DIR}")
    finally:
        if state.use_distributed:
            state.destroy_process_group()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = add_arguments(
        argparse.ArgumentParser(
            prog="python -m clsbench.clip_baselines",
            description=DESCRIPTION,
            epilog=EPILOG,
            formatter_class=DefaultsHelpFormatter,
            allow_abbrev=False,
        )
    )
    args = parser.parse_args(argv)
    try:
        return cmd_clip(args)
    except ClsbenchError as error:  # anything else is a bug: its traceback shows
        print(f"clsbench clip: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
