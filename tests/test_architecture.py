"""Imports flow one way: each room of the tree may import only rooms below it, and no module imports itself back.

Every ``import`` counts, including those inside functions (a lazy import is still a dependency).
The rooms, lowest first, are the README's architecture paragraph.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"clsbench.tasks": "tasks", "clsbench.models": "models", "clsbench.clip_baselines": "clip_baselines"}
# Lowest first. A module may import its own room and any room with a smaller rank.
ROOMS = [
    ("clsbench.tasks.runtime", 0),  # stores, locks, fingerprints, versions
    ("clsbench.tasks.protocol", 1),  # registry, catalog, option draws, questions, parsing, the paper's numbers
    ("clsbench.tasks.data", 2),  # Hub and local loading, images, prepared copies, negatives files, samples
    ("clsbench.tasks.report", 3),  # reading any toolkit's results; tables and figures
    ("clsbench.tasks.variants", 4),  # free-form, text-only and multi-label protocols (multi-label re-scores results)
    ("clsbench.tasks.cls_mcq", 5),  # the lmms-eval task folder
    ("clsbench.tasks.toolkits", 6),  # running lmms-eval, VLMEvalKit datasets, the upstream kit
    ("clsbench.models", 7),  # model wrappers (engine, lmms-eval and VLMEvalKit adapters, the model list)
    ("clsbench.clip_baselines", 7),  # CLIP zero-shot on the same questions
    ("clsbench.tasks.cli", 9),  # the command line and the demo: the only room that joins models and CLIP
    ("clsbench.tasks", 1),  # the package's own __init__
]


def _modules() -> dict[str, Path]:
    found = {}
    for package, folder in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def _room(module: str) -> tuple[str, int]:
    for prefix, rank in ROOMS:
        if module == prefix or module.startswith(prefix + "."):
            return prefix, rank
    raise AssertionError(f"{module} is in no room; add it to ROOMS and to the README's architecture paragraph")


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    targets = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("clsbench"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                targets.add(full if full in modules else node.module)
        elif isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names if alias.name.startswith("clsbench"))
    return targets


def test_every_import_points_down_or_sideways_within_a_room():
    modules = _modules()
    wrong = []
    for module, path in modules.items():
        room, rank = _room(module)
        for target in _imports(path, modules):
            target_room, target_rank = _room(target)
            if target_rank > rank or (target_rank == rank and target_room != room):
                wrong.append(f"{module} imports {target} ({room} -> {target_room})")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_import_cycle():
    modules = _modules()
    graph = {
        module: {t for t in _imports(path, modules) if t in modules and t != module} for module, path in modules.items()
    }
    state: dict[str, int] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for target in graph[module]:
            if state.get(target) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*trail[trail.index(target) :], target]))
            if target not in state:
                visit(target, [*trail, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_test_and_demo_builders_stay_off_the_runtime_path():
    """Tiny random-weight builders ship for the demo, but no runtime module imports them."""
    modules = _modules()
    builders = {
        "clsbench.models.fixtures",
        "clsbench.models.real_tokenizers",  # tiny models on real tokenizers: a builder too
        "clsbench.clip_baselines.fixtures",
        "clsbench.tasks.data.fixtures",
    }
    for module, path in modules.items():
        if module in builders or _room(module)[0] == "clsbench.tasks.cli" or module.endswith(".demo"):
            continue
        assert not (_imports(path, modules) & builders), f"{module} imports a test/demo builder"


def test_the_tree_is_ruff_clean():
    """The conventions in pyproject.toml hold: lint (pycodestyle, pyflakes, isort, pyupgrade, bugbear) and format."""
    import shutil
    import subprocess
    import sys

    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    for command in ([ruff, "check", "--no-cache", "."], [ruff, "format", "--check", "--no-cache", "."]):
        run = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
