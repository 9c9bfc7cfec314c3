"""The adapters' place in the house, read from their source: they depend on the core's values
and contracts only (never on features, backends or the app's wiring), and their modules import
each other one way (no circle, not even one for type checking)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("bot.features", "bot.backends", "bot.app", "bot.spend", "storage")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted((ROOT / "adapters").rglob("*.py"))}


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, wherever the import statement stands."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in MODULES else node.module)
    return found


@pytest.mark.parametrize("name", sorted(MODULES))
def test_an_adapter_module_imports_nothing_of_features_backends_or_the_app(name: str) -> None:
    bad = sorted(
        imported
        for imported in imports_of(MODULES[name])
        if any(imported == f or imported.startswith(f + ".") for f in FORBIDDEN)
    )
    assert bad == [], f"{name} imports {bad}"


def test_adapter_modules_import_each_other_one_way() -> None:
    graph = {name: imports_of(path) & MODULES.keys() for name, path in MODULES.items()}
    done: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            circle = [*trail[trail.index(name) :], name]
            raise AssertionError("import circle: " + " -> ".join(circle))
        if name in done:
            return
        for imported in sorted(graph[name]):
            visit(imported, [*trail, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])
    assert "adapters.slack.outbox" in graph["adapters.slack.adapter"]  # the graph is real
