"""The layers import only downward: cli -> api -> executors -> container core -> store/model."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2] / "launcher"
# module prefix -> prefixes it must never import
FORBIDDEN = {
    "launcher.model": ("launcher.",),
    "launcher.store": ("launcher.executors", "launcher.api", "launcher.cli", "launcher.config"),
    "launcher.catalog": ("launcher.executors", "launcher.api", "launcher.cli", "launcher.store"),
    "launcher.executors": ("launcher.api", "launcher.cli"),
    "launcher.executors.container": ("launcher.executors.local", "launcher.executors.slurm"),
    "launcher.executors.local": ("launcher.executors.slurm",),
    "launcher.executors.slurm": ("launcher.executors.local",),
    "launcher.api": ("launcher.cli",),
}


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(ROOT.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=[module_name(p) for p in MODULES])
def test_imports_only_downward(path):
    name = module_name(path)
    for prefix, forbidden in FORBIDDEN.items():
        if name == prefix or name.startswith(prefix + "."):
            bad = [
                m for m in imports(path) for f in forbidden if m.startswith(f) and not m.startswith(prefix)
            ]
            assert not bad, f"{name} imports {bad}"
