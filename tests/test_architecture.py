"""Imports flow one way: each room of the tree may import only the rooms it names, and no module imports itself back.

Every ``import`` counts, including those inside functions (a lazy import is still a dependency). The rooms are
listed one by one (the README's architecture table): a module in no listed room fails, so a new folder is placed
on purpose. ``models/`` is a leaf: it imports only the protocol, the run-time helpers and the data loaders, never
the task side that runs it (toolkits, reports, the task folder). Relative imports are refused, so every edge is
visible to this check and to a reader.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"clsbench.tasks": "tasks", "clsbench.models": "models", "clsbench.clip_baselines": "clip_baselines"}
LINTED = ("tasks", "models", "clip_baselines", "tests", "bench")  # the project's folders, not the working dir

RUNTIME, PROTOCOL, DATA = "clsbench.tasks.runtime", "clsbench.tasks.protocol", "clsbench.tasks.data"
MODEL_ROOMS = (
    "clsbench.models",  # the package's own __init__
    "clsbench.models.engine",  # the engine, the one settings object, answer modes, decision logs, the answer store
    "clsbench.models.lmms",  # lmms-eval adapters
    "clsbench.models.vlmeval",  # the VLMEvalKit adapter and its model registration
    "clsbench.models.catalog",  # the model list
    "clsbench.models.throughput",  # measured GPU throughput and the hours a run takes (clsbench plan, benches)
    "clsbench.models.throughput",  # measured per-question costs, the run-time projection
    "clsbench.models.fixtures",  # tiny random-weight models for tests and the demo
    "clsbench.models.real_tokenizers",  # tiny models on real tokenizers (tests and benches)
)
# Room -> rank, lowest first: a module may import its own room and any room of a smaller rank, except the leaves.
ROOMS = {
    RUNTIME: 0,  # stores, locks, fingerprints, versions, the project's error types
    PROTOCOL: 1,  # registry, catalog, option draws, questions, parsing, the paper's numbers
    DATA: 2,  # Hub and local loading, images, prepared copies, negatives files, samples
    "clsbench.tasks.report": 3,  # reading any toolkit's results; tables and figures
    "clsbench.tasks.variants": 4,  # free-form, text-only and multi-label protocols (multi-label re-scores results)
    "clsbench.tasks.cls_mcq": 5,  # the lmms-eval task folder (its generator is a script nothing imports)
    "clsbench.tasks.toolkits": 6,  # the lmms-eval plugin and runner, VLMEvalKit datasets, the upstream kit
    **dict.fromkeys(MODEL_ROOMS, 7),  # model wrappers: a leaf (LEAVES)
    "clsbench.clip_baselines": 7,  # CLIP zero-shot on the same questions
    "clsbench.tasks.cli": 9,  # the command line and the demo: the only room that joins models and CLIP
    "clsbench.tasks": 1,  # the package's own __init__ only (EXACT)
}
EXACT = {"clsbench.tasks", "clsbench.models"}  # rooms that are one module, never a prefix for new folders
# Rooms that may import only these rooms (and themselves), whatever their rank.
LEAVES = {room: {RUNTIME, PROTOCOL, DATA, *MODEL_ROOMS} for room in MODEL_ROOMS}
SCRIPTS = {"clsbench.tasks.cls_mcq._generate_configs"}  # run, never imported
# Files copied into another package (the upstream lmms-eval kit): their relative imports name their siblings there.
COPIED = ("clsbench.tasks.toolkits.lmms_kit",)
BUILDERS = ("clsbench.models.fixtures", "clsbench.models.real_tokenizers", "clsbench.clip_baselines.fixtures")
BUILDERS += ("clsbench.tasks.data.fixtures",)


def modules_of(root: Path) -> dict[str, Path]:
    found = {}
    for package, folder in FOLDERS.items():
        for path in (root / folder).rglob("*.py"):
            parts = list(path.relative_to(root / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def room_of(module: str) -> str | None:
    """The module's room: the longest listed prefix (an EXACT room only as itself); None when it is in none."""
    rooms = [r for r in ROOMS if module == r or (r not in EXACT and module.startswith(r + "."))]
    return max(rooms, key=len) if rooms else None


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def imports_of(path: Path, modules: dict[str, Path]) -> tuple[set[str], list[int]]:
    """The clsbench modules ``path`` imports, and the lines of its relative imports."""
    targets, relative = set(), []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level:
            relative.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module and _within(node.module, "clsbench"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                targets.add(full if full in modules else node.module)
        elif isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names if _within(alias.name, "clsbench"))
    return targets, relative


