"""The shape of the code: no import cycles among product modules, and the import contracts hold.

grimp (import-linter's own graph builder) reads the source, so imports inside functions and under
``TYPE_CHECKING`` count too: a cycle hidden in a function is still a cycle in the design.
"""

from __future__ import annotations

import subprocess
import sys
from collections import deque
from collections.abc import Iterable, Mapping
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT_PACKAGES = ("bot", "adapters", "storage")


def import_graph() -> dict[str, set[str]]:
    """Every product module and the product modules it imports directly."""
    graph = grimp.build_graph(*PRODUCT_PACKAGES, cache_dir=None)
    return {module: graph.find_modules_directly_imported_by(module) for module in graph.modules}


def strongly_connected(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; returns the components that hold a cycle, sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterable[str]]] = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, successors = work[-1]
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph.get(succ, ())))))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1 or node in graph.get(node, ()):
                        found.append(sorted(component))
    return sorted(found)


def shortest_cycle(graph: Mapping[str, Iterable[str]], start: str) -> list[str]:
    """The shortest path from ``start`` back to itself (breadth-first), as a list of modules."""
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for succ in sorted(graph.get(node, ())):
            if succ == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if succ not in previous:
                previous[succ] = node
                queue.append(succ)
    return []


def describe_cycles(graph: Mapping[str, Iterable[str]]) -> list[str]:
    """One readable line per component: its modules and one of its shortest cycles."""
    lines = []
    for component in strongly_connected(graph):
        cycle = min(
            (shortest_cycle(graph, member) for member in component),
            key=lambda path: (len(path), path),
        )
        lines.append(f"{', '.join(component)}; e.g. " + " -> ".join(cycle))
    return lines


def test_the_cycle_finder_finds_a_planted_cycle_and_nothing_else() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e"}, "f": {"d"}}
    assert strongly_connected(graph) == [["a", "b", "c"], ["e"]]
    assert shortest_cycle(graph, "b") == ["b", "c", "a", "b"]
    assert describe_cycles(graph) == ["a, b, c; e.g. a -> b -> c -> a", "e; e.g. e -> e"]


def test_the_graph_sees_imports_inside_functions_and_under_type_checking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "planted_arch"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("def later():\n    from planted_arch import b\n")
    (package / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from planted_arch import a\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    graph = grimp.build_graph("planted_arch", cache_dir=None)
    planted = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    assert describe_cycles(planted) == [
        "planted_arch.a, planted_arch.b; e.g. planted_arch.a -> planted_arch.b -> planted_arch.a"
    ]


def test_the_product_graph_holds_only_product_modules() -> None:
    graph = import_graph()
    assert {"bot.core.types", "adapters.slack.adapter", "storage.db"} <= graph.keys()
    assert all(module.split(".")[0] in PRODUCT_PACKAGES for module in graph)


def test_the_fakes_and_the_benchmarks_import_nothing_from_the_tests() -> None:
    """testing/ and benchmarks/ stand on their own: tests/ may use them, never the reverse."""
    graph = grimp.build_graph("testing", "benchmarks", "tests", cache_dir=None)
    wrong = sorted(
        (importer, imported)
        for importer in graph.modules
        if importer.split(".")[0] in ("testing", "benchmarks")
        for imported in graph.find_modules_directly_imported_by(importer)
        if imported.split(".")[0] == "tests"
    )
    assert wrong == []


def test_no_import_cycle_among_product_modules() -> None:
    cycles = describe_cycles(import_graph())
    print("\n".join(cycles))
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_import_contracts_hold() -> None:
    """The same check as ``lint-imports`` in scripts/test, in a child process so its logging
    set-up stays out of this one."""
    executable = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(executable), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    print(result.stdout, result.stderr)
    assert result.returncode == 0, result.stdout + result.stderr
