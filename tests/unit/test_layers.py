"""The layers import only downward, and no module imports itself back through others.

Every import in launcher/ is resolved to the full name of the module it loads: `from launcher import api`
is launcher.api, `from ..cli import render` in launcher/store/layout.py is launcher.cli.render. Lazy imports
(inside a function, used to keep `--help` and the verbs fast) count exactly like module-level ones: they
run whenever that function does, so laziness changes when a dependency loads, not whether it exists.
Importing a submodule also runs its parent packages' __init__.py; those implicit edges are left out
(each package face re-exports its own submodules, which would otherwise make every face a cycle).
Imports by name at run time (importlib: the harness's task registry, the executor entry points) are
not in the graph; they load what the config names, which is the point of them.

`check` is pure (a module graph in, problems out), so the tests at the end prove on synthetic mutations
that it fails on an upward import, an unresolved relative one and a new cycle.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "launcher"

# Room -> the rooms its modules may import besides their own. A room is launcher.<top>, except that the
# executors' children (container, local, slurm) are rooms of their own below `executors` (base, registry,
# status). The root package (launcher/__init__.py: the version) and errors.py are open to every room but
# the harness, which runs inside the task image where only launcher/__init__.py and launcher/harness exist.
BASE = ("launcher", "errors")
RECORDS = (*BASE, "model", "config", "store")  # what a run is: its config, records and folder layout
SCHEDULER = (*RECORDS, "catalog", "proxy", "executors", "executors.container")
ALLOWED: dict[str, tuple[str, ...]] = {
    "launcher": (),
    "errors": ("launcher",),
    "model": BASE,
    "logsetup": BASE,
    "conf": (),
    "harness": ("launcher",),
    "proxy": BASE,  # runs on Slurm nodes as `-m launcher.proxy`: nothing of the launcher's but errors
    "config": BASE,
    "store": (*BASE, "model"),
    "catalog": (*BASE, "harness"),  # the built-in tasks are the harness's benchmarks
    "executors": RECORDS,
    "executors.container": (*RECORDS, "catalog", "proxy", "executors", "harness"),
    "executors.local": SCHEDULER,
    "executors.slurm": SCHEDULER,
    # The submit budget counts from this process's start: executors.container.process.age.
    "api": (*RECORDS, "logsetup", "executors", "executors.container", "paired"),
    "export": (*BASE, "model", "store", "harness", "proxy"),
    "paired": (*BASE, "store", "export", "harness"),  # compare and gate read what export reads
    "report": (*BASE, "export", "proxy", "paired"),
    "testing": (*RECORDS, "harness", "executors"),
    "cli": (*RECORDS, "logsetup", "catalog", "proxy", "executors", "api", "export", "report", "paired"),
    "__main__": (*BASE, "cli"),
}


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room(module: str) -> str:
    """launcher.executors.slurm.render -> executors.slurm; launcher.api -> api; launcher -> launcher."""
    parts = module.split(".")[1:]
    if not parts:
        return "launcher"
    if parts[0] == "executors" and len(parts) > 1 and parts[1] in ("container", "local", "slurm"):
        return f"executors.{parts[1]}"
    return parts[0]


def resolve(module: str, is_package: bool, node: ast.Import | ast.ImportFrom, known: set[str]) -> list[str]:
    """The full names of the modules an import statement loads (absolute or relative); `from A import b`
    is A.b when that is a module, else A. Names outside the package come back as they are."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        if node.level - 1 >= len(base):
            return [f"<relative import beyond the top package: level {node.level}>"]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    return [f"{target}.{a.name}" if f"{target}.{a.name}" in known else target for a in node.names]


