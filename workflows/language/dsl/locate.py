"""Where a problem's JSON path is in the document's text: its line and column (1-based), for editors and
people. Pure (the text is already in hand); a path that cannot be followed to the end points at the deepest
part found (a missing key: the object that lacks it).

    locate([Problem("steps[0].stepType", "unknown step kind")], text)  # -> the same problems, with line/column
"""

from __future__ import annotations

import re
from dataclasses import replace

import yaml

from flowtide.workflows.errors import Problem
from flowtide.workflows.language.dsl.raw import FlowLoader

_TOKEN = re.compile(r"\[(\d+)\]|\.?([^.\[\]]+)")


def locate(problems: list[Problem], text: str) -> list[Problem]:
    """``problems`` with ``line`` and ``column`` set where their path leads in ``text`` (YAML or JSON)."""
    if not any(p.path and not p.path.startswith("$") for p in problems):
        return problems
    try:
        root = yaml.compose(text, Loader=FlowLoader)  # JSON is YAML too: one walk for both
    except (yaml.YAMLError, RecursionError, ValueError):
        return problems
    if root is None:
        return problems
    out = []
    for p in problems:
        mark = _mark(root, p.path) if p.path and not p.path.startswith("$") else None
        out.append(replace(p, line=mark.line + 1, column=mark.column + 1) if mark is not None else p)
    return out


def _mark(root: yaml.Node, path: str) -> yaml.Mark | None:
    node, mark = root, root.start_mark
    tokens = [(int(i) if i else None, key) for i, key in _TOKEN.findall(path)]
    if isinstance(root, yaml.SequenceNode) and tokens and tokens[0][1] == "steps":
        tokens = tokens[1:]  # a bare list of steps: the path still says steps[...]
    for index, key in tokens:
        if index is not None and isinstance(node, yaml.SequenceNode) and index < len(node.value):
            node = node.value[index]
            mark = node.start_mark
        elif key is not None and isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)
            if found is None:
                break
            mark, node = found[0].start_mark, found[1]
        else:
            break
    return mark
