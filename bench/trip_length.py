"""How far one question travels through clsbench's own code: docs -> prompt -> model -> score, in lmms-eval.

One ImageNet question (a one-row prepared copy of the fixture data) runs through lmms-eval's real evaluator with
``clsbench_hf`` in ``score`` mode on the tiny random-weight LLaVA. ``sys.setprofile`` watches every Python call
and return; only frames of clsbench's own files count (lmms-eval, transformers and the standard library are
stepped over). The question's trip is every clsbench frame lmms-eval's evaluator enters for it: the task's
hooks (``process_docs``, ``doc_to_visual``, ``doc_to_text``, ``process_results``, the aggregations) and the
model's ``generate_until``; start-up (indexing the task folder, loading the model) happens before the
profiler starts. lmms-eval runs ``process_results`` (the score) in a worker thread: the profiler is set for
every thread (``threading.setprofile``), each thread with its own stack.

* files: clsbench files entered;
* functions: distinct clsbench functions called;
* hops: calls from one clsbench file into another (the nearest clsbench caller on the stack, not lmms-eval's);
* returns: returns from one clsbench file back into another.

Run: ``python bench/trip_length.py`` (about 20 s on a CPU); ``--list`` prints the files and the hops.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
OURS = [str(ROOT / folder) + os.sep for folder in ("tasks", "models", "clip_baselines")]
COPIES: dict[str, str] = {}  # a task folder copy lmms-eval reads (the data root's) -> the package folder it copies


def _ours(filename: str) -> bool:
    return filename.startswith(tuple(OURS))


class Trip:
    """Counts clsbench files, functions, cross-file calls and returns."""

    def __init__(self) -> None:
        self.files: Counter[str] = Counter()
        self.functions: set[tuple[str, str]] = set()
        self.hops: list[tuple[str, str]] = []
        self.returns = 0
        self.threads = threading.local()  # per thread: its stack of clsbench frames, and whether it is importing

    def __call__(self, frame, event, arg) -> None:
        if event not in ("call", "return"):
            return
        code = frame.f_code
        if not _ours(code.co_filename):
            return
        state = self.threads
        if not hasattr(state, "stack"):
            state.stack = []  # files of the clsbench frames open in this thread, innermost last
            state.importing = 0  # > 0 inside a clsbench module's import (its module code and what that calls)
        if code.co_name == "<module>" or state.importing:  # a module run on import: start-up, not the trip
            state.importing += 1 if event == "call" else -1
            return
        if event == "call":  # entered from lmms-eval (a hook or the model) or from our own frames
            where = _short(code.co_filename)
            if state.stack and state.stack[-1] != where:
                self.hops.append((state.stack[-1], where))
            state.stack.append(where)
            self.files[where] += 1
            self.functions.add((where, code.co_qualname if hasattr(code, "co_qualname") else code.co_name))
        elif state.stack:
            where = state.stack.pop()
            if state.stack and state.stack[-1] != where:
                self.returns += 1


def _short(filename: str) -> str:
    for copy, package in COPIES.items():
        if filename.startswith(copy):
            return package + filename[len(copy) :]
    return str(Path(filename).relative_to(ROOT))


def measure(work: Path) -> Trip:
    """Run one ImageNet question through lmms-eval (score mode) with the profiler on; return what it saw."""
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    from clsbench.models.fixtures import build_tiny_llava
    from clsbench.models.lmms.clsbench_hf import ClsbenchHF
    from clsbench.tasks.cls_mcq.task_folder import task_folder_for
    from clsbench.tasks.data.fixtures import write_fixture_dataset

    write_fixture_dataset(work / "data", "imagenet", count=1)
    folder = task_folder_for(work / "data")  # a copy reading the prepared data: its hooks are ours too
    for path in {str(folder) + os.sep, str(folder.resolve()) + os.sep}:  # the link lmms-eval reads, its target
        COPIES[path] = "tasks/cls_mcq/"
        OURS.append(path)
    manager = TaskManager("ERROR", include_path=str(folder))
    model = ClsbenchHF(
        pretrained=str(build_tiny_llava(work / "llava")), mode="score", log_dir="off", answer_store="off"
    )
    trip = Trip()
    threading.setprofile(trip)  # threads started from here on (lmms-eval's process_results workers)
    sys.setprofile(trip)
    try:
        simple_evaluate(model=model, tasks=["cls_imagenet_mcq"], task_manager=manager, batch_size=1)
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    return trip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--list", action="store_true", help="print the files (calls each) and every hop")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="clsbench-trip-") as folder:
        trip = measure(Path(folder))
    print(
        f"one ImageNet question, lmms-eval, clsbench_hf score mode: {len(trip.files)} files, "
        f"{len(trip.functions)} functions, {len(trip.hops)} hops, {trip.returns} returns"
    )
    if args.list:
        for name, calls in trip.files.most_common():
            print(f"  {calls:5d}  {name}")
        for source, target in trip.hops:
            print(f"  hop: {source} -> {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