@functools.cache
def imports_of(module: str, is_package: bool, source: str, known: frozenset[str]) -> frozenset[str]:
    """The launcher modules one module's source imports (module-level and lazy imports alike)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            targets = resolve(module, is_package, node, known)
            found.update(t for t in targets if t == "launcher" or t.startswith(("launcher.", "<")))
    return frozenset(found - {module})


def sources(root: Path = ROOT) -> dict[str, tuple[bool, str]]:
    """Module name -> (is it a package's __init__.py, its source)."""
    return {
        module_name(p, root): (p.name == "__init__.py", p.read_text(encoding="utf-8"))
        for p in sorted(root.rglob("*.py"))
    }


def graph(found: dict[str, tuple[bool, str]]) -> dict[str, frozenset[str]]:
    """Module -> the launcher modules it imports."""
    known = frozenset(found)
    return {name: imports_of(name, is_package, text, known) for name, (is_package, text) in found.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected group of more than one module (Tarjan), as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in edges:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def check(edges: dict[str, set[str]]) -> list[str]:
    """Every upward (not allowed) import, unresolvable relative import and import cycle, one line each."""
    problems = []
    for module, targets in sorted(edges.items()):
        mine = room(module)
        for target in sorted(targets):
            if target.startswith("<"):
                problems.append(f"{module}: {target[1:-1]}")
            elif room(target) != mine and room(target) not in ALLOWED[mine]:
                problems.append(
                    f"{module} imports {target}: {mine} may import only {', '.join(ALLOWED[mine])}"
                )
    problems += [f"import cycle: {' <-> '.join(group)}" for group in cycles(edges)]
    return problems


@pytest.fixture(scope="module")
def tree() -> dict[str, tuple[bool, str]]:
    return sources()


def test_every_room_has_a_rule(tree):
    rooms = {room(m) for m in tree}
    assert rooms <= set(ALLOWED), f"no rule for {sorted(rooms - set(ALLOWED))}: add it to ALLOWED"
    assert all(set(allowed) <= set(ALLOWED) for allowed in ALLOWED.values())


def test_rooms_form_no_cycle():
    """The rules themselves go only downward: no two rooms may import each other, even through others."""
    assert cycles({r: set(allowed) for r, allowed in ALLOWED.items()}) == []


def test_launcher_imports_only_downward_and_has_no_cycle(tree):
    assert check(graph(tree)) == []


# ---- the checker fails on what it guards: the real sources, one module given an extra line ----------


def mutated(tree: dict[str, tuple[bool, str]], module: str, line: str) -> list[str]:
    is_package, text = tree[module]
    return check(graph({**tree, module: (is_package, f"{text}\n{line}\n")}))


UPWARD = [  # (module, the line added to it, how the problem starts)
    ("model", "from launcher import api", "launcher.model imports launcher.api: model may"),
    ("store.layout", "from ..cli import render", "launcher.store.layout imports launcher.cli.render:"),
    ("store.layout", "import launcher.cli.render", "launcher.store.layout imports launcher.cli.render:"),
    ("store", "from ..cli import render", "launcher.store imports launcher.cli.render:"),
    ("harness.runner", "from launcher.errors import LauncherError", "launcher.harness.runner imports"),
    ("export.source", "from launcher import report", "launcher.export.source imports launcher.report:"),
    ("store.events", "from ...x import y", "launcher.store.events: relative import beyond the top"),
]


@pytest.mark.parametrize(("module", "line", "expected"), UPWARD)
def test_an_upward_import_fails(tree, module, line, expected):
    problems = mutated(tree, f"launcher.{module}", line)
    assert any(p.startswith(expected) for p in problems), problems


def test_a_lazy_upward_import_fails(tree):
    problems = mutated(tree, "launcher.config.schema", "def f():\n    from launcher.cli import render")
    assert any(p.startswith("launcher.config.schema imports launcher.cli.render") for p in problems), problems


def test_a_new_cycle_fails(tree):
    """store.events -> store.layout exists (allowed, same room); the way back closes a cycle."""
    assert "launcher.store.layout" in graph(tree)["launcher.store.events"]
    problems = mutated(tree, "launcher.store.layout", "def f():\n    from launcher.store import events")
    assert "import cycle: launcher.store.events <-> launcher.store.layout" in problems, problems


def test_cycles_in_a_graph():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert cycles(edges) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
