"""Running lmms-eval's own CLI with clsbench's task folder, and reading its failures back as one clear line."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from clsbench.tasks.data.loading import find_prepared, hub_offline_message, hub_status
from clsbench.tasks.protocol.registry import DATASETS, HubSource

DEFAULT_LMMS_OUTPUT = "clsbench_results"


def normalise_args(args: list[str]) -> list[str]:
    """``--opt=value`` as ``--opt value``, so options are found whichever form the user typed."""
    out: list[str] = []
    for arg in args:
        if arg.startswith("--") and "=" in arg:
            out += arg.split("=", 1)
        else:
            out.append(arg)
    return out


def _option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args and args.index(name) + 1 < len(args) else None


def _unreachable_hub_datasets(task_names: str, data_dir: str | None) -> list[str]:
    """Hub-backed datasets of the requested tasks that have no prepared copy, when the Hub cannot be reached.

    Checked in a few seconds before lmms-eval starts, so a machine without the Hub fails with the fix at
    once instead of after the Hub client's retries.
    """
    from clsbench.tasks.protocol.catalog import datasets_of_tasks

    keys = [
        key
        for key in datasets_of_tasks(task_names)
        if isinstance(DATASETS[key].source, HubSource) and find_prepared(key, data_dir) is None
    ]
    if not keys:
        return []
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1":
        return keys  # offline mode: only a filled cache could serve them; lmms-eval says if it cannot
    status = hub_status(DATASETS[keys[0]].source, timeout=5.0)
    return keys if "unreachable" in status else []


# Failures inside lmms-eval worth explaining: (pattern in its output, clsbench's explanation).
_LMMS_HINTS = (
    (
        re.compile(r"get_model_name_from_path|No module named 'llava'"),
        "lmms-eval's llava_onevision model needs the LLaVA-NeXT repository (pip install "
        "git+https://github.com/LLaVA-VL/LLaVA-NeXT.git). The same checkpoint runs without it as "
        "--model clsbench_hf --model_args pretrained=llava-hf/llava-onevision-qwen2-7b-ov-hf",
    ),
    (
        re.compile(r"No module named 'filelock\._api'"),
        "filelock 4 breaks lmms-eval 0.7.3: pip install 'filelock<4' (see `clsbench doctor`)",
    ),
)
_OUR_ERROR = re.compile(
    r"clsbench\.tasks\.[\w.]+\.(?:DataError|SampleError|StoreMismatch|OutputLocked|OutputWriteError): (.*)"
)


_TASK_KEY = re.compile(r"^\s*-?\s*(?:task|group|tag)\s*:\s*(.*?)\s*$")
_LIST_ITEM = re.compile(r"^\s*-\s*([\w.-]+)\s*$")
_TASK_LISTINGS = ("list", "list_groups", "list_tags", "list_subtasks", "list_with_num")
# Packages that lmms-eval's model files import inside try/except (so the import "works") but then need.
_GUARDED_REQUIREMENTS = {"llava": "pip install git+https://github.com/LLaVA-VL/LLaVA-NeXT.git"}
_INSTALL_LINES = {**_GUARDED_REQUIREMENTS, "decord": "pip install decord"}


def yaml_task_names(folders: list[Path]) -> set[str]:
    """Every task, group and tag name the YAML files under ``folders`` define, read as text.

    lmms-eval's TaskManager imports and indexes ~1,900 YAMLs (tens of seconds) before it says a name is
    unknown; reading the ``task:``/``group:``/``tag:`` lines takes well under a second and errs on the side
    of accepting (any value under those keys counts as a name).
    """
    names: set[str] = set()
    for folder in folders:
        for path in Path(folder).rglob("*.yaml"):
            in_list = False
            for line in path.read_text("utf-8", errors="replace").splitlines():
                key = _TASK_KEY.match(line)
                if key:
                    value = key.group(1).strip("'\"")
                    in_list = not value
                    names.update(part.strip(" '\"") for part in value.strip("[]").split(",") if part.strip())
                elif in_list and _LIST_ITEM.match(line):
                    names.add(_LIST_ITEM.match(line).group(1))
                elif line.strip() and not line.startswith((" ", "-")):
                    in_list = False
    return names


def _lmms_eval_folder() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("lmms_eval")
    return Path(next(iter(spec.submodule_search_locations))) if spec and spec.submodule_search_locations else None


def _did_you_mean(name: str, choices: set[str]) -> str:
    import difflib

    close = difflib.get_close_matches(name, sorted(choices), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(close)}?" if close else ""


def unknown_task_messages(tasks: str, include_paths: list[str]) -> list[str]:
    """One message per ``--tasks`` item that no task folder defines, with the closest names.

    Wildcards, files and folders are left to lmms-eval, as its own CLI does.
    """
    items = [item.strip() for item in tasks.split(",") if item.strip()]
    items = [item for item in items if item not in _TASK_LISTINGS and "*" not in item and not os.path.exists(item)]
    lmms_folder = _lmms_eval_folder()
    if not items or lmms_folder is None:
        return []
    from clsbench.tasks.cls_mcq.task_folder import PACKAGE_TASK_FOLDER

    folders = [lmms_folder / "tasks", PACKAGE_TASK_FOLDER, *(Path(p) for p in include_paths if Path(p).is_dir())]
    known = yaml_task_names(folders)
    return [
        f"unknown task {item!r} (not in lmms-eval's tasks, clsbench's or --include_path's)"
        + (_did_you_mean(item, known) or "; `clsbench list` names the datasets, `lmms-eval --tasks list` every task")
        for item in items
        if item not in known
    ]


def _model_module_imports(module_name: str) -> tuple[set[str], set[str]]:
    """Top-level packages a module imports at its top: (unguarded, inside try/except), read without importing it."""
    import ast
    import importlib.util

    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return set(), set()
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return set(), set()
    tree = ast.parse(Path(spec.origin).read_text("utf-8"))
    plain: set[str] = set()
    guarded: set[str] = set()

    def collect(nodes, into: set[str]) -> None:
        for node in nodes:
            if isinstance(node, ast.Import):
                into.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                into.add(node.module.split(".")[0])
            elif isinstance(node, ast.Try):
                collect(node.body, guarded)

    collect(tree.body, plain)
    return plain, guarded


def model_messages(model: str) -> list[str]:
    """Why lmms-eval could not run ``--model model``: an unknown name (with the closest), or missing packages."""
    import importlib.util

    if _lmms_eval_folder() is None or os.environ.get("LMMS_EVAL_PLUGINS"):
        return []  # no lmms-eval (its own error follows), or legacy plugins this check cannot see
    try:
        from lmms_eval.models import MODEL_REGISTRY_V2  # the registry only: model classes load when used
    except ImportError:  # a broken install: `clsbench doctor`'s check, which runs next, names it
        return []

    known = set(MODEL_REGISTRY_V2.list_model_names())
    if model not in known:
        return [
            f"unknown model {model!r} for lmms-eval"
            + (_did_you_mean(model, known) or "; `clsbench models` lists the paper's models and how to run them")
        ]
    manifest = MODEL_REGISTRY_V2.get_manifest(model)
    missing: list[str] = []
    for path in (manifest.chat_class_path, manifest.simple_class_path):
        if not path:
            continue
        plain, guarded = _model_module_imports(path.rsplit(".", 1)[0])
        needed = plain | (guarded & set(_GUARDED_REQUIREMENTS))
        missing += [name for name in sorted(needed) if importlib.util.find_spec(name) is None and name not in missing]
        break  # lmms-eval runs the chat class when there is one
    if not missing:
        return []
    lines = "; ".join(_INSTALL_LINES.get(name, f"pip install {name}") for name in missing)
    hint = (
        ". The same checkpoint runs without it as --model clsbench_hf --model_args "
        "pretrained=llava-hf/llava-onevision-qwen2-7b-ov-hf"
        if "llava" in missing
        else ""
    )
    return [f"lmms-eval's model {model!r} needs {', '.join(missing)}, not installed here: {lines}{hint}"]


def lmms_request_messages(lmms_args: list[str], data_dir: str | os.PathLike | None = None) -> list[str]:
    """Everything wrong with an lmms-eval command line that can be told in a second, before lmms-eval starts:
    unknown task or model names (with a did-you-mean), a model whose packages are missing, and an explicit
    data root that is missing or empty."""
    args = normalise_args(list(lmms_args))
    include = [part for part in (_option(args, "--include_path") or "").split(",") if part]
    tasks = _option(args, "--tasks") or ""
    messages = unknown_task_messages(tasks, include)
    model = _option(args, "--model")
    messages += model_messages(model.strip()) if model else []
    problem = data_dir_message(data_dir, tasks) if data_dir is not None else None
    return messages + ([problem] if problem else [])


def data_dir_message(data_dir: str | os.PathLike, task_names: str = "") -> str | None:
    """Why an explicitly given data root cannot serve the tasks (it is missing or holds nothing of ours), or None.

    Without this, the task folder silently fell back to the Hub and the eventual error named the default root.
    """
    from clsbench.tasks.cls_mcq.task_folder import PACKAGE_TASK_FOLDER, task_folder_for
    from clsbench.tasks.data.loading import data_root, missing_data_message
    from clsbench.tasks.protocol.catalog import datasets_of_tasks

    root = data_root(data_dir)
    if root.is_dir() and task_folder_for(root) != PACKAGE_TASK_FOLDER:
        return None
    state = "does not exist" if not root.exists() else "holds no prepared dataset (no <dataset>/clsbench.json)"
    keys = datasets_of_tasks(task_names) if task_names else []
    steps = []
    for key in keys[:2]:
        spec = DATASETS[key]
        if isinstance(spec.source, HubSource):
            steps.append(
                f"  {spec.source.download_command()}\n"
                f"  clsbench prepare --datasets {key} --source SNAPSHOT --data-dir {root}"
            )
        else:
            steps.append("  " + missing_data_message(spec, root).split("\n", 1)[1].strip().replace("\n", "\n  "))
    more = f"\n  ... and {len(keys) - 2} more datasets: `clsbench list` shows each source" if len(keys) > 2 else ""
    how = (
        ("\n".join(steps) + more)
        if steps
        else f"  clsbench prepare --datasets DATASET --source RAW_DIR --data-dir {root}   "
        "(`clsbench list` shows each source)"
    )
    return (
        f"--data-dir {root} {state}. Fill it with\n{how}\n"
        "or leave out --data-dir to read the pinned Hub splits (HF_HUB_OFFLINE=1 with a filled HF cache offline)"
    )


def lmms_failure_messages(output: str) -> list[str]:
    """clsbench's own error messages and hints found in lmms-eval's output, most specific first."""
    messages = []
    lines = output.splitlines()
    for index, line in enumerate(lines):
        match = _OUR_ERROR.search(line)
        if match:
            text = [match.group(1)]
            for follow in lines[index + 1 : index + 6]:  # multi-line messages: the commands to run
                if not follow.startswith(("  ", "then ", "where ", "To ")) or follow.startswith("  File "):
                    break
                text.append(follow)
            message = "\n".join(text)
            if message not in messages:
                messages.append(message)
    messages += [hint for pattern, hint in _LMMS_HINTS if pattern.search(output)]
    return messages


def use_cache_refusal(args: list[str]) -> str | None:
    """Why ``--use_cache`` cannot be used with this model, or None.

    lmms-eval's cache keys a reply by prompt only, and ``clsbench_hf``'s ``cache_hook`` feeds it: with
    ``--use_cache`` it would serve replies from before a weights or settings change, past the answer
    store's fingerprint check. ``clsbench_hf`` resumes through its answer store instead.
    """
    if "--use_cache" not in args or (_option(args, "--model") or "").strip() not in ("clsbench_hf",):
        return None
    return (
        "--use_cache with --model clsbench_hf is refused: lmms-eval's cache keys replies by prompt only, so it "
        "would serve answers made with other weights or generation settings. clsbench_hf resumes through its "
        "own answer store, which checks both (model arg answer_store=DIR; README 'Reliability'): drop --use_cache."
    )


def run_lmms(
    lmms_args: list[str], data_dir: str | None = None, env: dict | None = None, log_file: Path | None = None
) -> tuple[int, list[Path]]:
    """Run lmms-eval's CLI with our tasks included.

    lmms-eval exits 0 even when evaluation failed, so success means: exit code 0 and at least one
    new results file under --output_path. Its output is shown (or, with ``log_file``, kept there) and
    scanned: a failure ends with clsbench's own message (what failed, for which dataset, the fix).

    Args:
        lmms_args: lmms-eval's own arguments, passed on unchanged (``--opt=value`` normalised).
        data_dir: the data root whose prepared copies the task folder reads.
        env: the environment for lmms-eval (default: this process's).
        log_file: keep lmms-eval's output there instead of showing it.

    Returns:
        ``(status, results files written)``: status 0 only when lmms-eval exited 0 and wrote results.
    """
    from clsbench.tasks.cls_mcq.task_folder import task_folder_for
    from clsbench.tasks.report.lmms_results import results_files

    args = normalise_args(list(lmms_args))
    refusal = use_cache_refusal(args)
    if refusal:
        print(f"clsbench lmms: error: {refusal}", file=sys.stderr)
        return 2, []
    if "--use_cache" in args:
        print(
            "clsbench lmms: warning: lmms-eval's --use_cache keys answers by prompt only: it serves answers made "
            "with other weights at the same path or other generation settings. Empty it after changing either.",
            file=sys.stderr,
        )
    include = str(task_folder_for(data_dir))
    if "--include_path" in args:
        position = args.index("--include_path") + 1
        args[position] = f"{args[position]},{include}" if position < len(args) else include
    else:
        args += ["--include_path", include]
    if "--output_path" not in args:
        args += ["--output_path", DEFAULT_LMMS_OUTPUT]
        print(f"clsbench: writing results to ./{DEFAULT_LMMS_OUTPUT} (pass --output_path to choose)", file=sys.stderr)
    output_path = _option(args, "--output_path")
    unreachable = _unreachable_hub_datasets(_option(args, "--tasks") or "", data_dir)
    if unreachable:
        for key in unreachable:
            print(
                "clsbench lmms: error: "
                + hub_offline_message(DATASETS[key], ConnectionError("the Hub is unreachable")),
                file=sys.stderr,
            )
        return 2, []
    started = time.time()
    run_env = {**(env or os.environ), "CLSBENCH_LMMS_TASKS": "0"}  # the folder is passed explicitly here
    process = subprocess.Popen(
        [sys.executable, "-m", "lmms_eval", *args],
        env=run_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    sink = log_file.open("w", encoding="utf-8") if log_file else sys.stderr
    kept: list[str] = []
    for line in process.stdout:
        sink.write(line)
        sink.flush()
        kept.append(line)
        del kept[:-4000]  # enough to find the error and its traceback
    code = process.wait()
    if log_file:
        sink.close()
    written = results_files(output_path, newer_than=started)
    if written:
        from clsbench.tasks.runtime.environment import write_versions

        write_versions(output_path, {"lmms_eval_args": args})
    if code == 0 and not written:
        where = f"see {log_file}" if log_file else "see its log above"
        print(
            f"clsbench: lmms-eval wrote no results under {output_path}: the evaluation failed ({where})",
            file=sys.stderr,
        )
        code = 1
    if code != 0:
        messages = lmms_failure_messages("".join(kept))
        for message in messages:
            print(f"clsbench lmms: error: {message}", file=sys.stderr)
        if not messages:
            print(
                "clsbench: if a dataset could not be loaded, `clsbench list` shows what is reachable; README "
                "'Local data' says how to prepare it or run offline",
                file=sys.stderr,
            )
    return code, written
