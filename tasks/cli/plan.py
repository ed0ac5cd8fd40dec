"""``clsbench plan``: a dry run of a Table 2 reproduction on one multi-GPU node, and the runbook README prints.

For the chosen models (the paper's ten MLLMs and six CLIP models by default), datasets (the paper's ten) and GPU
count it prints the questions per dataset (the registry's row counts), each dataset's download and how to get it,
each model's estimated hours from the measured per-question costs (clsbench.models.throughput, every figure with
its device, batch, source and date), and the exact commands: data, the data-parallel launch per model (clsbench lmms
under accelerate, so a failed evaluation exits non-zero), the CLIP runs and the final report. Nothing is run and
nothing is downloaded. README's "Reproducing Table 2" section is this command's output with its defaults (a test
keeps them equal).
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
from dataclasses import dataclass

from clsbench.clip_baselines.models import PAPER_MODELS, PaperModel
from clsbench.models.catalog import ROUTES, SIZES, ModelRoute
from clsbench.models.throughput import GPUS, MEASURED, MeasuredRate, project
from clsbench.tasks.data.loading import data_root
from clsbench.tasks.data.sizes import DOWNLOAD_SIZES
from clsbench.tasks.protocol.catalog import ALL_TASKS_GROUP, check_protocol_names, resolve_datasets, task_name
from clsbench.tasks.protocol.registry import DATASETS, HubSource, LocalSource, paper_datasets
from clsbench.tasks.runtime.errors import BadSettingError, UnknownNameError

MODES = ("generate", "score")
DEFAULT_OUTPUT_DIR = "table2"
# Every clsbench command's data root when --data-dir is not given (clsbench.tasks.data.loading.data_root), as their
# help shows it; the plan's commands then pass no --data-dir and read the same folder.
DATA_ROOT_DEFAULT = "$CLSBENCH_DATA or ~/.cache/clsbench/data"
LMMS_MODULE = "clsbench.tasks.cli"  # `clsbench` as a module: accelerate launches `clsbench lmms` in every process
SNAPSHOTS = "hub-snapshots"  # where `hf download` puts a Hub split before `clsbench prepare` reads it
BYTES_PER_PARAMETER = 2  # bf16 safetensors
# lmms-eval's own model classes (and clsbench_minicpm's chat()) answer one question at a time, by generation
BATCH_ONE = MeasuredRate(
    "generate",
    2.60,
    **{k: getattr(MEASURED["generate"], k) for k in ("params_billions", "prompt_tokens", "image_tokens")},
    device=MEASURED["generate"].device,
    setting="lmms-eval's built-in llava_hf at batch 1 (16 new tokens), the same LLaVA-1.5-7B shape",
    source=MEASURED["generate"].source,
    date=MEASURED["generate"].date,
    batch_size=1,
)


@dataclass(frozen=True)
class Models:
    mllms: list[ModelRoute]
    clips: list[PaperModel]


def _model_names() -> dict[str, ModelRoute | PaperModel | str]:
    """Every spelling ``--models`` accepts, lower-cased: catalog names, checkpoints and slugs; the CLIP short names,
    titles and Table 2 rows; and the groups ``all``, ``mllm``, ``clip``."""
    names: dict[str, ModelRoute | PaperModel | str] = {"all": "all", "mllm": "mllm", "clip": "clip"}
    for route in ROUTES:
        for name in (route.name, route.checkpoint, route.slug):
            names[name.lower()] = route
    for model in PAPER_MODELS.values():
        for name in (model.key, model.title, model.table2_row):
            if name:
                names[name.lower()] = model
    return names


def resolve_models(items: list[str] | None) -> Models:
    """The models named (comma- or space-separated; default: Table 2's sixteen), in the catalog's order.

    Raises:
        UnknownNameError: a name no model has, with the closest names.
    """
    names = _model_names()
    chosen: set[str] = set()
    wanted = [item for part in (items or ["all"]) for item in re.split(r"[,\s]+", part) if item]
    for item in wanted:
        found = names.get(item.lower())
        if found is None:
            spellings = [route.name for route in ROUTES] + list(PAPER_MODELS) + ["all", "mllm", "clip"]
            close = difflib.get_close_matches(item, spellings, n=3, cutoff=0.5)
            close += [s for s in spellings if s not in close and item.lower() in s.lower()][: 3 - len(close)]
            hint = f"did you mean {' or '.join(close)}? " if close else ""
            raise UnknownNameError(
                f"unknown model {item!r}; {hint}choose MLLMs by the names `clsbench models` prints "
                f"({', '.join(route.name for route in ROUTES if route.in_paper)}), CLIP models by "
                f"`clsbench clip --list-models` ({', '.join(PAPER_MODELS)}), or all, mllm, clip"
            )
        if found in ("all", "mllm"):
            chosen |= {route.checkpoint for route in ROUTES if route.in_paper}
        if found in ("all", "clip"):
            chosen |= {model.key for model in PAPER_MODELS.values()}
        if isinstance(found, ModelRoute):
            chosen.add(found.checkpoint)
        elif isinstance(found, PaperModel):
            chosen.add(found.key)
    return Models(
        [route for route in ROUTES if route.checkpoint in chosen],
        [model for model in PAPER_MODELS.values() if model.key in chosen],
    )


def _tasks(keys: list[str]) -> str:
    """lmms-eval's --tasks for these datasets: the paper's group when they are its ten, else the task names."""
    if keys == [spec.key for spec in paper_datasets()]:
        return ALL_TASKS_GROUP
    return ",".join(task_name(key) for key in keys)


def _launch(gpus: int, module: str, single: str, arguments: str) -> str:
    """The data-parallel launch line (one process per GPU), or the single-process command on one GPU."""
    if gpus == 1:
        return f"{single} {arguments}"
    return f"accelerate launch --multi_gpu --num_processes {gpus} -m {module} {arguments}"


def _count(number: int, noun: str, plural: str | None = None) -> str:
    """``1 dataset``, ``2 datasets``."""
    return f"{number:,} {noun if number == 1 else plural or noun + 's'}"


def _data_option(data_dir: str | None) -> str:
    """`` --data-dir X`` for a folder given to the plan; nothing for the default root (every command's own)."""
    return "" if data_dir is None else f" --data-dir {data_dir}"


def _figure_text(figure: MeasuredRate) -> str:
    return (
        f"{figure.questions_per_s} questions/s at batch {figure.batch_size}, {figure.device}, {figure.setting}; "
        f"{figure.source}, {figure.date}"
    )


def mllm_entry(
    route: ModelRoute, keys: list[str], questions: int, gpus: int, mode: str, out: str, data_dir: str | None = None
) -> dict:
    """One MLLM's command, estimated hours and the figure behind them; the command runs at the batch the figure
    was measured at (clsbench_hf: the measured batch 16; lmms-eval's own classes: 1), so the two agree."""
    native = route.lmms_model == "clsbench_hf"
    own_mode = mode if native else "generate"  # lmms-eval's own classes and clsbench_minicpm always generate
    args = route.lmms_args.replace("mode=generate", f"mode={own_mode}")
    figure = MEASURED[own_mode] if native else BATCH_ONE
    projection = project(
        figure.questions_per_s,
        figure.params_billions,
        figure.prompt_tokens,
        figure.image_tokens,
        routes=[route],
        questions=questions,
        gpus=gpus,
    )
    batch = figure.batch_size if native else route.batch_size
    run = (
        f"--model {route.lmms_model} --model_args {args} --tasks {_tasks(keys)} --batch_size {batch} "
        f"--output_path {out}/mllm/{route.slug} --log_samples{_data_option(data_dir)}"
    )
    command = _launch(gpus, f"{LMMS_MODULE} lmms", "clsbench lmms", run)
    note = "" if native else "no score mode (this model class generates); "
    return {
        "name": route.name,
        "checkpoint": route.checkpoint,
        "mode": own_mode,
        "batch_size": batch,
        "command": command,
        "needs": route.needs.replace("`", ""),
        "params_billions": SIZES[route.checkpoint][0],
        "image_tokens": SIZES[route.checkpoint][1],
        "weights_gb": round(SIZES[route.checkpoint][0] * BYTES_PER_PARAMETER, 1),
        "questions_per_s_per_gpu": round(projection.rates[route.name], 2),
        "hours": round(projection.hours, 2),
        "estimate": note + "extrapolated from " + _figure_text(figure),
        "one_at_a_time": not native,
    }


def clip_entry(model: PaperModel, keys: list[str], gpus: int, out: str, data_dir: str | None) -> dict:
    run = f"--model {model.key} --datasets {' '.join(keys)} --mode mcq --output-dir {out}/clip{_data_option(data_dir)}"
    command = _launch(gpus, "clsbench.clip_baselines", "clsbench clip", run)
    return {"name": model.title, "key": model.key, "command": command, "hours": None}


def dataset_entry(key: str, data_dir: str | None) -> dict:
    spec = DATASETS[key]
    disk = DOWNLOAD_SIZES[key]
    prepare = f"clsbench prepare --datasets {key} --source {{source}}{_data_option(data_dir)}"
    if isinstance(spec.source, HubSource):
        snapshot = f"{SNAPSHOTS}/{key}"
        source = f"{spec.source.repo_id}@{spec.source.revision} [{spec.source.split}]"
        access = (
            "gated: accept its terms on the Hub page, then `hf auth login` (or HF_TOKEN)"
            if ("gated" in spec.note.lower())
            else "open"
        )
        commands = [spec.source.download_command(snapshot), prepare.format(source=snapshot)]
    else:
        assert isinstance(spec.source, LocalSource)
        source = f"local: {spec.source.obtain}"
        access = f"raw files: {spec.source.raw_form}"
        commands = [prepare.format(source="RAW_DIR")]
    return {
        "key": key,
        "abbreviation": spec.abbreviation,
        "questions": spec.expected_size,
        "source": source,
        "access": access,
        "download_gb": disk.gigabytes,
        "download": disk.what,
        "download_source": disk.source,
        "commands": commands,
    }


def build_plan(
    models: list[str] | None = None,
    datasets: list[str] | None = None,
    gpus: int = GPUS,
    mode: str = "generate",
    output_dir: str = DEFAULT_OUTPUT_DIR,
    data_dir: str | None = None,
) -> dict:
    """The plan as data (what ``--json`` prints).

    ``data_dir`` is the folder the commands prepare into and read (default: every command's own data root,
    ``$CLSBENCH_DATA`` or ``~/.cache/clsbench/data``): the plan records it as given (``data_dir_option``, None
    for the default) and as the absolute folder it means here (``data_dir``, ``~`` and the variable expanded).

    Raises:
        UnknownNameError: an unknown model or dataset (with the closest names).
        BadSettingError: a GPU count below 1 or an unknown mode.
    """
    if gpus < 1:
        raise BadSettingError(f"--gpus must be 1 or more, got {gpus}")
    if mode not in MODES:
        raise BadSettingError(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    chosen = resolve_models(models)
    if datasets:
        check_protocol_names(datasets, "plan")  # a variant's name would be planned as the paper's protocol
    keys = resolve_datasets(datasets) if datasets else [spec.key for spec in paper_datasets()]
    questions = sum(DATASETS[key].expected_size for key in keys)
    mllms = [mllm_entry(route, keys, questions, gpus, mode, output_dir, data_dir) for route in chosen.mllms]
    clips = [clip_entry(model, keys, gpus, output_dir, data_dir) for model in chosen.clips]
    data = [dataset_entry(key, data_dir) for key in keys]
    runs = [f"{output_dir}/mllm/{route.slug}" for route in chosen.mllms] + ([f"{output_dir}/clip"] if clips else [])
    report = (
        f"clsbench report {' '.join(runs)} --output-dir {output_dir}/report --reference paper{_data_option(data_dir)}"
    )
    return {
        "mode": mode,
        "gpus": gpus,
        "output_dir": output_dir,
        "data_dir": str(data_root(data_dir)),
        "data_dir_option": data_dir,
        "questions_per_model": questions,
        "datasets": data,
        "download_gb_known": round(sum(d["download_gb"] or 0 for d in data), 2),
        "download_unknown": [d["key"] for d in data if d["download_gb"] is None],
        "mllms": mllms,
        "mllm_hours": round(sum(m["hours"] for m in mllms), 2),
        "weights_gb": round(sum(m["weights_gb"] for m in mllms), 1),
        "clips": clips,
        "report": report,
        "figures": {name: vars(figure) for name, figure in {**MEASURED, "generate, batch 1": BATCH_ONE}.items()},
    }


def render(plan: dict) -> str:
    """The plan as Markdown (what ``clsbench plan`` prints, and README's runbook)."""
    gpus, mode, out, option = plan["gpus"], plan["mode"], plan["output_dir"], plan["data_dir_option"]
    data_dir = DATA_ROOT_DEFAULT if option is None else option
    protocol = (
        "`mode=generate`, the paper's protocol (a greedy reply, read by clsbench's parser)"
        if mode == "generate"
        else "`mode=score`, the faster alternative: **not the paper's protocol** (argmax over the option letters' "
        "next-token logits; reported in its own rows)"
    )
    lines = [
        f"Plan: {_count(len(plan['mllms']), 'MLLM')} and {_count(len(plan['clips']), 'CLIP model')} on "
        f"{_count(len(plan['datasets']), 'dataset')} ({_count(plan['questions_per_model'], 'question')} per model), "
        f"{_count(gpus, 'GPU')}, {protocol}. Results under `{out}/`, prepared data under `{data_dir}`. A dry run: "
        "nothing is downloaded or run.",
        "",
        "### 1. Data",
        "",
        (
            "The prepared copies go to the data root every clsbench command reads when not given `--data-dir`: "
            "`$CLSBENCH_DATA`, else `~/.cache/clsbench/data` (`clsbench plan --data-dir DIR` prints these commands "
            "for another folder). "
            if option is None
            else f"The prepared copies go to `{option}`: every command below passes `--data-dir {option}`. "
        )
        + f"Each Hub split is mirrored at its pinned revision (only its own files), then prepared; `{SNAPSHOTS}/` can "
        "be deleted afterwards. Download sizes are the split's files (GB = 10^9 bytes), each with its source; a "
        "prepared copy keeps the images' original bytes in parquet shards, so it takes about the split's size again "
        "(gldv2 and logo keep only their test images).",
        "",
        "| dataset | questions | source (pinned) | access | download | size source |",
        "|---|---|---|---|---|---|",
    ]
    for d in plan["datasets"]:
        size = "not recorded" if d["download_gb"] is None else f"{d['download_gb']:g} GB ({d['download']})"
        lines.append(
            f"| `{d['key']}` ({d['abbreviation']}) | {d['questions']:,} | {d['source']} | {d['access']} | {size} | "
            f"{d['download_source']} |"
        )
    unknown = f"; not recorded: {', '.join(plan['download_unknown'])}" if plan["download_unknown"] else ""
    lines += [
        f"| total | {plan['questions_per_model']:,} | | | {plan['download_gb_known']:g} GB recorded{unknown} | |",
        "",
        "```bash",
        *[command for d in plan["datasets"] for command in d["commands"]],
        f"clsbench list{_data_option(option)}    # every dataset should say local: N rows",
        "```",
        "",
    ]
    if plan["mllms"]:
        checks = (
            "checks names, packages and data in about a second, runs lmms-eval, and exits non-zero "
            "when lmms-eval wrote no results (lmms-eval itself exits 0 when an evaluation fails)"
        )
        launch = (
            f"One model copy per GPU (data parallel over {gpus}): accelerate starts `clsbench lmms` (`python -m "
            f"{LMMS_MODULE} lmms`) in every process; each {checks}, so accelerate "
            "reports a failed evaluation."
            if gpus > 1
            else f"One process on the GPU: `clsbench lmms` {checks}."
        )
        batches = sorted({m["batch_size"] for m in plan["mllms"] if not m["one_at_a_time"]})
        batch = (
            f"The clsbench_hf lines run at batch {', '.join(map(str, batches))}, the batch their figure was measured "
            "at (lower `--batch_size` if a model runs out of GPU memory: its hours then run longer than estimated). "
            if batches
            else ""
        )
        lines += [
            "### 2. MLLMs",
            "",
            f"{launch} Remote-code models need their own venv (see each one's needs and `clsbench models`). {batch}"
            "Hours are estimates for the whole node, extrapolated from one measured rate by parameters x prompt "
            "tokens (the catalog's sizes, each model's image tokens for a 500x375 photo); the measured prompts "
            "carried ~474 byte-level text tokens where real tokenizers make ~160-230, so prefill-bound estimates run "
            "high.",
            "",
            "| model | mode | batch | params (B) | image tokens | weights (GB, bf16) | questions/s per GPU | hours |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for m in plan["mllms"]:
            lines.append(
                f"| {m['name']} | {m['mode']} | {m['batch_size']} | {m['params_billions']:g} | "
                f"{m['image_tokens']:,} | {m['weights_gb']:g} | {m['questions_per_s_per_gpu']:g} | {m['hours']:.2f} |"
            )
        lines += [
            f"| total | | | | | {plan['weights_gb']:g} | | {plan['mllm_hours']:.2f} |",
            "",
        ]
        single = sum(m["hours"] for m in plan["mllms"] if m["one_at_a_time"])
        if single:
            lines += [
                f"{single:.2f} of the {plan['mllm_hours']:.2f} hours are the rows through lmms-eval's own model "
                "classes or clsbench_minicpm, which answer one question at a time (estimated from lmms-eval's "
                "llava_hf at batch 1); the clsbench_hf rows batch.",
                "",
            ]
        lines += [
            "```bash",
        ]
        for m in plan["mllms"]:
            lines += [f"# {m['name']} ({m['mode']}): needs {m['needs']}", m["command"]]
        lines += ["```", ""]
        if mode == "generate":
            lines += [
                "Faster alternative, **not the paper's protocol**: `clsbench plan --mode score` (swap `mode=generate` "
                "for `mode=score` in the clsbench_hf lines; `clsbench report` keeps the two modes in separate rows).",
                "",
            ]
    if plan["clips"]:
        lines += [
            "### 3. CLIP models",
            "",
            "Mcq mode: each CLIP model picks among the same questions' options (the row to read beside the MLLMs). "
            "Hours: no GPU figure has been measured for the CLIP runs (each image goes through the image encoder "
            "once; `bench/clip_throughput.py` measures on a CPU only).",
            "",
            "```bash",
            *[c["command"] for c in plan["clips"]],
            "```",
            "",
        ]
    figures = plan["figures"]
    lines += [
        "### 4. Report",
        "",
        "```bash",
        plan["report"],
        "```",
        "",
        "Measured figures behind the estimates (GPU; none is CPU-measured):",
        "",
        *[f"- {name}: {_figure_text(MeasuredRate(**figure))}" for name, figure in figures.items()],
    ]
    return "\n".join(_wrap_prose(lines)) + "\n"


def _wrap_prose(lines: list[str], width: int = 110) -> list[str]:
    """Prose lines wrapped at ``width`` (as README's own); tables and code blocks stay one line per row."""
    import textwrap

    wrapped, in_code = [], False
    for line in lines:
        if line.startswith("```"):
            in_code = not in_code
        if in_code or line.startswith(("|", "```")) or len(line) <= width:
            wrapped.append(line)
            continue
        indent = "  " if line.startswith("- ") else ""
        wrapped += textwrap.wrap(line, width, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)
    return wrapped


def cmd_plan(args: argparse.Namespace) -> int:
    plan = build_plan(args.models, args.datasets, args.gpus, args.mode, args.output_dir, args.data_dir)
    print(json.dumps(plan, indent=1) if args.json else render(plan), end="" if not args.json else "\n")
    return 0


def add_plan_command(commands) -> None:
    """Register ``clsbench plan`` on the CLI's subcommand parser."""
    p = commands.add_parser(
        "plan",
        help="a dry run of Table 2 on one node: questions, downloads, estimated hours, the exact commands",
        description=__doc__.split("\n\n")[1],
    )
    p.add_argument(
        "--models",
        nargs="+",
        metavar="MODEL",
        default=["all"],
        help="MLLMs by `clsbench models` names (LLaVA-1.5-7B), checkpoints or slugs, CLIP models by `clsbench clip "
        "--list-models` names, or all, mllm, clip (default: all, Table 2's ten MLLMs and six CLIP models)",
    )
    p.add_argument(
        "--datasets",
        nargs="+",
        metavar="DATASET",
        default=[ALL_TASKS_GROUP],
        help=f"dataset keys, names or groups (default: {ALL_TASKS_GROUP}, the paper's ten)",
    )
    p.add_argument("--gpus", type=int, default=GPUS, help=f"GPUs on the node, one process each (default: {GPUS})")
    p.add_argument(
        "--mode",
        choices=MODES,
        default="generate",
        help="generate: the paper's protocol; score: the faster alternative, not the paper's (default: generate)",
    )
    p.add_argument(
        "--output-dir",
        default=DEFAULT_OUTPUT_DIR,
        help=f"the folder the printed commands write results to (default: {DEFAULT_OUTPUT_DIR})",
    )
    p.add_argument(
        "--data-dir",
        help=f"the data root the printed commands prepare into and read (default: {DATA_ROOT_DEFAULT})",
    )
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.set_defaults(run=cmd_plan)
