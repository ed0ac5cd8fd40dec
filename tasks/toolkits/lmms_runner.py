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
    from clsbench.tasks.cls_mcq._generate_configs import task_folder_for
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
