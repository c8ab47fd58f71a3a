"""The rooms and their one-way directions, read from every import of every module.

Every import counts: at module level, inside functions and under ``TYPE_CHECKING`` (reported apart, as
"typing" edges, since they do not run but still tie two modules together). The test holds:

* the rooms depend one way (``ALLOWED``), and every room has a row;
* no import cycle between modules, of runtime imports or with the typing imports added;
* no module imports a private module (``_name``) of another package (its own package and the packages
  that contain it may);
* the language room never mentions Temporal.

``from package import name`` depends on ``package.name`` when that is a module, else on ``package``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("workflows", "activities", "worker", "client", "service", "store", "dev", "guards")

# Which rooms each room may import besides itself; the most specific room wins (client.cli before client).
ALLOWED: dict[str, set[str]] = {
    "flowtide": {"flowtide.client", "flowtide.client.testing", "flowtide.workflows"},  # the public faces
    "flowtide.worker.__main__": {"flowtide.client.cli"},  # `python -m flowtide.worker`: the CLI's worker command
    "flowtide.workflows": set(),      # the facts every room shares: errors, kinds, retry, limits, contracts
    "flowtide.workflows.language": {"flowtide.workflows"},
    "flowtide.workflows.engine": {"flowtide.workflows", "flowtide.workflows.language"},
    "flowtide.guards": {"flowtide.workflows"},  # the network and file guards: the codes they raise
    "flowtide.store": {"flowtide.workflows", "flowtide.guards"},
    "flowtide.activities": {"flowtide.workflows", "flowtide.workflows.language", "flowtide.store", "flowtide.guards"},
    "flowtide.worker": {"flowtide.activities", "flowtide.workflows", "flowtide.workflows.language",
                        "flowtide.workflows.engine", "flowtide.store", "flowtide.guards"},
    "flowtide.client": {"flowtide.workflows", "flowtide.workflows.language", "flowtide.workflows.engine",
                        "flowtide.worker"},
    "flowtide.service": {"flowtide.client", "flowtide.store", "flowtide.workflows", "flowtide.workflows.language",
                         "flowtide.guards"},
    "flowtide.dev": {"flowtide.workflows", "flowtide.workflows.language"},
    # `flowtide test`: a worker whose step activities are the mocked ones (activities.mocks)
    "flowtide.client.testing": {"flowtide.client", "flowtide.workflows", "flowtide.workflows.language",
                                "flowtide.worker", "flowtide.activities"},
    "flowtide.client.cli": {"flowtide", "flowtide.client", "flowtide.client.testing", "flowtide.service",
                            "flowtide.store", "flowtide.worker", "flowtide.dev", "flowtide.activities",
                            "flowtide.guards", "flowtide.workflows", "flowtide.workflows.language"},
}


@dataclass
class Graph:
    modules: dict[str, Path]
    runtime: dict[str, set[str]] = field(default_factory=dict)
    typing: dict[str, set[str]] = field(default_factory=dict)


def _modules(root: Path) -> dict[str, Path]:
    found = {"flowtide": root / "flowtide" / "__init__.py"}
    found |= {f"flowtide.{p.stem}": p for p in (root / "flowtide").glob("[!_]*.py")}  # public faces (testing)
    for folder in FOLDERS:
        for path in (root / folder).rglob("*.py"):
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(("flowtide", *parts)).removesuffix(".__init__")] = path
    return {k: v for k, v in found.items() if v.exists()}


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_pkg: bool, known: dict[str, Path]) -> set[str]:
    if isinstance(node, ast.Import):
        return {a.name for a in node.names}
    base = node.module or ""
    if node.level:
        parts = module.split(".")
        anchor = parts if is_pkg else parts[:-1]
        anchor = anchor[: len(anchor) - (node.level - 1)]
        base = ".".join([*anchor, *([base] if base else [])])
    subs = {f"{base}.{a.name}" for a in node.names} & set(known)
    return subs or {base}


def build(root: Path = ROOT) -> Graph:
    known = _modules(root)
    g = Graph(known)
    for name, path in known.items():
        is_pkg = path.name == "__init__.py"
        runtime: set[str] = set()
        typing: set[str] = set()

        def visit(nodes: list[ast.stmt], into: set[str], name: str = name, is_pkg: bool = is_pkg,
                  typing: set[str] = typing) -> None:
            for node in nodes:
                if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
                    visit(node.body, typing)
                    visit(node.orelse, into)
                    continue
                if isinstance(node, ast.Import | ast.ImportFrom):
                    into.update(_targets(node, name, is_pkg, known))
                    continue
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, ast.stmt):
                        visit([child], into)
                    else:  # expressions hold no statements, but lambdas/comprehensions hold no imports either
                        continue

        visit(ast.parse(path.read_text(encoding="utf-8")).body, runtime)
        g.runtime[name] = {t for t in runtime if t in known and t != name}
        g.typing[name] = {t for t in typing if t in known and t != name} - g.runtime[name]
    return g


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan), as a readable path."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    comps: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                comps.append(sorted(comp))

    import sys
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for v in sorted(graph):
            if v not in index:
                strong(v)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(comps)


def room(module: str) -> str:
    for r in sorted(ALLOWED, key=len, reverse=True):
        if module == r or module.startswith(r + "."):
            return r
    return module


def room_violations(g: Graph) -> list[str]:
    found = []
    for name in g.modules:
        mine = room(name)
        if mine not in ALLOWED:
            found.append(f"{name} is in no room (add a row to ALLOWED)")
            continue
        for kind, edges in (("imports", g.runtime), ("imports for typing", g.typing)):
            for target in sorted(edges[name]):
                theirs = room(target)
                if theirs != mine and theirs not in ALLOWED[mine]:
                    found.append(f"{name} {kind} {target}")
        if mine == "flowtide.workflows.language" and "temporalio" in g.modules[name].read_text(encoding="utf-8"):
            found.append(f"{name} mentions temporalio (the language room is pure)")
    return sorted(found)


def private_imports(g: Graph) -> list[str]:
    found = []
    for name in g.modules:
        package = name if g.modules[name].name == "__init__.py" else name.rpartition(".")[0]
        for target in sorted(g.runtime[name] | g.typing[name]):
            parent, _, last = target.rpartition(".")
            inside = package == parent or package.startswith(parent + ".")  # its own package or a subpackage
            if last.startswith("_") and not last.startswith("__") and not inside:
                found.append(f"{name} imports {target}, private to {parent}")
    return found


def _say(cycles: list[list[str]]) -> str:
    return "\n".join(" <-> ".join(c) for c in cycles)


def test_no_runtime_import_cycles() -> None:
    cycles = find_cycles(build().runtime)
    assert cycles == [], _say(cycles)


def test_no_import_cycles_with_typing_imports() -> None:
    g = build()
    both = {k: g.runtime[k] | g.typing[k] for k in g.modules}
    cycles = find_cycles(both)
    assert cycles == [], _say(cycles)


def test_rooms_depend_one_way() -> None:
    assert room_violations(build()) == []


def test_no_private_module_of_another_package() -> None:
    assert private_imports(build()) == []


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    (tmp_path / "flowtide").mkdir(exist_ok=True)
    (tmp_path / "flowtide" / "__init__.py").write_text("")
    return tmp_path


def test_the_checks_can_fail(tmp_path: Path) -> None:
    """Each check reports what it exists for: a cycle through a function-level import, a typing cycle, a wrong
    direction, a private module of another package."""
    root = _tree(tmp_path, {
        "client/__init__.py": "",
        "client/a.py": "def f():\n    from flowtide.client import b\n",
        "client/b.py": "from flowtide.client import a\n",
        "client/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from flowtide.client import d\n",
        "client/d.py": "from flowtide.client import c\n",
        "workflows/__init__.py": "",
        "workflows/language/__init__.py": "",
        "workflows/language/x.py": "from flowtide.workflows.engine import y\n",
        "workflows/engine/__init__.py": "",
        "workflows/engine/y.py": "from flowtide.activities import _z\n",
        "activities/__init__.py": "",
        "activities/_z.py": "",
    })
    g = build(root)
    assert find_cycles(g.runtime) == [["flowtide.client.a", "flowtide.client.b"]]
    assert ["flowtide.client.c", "flowtide.client.d"] in find_cycles(
        {k: g.runtime[k] | g.typing[k] for k in g.modules})
    assert "flowtide.workflows.language.x imports flowtide.workflows.engine.y" in room_violations(g)
    assert "flowtide.workflows.engine.y imports flowtide.activities._z" in room_violations(g)
    assert private_imports(g) == ["flowtide.workflows.engine.y imports flowtide.activities._z, private to "
                                  "flowtide.activities"]


MAX_MODULE_LINES = 400


def test_no_module_over_400_lines() -> None:
    """A module that long holds more than one concern: split it by concern (CONTRIBUTING.md)."""
    long = {name: n for name, path in build().modules.items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert long == {}, long
