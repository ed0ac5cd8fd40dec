"""The ``lmms_eval.models`` entry point: clsbench's models by class path, and its task folder in lmms-eval's index.

The entry point names :func:`manifests` (a callable, which lmms-eval's ``ModelRegistryV2`` accepts): the models
are class-path strings, imported only when lmms-eval builds one, so the plugin imports nothing from
``clsbench.models``, and this module imports nothing from lmms-eval at load time. That makes the import order
free: importing this module first (before ``lmms_eval.models``) cannot leave lmms-eval's registry loading a
half-initialized module, which dropped ``clsbench_hf`` from its model list when the manifests were built
at import time.

lmms-eval 0.7.3 loads this entry-point group at start-up, before it builds its TaskManager, and has no hook
for plugin tasks (``LMMS_EVAL_PLUGINS`` appends a plugin's tasks only after the TaskManager was built). So,
as narrowly as possible, this module wraps ``TaskManager.initialize_tasks`` to append clsbench's task folder
(:func:`clsbench.tasks.cls_mcq.task_folder.task_folder_for`) after lmms-eval's own folder and any
``--include_path``: built-in task names keep priority, and ``lmms-eval --tasks cls_imagenet_mcq --model ...``
works with no flag. The one other wrap, :func:`record_versions_in_results`, adds the installed versions to a
results file that holds clsbench tasks. Nothing else in lmms-eval is touched.

It checks what it relies on (lmms-eval 0.7.3, ``initialize_tasks(include_path=..., include_defaults=...)``);
where that differs it warns once and leaves lmms-eval alone, so ``--include_path "$(clsbench tasks-path)"``
is the way. ``CLSBENCH_LMMS_TASKS=0`` turns it off.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.util
import inspect
import os
import sys
import warnings
from importlib import metadata

# model id -> the class lmms-eval imports when that model is asked for (never imported here)
MODEL_CLASSES = {
    "clsbench_hf": "clsbench.models.lmms.clsbench_hf.ClsbenchHF",
    "clsbench_minicpm": "clsbench.models.lmms.minicpm.ClsbenchMiniCPM",
    "clsbench_vllm": "clsbench.models.lmms.vllm.ClsbenchVLLM",
}
SUPPORTED_LMMS_EVAL = "0.7.3"


def manifests() -> list:
    """lmms-eval's ``ModelManifest`` per clsbench model (called by its registry, once ``registry_v2`` is loaded)."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return [ModelManifest(model_id=name, simple_class_path=path) for name, path in MODEL_CLASSES.items()]


def _clsbench_folder() -> str:
    """The folder to index: the package's tasks, or the data root's copy reading prepared local data."""
    from clsbench.tasks.cls_mcq.task_folder import PACKAGE_TASK_FOLDER, task_folder_for

    try:
        return str(task_folder_for())
    except Exception as error:  # a malformed prepared copy must not stop lmms-eval from starting
        warnings.warn(
            f"clsbench: prepared data could not be indexed ({error}); using the Hub-only task folder", stacklevel=2
        )
        return str(PACKAGE_TASK_FOLDER)


def add_task_folder() -> bool:
    """Make lmms-eval's TaskManager index clsbench's tasks after its own; False when not done (a warning says why)."""
    if os.environ.get("CLSBENCH_LMMS_TASKS", "1") == "0":
        return False
    try:
        from lmms_eval.tasks import TaskManager

        version = metadata.version("lmms_eval")
        original = TaskManager.initialize_tasks
        parameters = inspect.signature(original).parameters
    except Exception as error:  # lmms-eval moved things: leave it alone
        version, original, parameters = f"unknown ({error})", None, {}
    if getattr(original, "__clsbench__", False):
        return True
    if version != SUPPORTED_LMMS_EVAL or not {"include_path", "include_defaults"} <= set(parameters):
        warnings.warn(
            f"clsbench: lmms-eval {version} is not {SUPPORTED_LMMS_EVAL}, whose task index clsbench extends; its "
            'tasks are not added automatically. Pass --include_path "$(clsbench tasks-path)" to lmms-eval, or use '
            "`clsbench lmms`.",
            stacklevel=2,
        )
        return False

    @functools.wraps(original)
    def initialize_tasks(self, include_path=None, include_defaults=True):
        record_versions_in_results()
        paths = [] if include_path is None else [include_path] if isinstance(include_path, str) else list(include_path)
        folder = _clsbench_folder()
        if folder not in paths:
            paths.append(folder)  # after lmms-eval's own folder and the user's: earlier names win
        return original(self, include_path=paths, include_defaults=include_defaults)

    initialize_tasks.__clsbench__ = True
    TaskManager.initialize_tasks = initialize_tasks
    return True


def record_versions_in_results() -> None:
    """Have lmms-eval's results file carry ``clsbench_versions`` (clsbench's and its dependencies' versions, from
    the installed packages, as ``clsbench lmms`` records them) when it holds a clsbench task.

    A bare ``lmms-eval`` run records no clsbench version otherwise, and its own ``lmms_eval_version`` is the git
    state of the working folder (``unknown@unknown`` outside a checkout). lmms-eval built its EvaluationTracker
    before its TaskManager, so the module is loaded by now; where it is not, nothing is done.
    """
    tracker = getattr(sys.modules.get("lmms_eval.loggers.evaluation_tracker"), "EvaluationTracker", None)
    original = getattr(tracker, "save_results_aggregated", None)
    if original is None or getattr(original, "__clsbench__", False):
        return

    @functools.wraps(original)
    def save_results_aggregated(self, results, *args, **kwargs):
        if isinstance(results, dict) and any(str(task).startswith("cls_") for task in results.get("results") or {}):
            from clsbench.tasks.runtime.environment import versions_record

            results.setdefault("clsbench_versions", versions_record())
        return original(self, results, *args, **kwargs)

    save_results_aggregated.__clsbench__ = True
    tracker.save_results_aggregated = save_results_aggregated


class _AfterTasksImport(importlib.abc.MetaPathFinder):
    """Runs :func:`add_task_folder` right after ``lmms_eval.tasks`` is imported.

    lmms-eval loads this entry point while ``lmms_eval.models`` is still being imported, when importing
    ``lmms_eval.tasks`` from here could be circular; so the patch waits for lmms-eval's own import.
    """

    def __init__(self) -> None:
        self.busy = False

    def find_spec(self, name, path=None, target=None):
        if name != "lmms_eval.tasks" or self.busy:
            return None
        self.busy = True
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self.busy = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        load = spec.loader.exec_module

        def exec_module(module):
            load(module)
            add_task_folder()
            if self in sys.meta_path:  # done: no later import pays for this finder
                sys.meta_path.remove(self)

        spec.loader.exec_module = exec_module
        return spec


if "lmms_eval.tasks" in sys.modules:
    add_task_folder()
elif not any(isinstance(finder, _AfterTasksImport) for finder in sys.meta_path):
    sys.meta_path.insert(0, _AfterTasksImport())
