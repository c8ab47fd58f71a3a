"""Warnings for template references that will read null at run time.

A step may read ``initial``, ``vars``, ``$errors``, ``$run``, ``secrets``, ``$item`` / ``$index`` (inside a
loop body) and the outputs of steps that *can have run before it*: in list style the earlier steps of its
list (and of the lists around it), in graph style the steps from which it can be reached. The steps of an
``if`` branch write into the same scope as the ``if`` itself; the steps of a loop body do not leak out of
the loop. A step's routing ``condition`` (evaluated after the step) may read the step itself.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from flowtide.workflows.errors import Problem
from flowtide.workflows.kinds import FOR_EACH
from flowtide.workflows.language import conditions, templates
from flowtide.workflows.language.dsl.models import edges, is_graph
from flowtide.workflows.language.templates import join_path
from flowtide.workflows.language.values import did_you_mean

if TYPE_CHECKING:
    from flowtide.workflows.language.dsl.models import Step, StepInfo

BUILTINS = frozenset({"initial", "vars", "$errors", "$run", "$item", "$index", "secrets"})
LOOP_NAMES = frozenset({"$item", "$index"})
REACH_BUDGET = 2_000_000  # node visits for graph reachability; beyond it references are not checked


def _owned(step: Step) -> set[str]:
    """Ids a step puts into its own scope: itself and the steps of its if-branches (not loop bodies)."""
    out = {step.id}
    if step.kind != FOR_EACH:
        for sub in step.blocks.values():
            for s in sub:
                out |= _owned(s)
    return out


def _template_roots(value: Any, path: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for where, text in templates.iter_strings(value, path):
        if "{{" in text:
            found.extend((where, root) for root in sorted(templates.references(text)))
    return found


def step_reads(step: Step, info: StepInfo) -> list[tuple[str, str, bool]]:
    """``(json_path, root_name, after_run)`` for every name a step reads."""
    ipath = info.key_path("input")
    reads: list[tuple[str, str, bool]] = []
    for key, value in step.input.items():
        where = join_path(ipath, key)
        if step.kind == "core.sub-flow" and key == "flow":
            continue  # an inline child flow reads its own scope
        if step.kind == "core.if" and key == "condition":
            reads.extend((where, root, False) for root in sorted(conditions.references(value)))
        else:
            reads.extend((w, root, False) for w, root in _template_roots(value, where))
    if step.skip_condition is not None:
        where = info.key_path("skipCondition")
        reads.extend((where, root, False) for root in sorted(conditions.references(step.skip_condition)))
    if step.condition is not None:
        where = join_path(info.key_path("condition"), "if")
        reads.extend((where, root, True) for root in sorted(conditions.references(step.condition.if_)))
    return reads


class _Reach:
    """Forward reachability inside one graph-style block, computed lazily and within a budget."""

    def __init__(self, graph_edges: dict[str, list[str]], budget: list[int]) -> None:
        self.edges = graph_edges
        self.cache: dict[str, set[str]] = {}
        self.budget = budget

    def from_(self, start: str) -> set[str] | None:
        if start not in self.cache:
            if self.budget[0] <= 0:
                return None
            seen: set[str] = set()
            queue = deque(self.edges.get(start, []))
            while queue:
                node = queue.popleft()
                if node not in seen:
                    seen.add(node)
                    queue.extend(self.edges.get(node, []))
            self.budget[0] -= len(seen) + 1
            self.cache[start] = seen
        return self.cache[start]


class _Checker:
    def __init__(self, info: dict[int, StepInfo], all_ids: set[str], problems: list[Problem]) -> None:
        self.info, self.all_ids, self.problems = info, all_ids, problems
        self.budget = [REACH_BUDGET]
        self.seen: set[tuple[str, str]] = set()

    def warn(self, path: str, message: str) -> None:
        if (path, message) not in self.seen:
            self.seen.add((path, message))
            self.problems.append(Problem(path, message, "warning"))

    def block(self, block: list[Step], visible: frozenset[str], in_loop: bool) -> None:
        graph = is_graph(block)
        owner = {x: s.id for s in block for x in _owned(s)}
        order = {s.id: i for i, s in enumerate(block)}
        reach = _Reach(edges(block), self.budget) if graph else None
        loop_body: set[str] = set()
        if reach is not None:
            for s in block:
                if s.kind == FOR_EACH and "steps" not in s.blocks:
                    for t in s.next or []:
                        loop_body |= {t} | (reach.from_(t) or set())

        def can_see(reader: Step, name: str, after: bool) -> bool | None:
            if name in visible:
                return True
            o = owner.get(name)
            if o is None:
                return False
            if after and o == reader.id:
                return True
            if reach is None:
                return order[o] < order[reader.id]
            seen = reach.from_(o)
            return None if seen is None else reader.id in seen

        for s in block:
            looping = in_loop or s.id in loop_body
            for where, name, after in step_reads(s, self.info[id(s)]):
                self.name(s, where, name, looping, can_see(s, name, after) if name in self.all_ids else False)
            if not s.blocks:
                continue
            inner = visible | {x for x in owner if can_see(s, x, False)}
            for sub in s.blocks.values():
                self.block(sub, frozenset(inner), looping or s.kind == FOR_EACH)

    def name(self, step: Step, where: str, name: str, in_loop: bool, visible: bool | None) -> None:
        if name in LOOP_NAMES:
            if not in_loop:
                self.warn(where, f"'{name}' is only set inside a for-each loop body; here it is null")
        elif name in BUILTINS:
            return
        elif name not in self.all_ids:
            self.warn(where, f"'{name}' is neither a step id nor a built-in name (initial, vars, $errors, $run, "
                             f"$item, $index){did_you_mean(name, sorted(self.all_ids | BUILTINS))}; it reads null")
        elif visible is False:
            self.warn(where, f"step '{step.id}' reads step '{name}', which cannot have run before it (it comes "
                             "later, is in another branch or inside a loop body); the value will be null")


def check_references(steps: list[Step], info: dict[int, StepInfo], all_ids: set[str],
                     problems: list[Problem]) -> None:
    """Append a warning for every reference that will read null (see the module docstring)."""
    _Checker(info, all_ids, problems).block(steps, frozenset(), False)
