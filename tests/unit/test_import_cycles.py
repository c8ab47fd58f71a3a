"""No import cycles between Flowtide's modules (at import time; ``TYPE_CHECKING`` imports do not count).

A cycle makes import order matter and keeps modules from being understood one at a time. ``from package
import submodule`` depends on the submodule, not on the whole package's ``__init__``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROOMS = ("workflows", "activities", "worker", "client")


def _modules(root: Path) -> dict[str, Path]:
    found = {}
    for room in ROOMS:
        for path in (root / room).rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(("flowtide", *parts))
            found[name.removesuffix(".__init__")] = path
    return found


def _imports(path: Path, known: dict[str, Path]) -> set[str]:
    out: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
                continue
            if isinstance(node, ast.Import):
                out.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                subs = {f"{node.module}.{a.name}" for a in node.names} & set(known)
                out.update(subs or {node.module})
            elif isinstance(node, ast.With | ast.If | ast.Try):
                visit(node.body)
                visit(getattr(node, "orelse", []))
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    return out & set(known)


def find_cycles(root: Path = ROOT) -> list[list[str]]:
    """Every cycle found by a depth-first walk of the module graph of the rooms under ``root``."""
    known = _modules(root)
    graph = {name: _imports(path, known) for name, path in known.items()}
    cycles: list[list[str]] = []
    done: set[str] = set()

    def walk(node: str, stack: list[str]) -> None:
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt in stack:
                cycles.append([*stack[stack.index(nxt):], nxt])
            elif nxt not in done:
                walk(nxt, stack)
        stack.pop()
        done.add(node)

    for name in sorted(graph):
        if name not in done:
            walk(name, [])
    return cycles


def test_no_import_cycles() -> None:
    assert find_cycles() == [], "\n".join(" -> ".join(c) for c in find_cycles())


def test_the_walk_finds_a_cycle(tmp_path: Path) -> None:
    """The check can fail: two modules that import each other are reported."""
    (tmp_path / "client").mkdir()
    (tmp_path / "client" / "a.py").write_text("from flowtide.client import b\n")
    (tmp_path / "client" / "b.py").write_text("from flowtide.client import a\n")
    assert ["flowtide.client.a", "flowtide.client.b", "flowtide.client.a"] in find_cycles(tmp_path)


# Which rooms each room may import (besides itself). The language is pure: it never reaches the engine or
# Temporal; the shared facts (workflows/*.py) reach no room; activities never import workflow code.
ALLOWED = {
    "flowtide.workflows.language": {"flowtide.workflows"},
    "flowtide.workflows.engine": {"flowtide.workflows", "flowtide.workflows.language"},
    "flowtide.workflows": set(),
    # the connection store is the service database's; activities read credentials from it at call time
    "flowtide.activities": {"flowtide.workflows", "flowtide.workflows.language", "flowtide.client.service.connections"},
}


def _room(module: str) -> str:
    for room in sorted(ALLOWED, key=len, reverse=True):
        if module == room or module.startswith(room + "."):
            return room
    return module.split(".")[1]


def room_violations(root: Path = ROOT) -> list[str]:
    known = _modules(root)
    found = []
    for name, path in known.items():
        room = _room(name)
        if room not in ALLOWED:
            continue
        for target in _imports(path, known):
            if _room(target) != room and not {_room(target), target} & ALLOWED[room]:
                found.append(f"{name} imports {target}")
        if room == "flowtide.workflows.language" and "temporalio" in path.read_text(encoding="utf-8"):
            found.append(f"{name} mentions temporalio (the language room is pure)")
    return sorted(found)


def test_rooms_depend_one_way() -> None:
    assert room_violations() == []


def test_the_room_check_can_fail(tmp_path: Path) -> None:
    (tmp_path / "workflows" / "language").mkdir(parents=True)
    (tmp_path / "workflows" / "engine").mkdir()
    (tmp_path / "workflows" / "language" / "a.py").write_text("from flowtide.workflows.engine import b\n")
    (tmp_path / "workflows" / "engine" / "b.py").write_text("x = 1\n")
    assert room_violations(tmp_path) == ["flowtide.workflows.language.a imports flowtide.workflows.engine.b"]