def violations(root: Path) -> list[str]:
    """Every broken rule in the tree at ``root``: unplaced modules, relative imports, imports against the flow."""
    modules = modules_of(root)
    wrong = []
    for module, path in sorted(modules.items()):
        room = room_of(module)
        if room is None:
            wrong.append(f"{module} is in no room; add it to ROOMS and to the README's architecture table")
            continue
        targets, relative = imports_of(path, modules)
        if not any(_within(module, folder) for folder in COPIED):
            wrong += [f"{module} line {line}: relative import (write clsbench.…)" for line in relative]
        for target in sorted(targets):
            target_room = room_of(target)
            if target_room is None:
                wrong.append(f"{module} imports {target}, which is in no room")
            elif target in SCRIPTS:
                wrong.append(f"{module} imports {target}, a script (run it; import its run-time module)")
            elif room in LEAVES:
                if target_room not in LEAVES[room]:
                    wrong.append(f"{module} imports {target} ({room} is a leaf: {target_room} is above it)")
            elif ROOMS[target_room] > ROOMS[room] or (ROOMS[target_room] == ROOMS[room] and target_room != room):
                wrong.append(f"{module} imports {target} ({room} -> {target_room})")
    return wrong


def test_every_import_points_down_or_sideways_within_a_room():
    wrong = violations(ROOT)
    assert not wrong, "\n".join(wrong)


def _plant(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def test_a_planted_upward_import_unplaced_module_or_relative_import_fails_the_check(tmp_path):
    """The checker itself, on a small tree: a clean one passes, and each kind of slip is caught and named."""
    clean = {
        "tasks/protocol/questions.py": "X = 1\n",
        "tasks/report/tables.py": "from clsbench.tasks.protocol.questions import X\n",
        "models/engine/answering.py": "from clsbench.tasks.protocol.questions import X\n",
        "models/lmms/adapter.py": "from clsbench.models.engine.answering import X\n",
    }
    assert violations(_plant(tmp_path / "clean", clean)) == []
    upward = {**clean, "models/engine/answering.py": "def f():\n    from clsbench.tasks.report.tables import X\n"}
    assert violations(_plant(tmp_path / "upward", upward)) == [
        "clsbench.models.engine.answering imports clsbench.tasks.report.tables "
        "(clsbench.models.engine is a leaf: clsbench.tasks.report is above it)"
    ]
    toolkit = {**clean, "tasks/toolkits/plugin.py": "X = 1\n", "models/lmms/adapter.py": "import clsbench.tasks"}
    assert "a leaf" in "".join(violations(_plant(tmp_path / "toolkit", toolkit)))
    unplaced = {**clean, "tasks/newroom/thing.py": "X = 1\n", "models/thing.py": "X = 1\n"}
    assert [line.split(" ")[0] for line in violations(_plant(tmp_path / "unplaced", unplaced))] == [
        "clsbench.models.thing",
        "clsbench.tasks.newroom.thing",
    ]
    relative = {**clean, "models/lmms/adapter.py": "from ..engine.answering import X\n"}
    assert violations(_plant(tmp_path / "relative", relative)) == [
        "clsbench.models.lmms.adapter line 1: relative import (write clsbench.…)"
    ]


def test_no_import_cycle():
    modules = modules_of(ROOT)
    graph = {
        module: {t for t in imports_of(path, modules)[0] if t in modules and t != module}
        for module, path in modules.items()
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
    modules = modules_of(ROOT)
    for module, path in modules.items():
        if any(_within(module, b) for b in BUILDERS) or room_of(module) == "clsbench.tasks.cli":
            continue
        if module.endswith(".demo"):
            continue
        builders = {t for t in imports_of(path, modules)[0] if any(_within(t, b) for b in BUILDERS)}
        assert not builders, f"{module} imports a test/demo builder: {sorted(builders)}"


def test_the_project_folders_are_ruff_clean():
    """The conventions in pyproject.toml hold in the project's folders (a scratch folder in a checkout is not
    linted): lint (pycodestyle, pyflakes, isort, pyupgrade, bugbear) and format."""
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    for command in ([ruff, "check", "--no-cache"], [ruff, "format", "--check", "--no-cache"]):
        run = subprocess.run([*command, *LINTED], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
