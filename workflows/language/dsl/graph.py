"""Checks across steps: routing targets, unreachable steps, ``next`` cycles without a ``runLimit``,
``runLimit`` / retry conflicts, and template references to steps that cannot have run yet.

Every list of steps (the flow's ``steps``, each ``then`` / ``else`` / ``steps`` block) is checked on its own,
as the interpreter runs it: in list order, or as a graph from its first step when any step of the list has
``next`` or ``condition``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from flowtide.workflows.errors import Problem
from flowtide.workflows.language.dsl.models import Settings, Step, StepInfo, edges, is_graph
from flowtide.workflows.language.dsl.refs import check_references
from flowtide.workflows.language.templates import join_path
from flowtide.workflows.language.values import did_you_mean

WORDS = ("stop-workflow", "continue-workflow")


@dataclass
class GraphChecker:
    """Runs the cross-step checks of one flow and appends what it finds to ``problems``."""

    info: dict[int, StepInfo]
    settings: Settings | None
    problems: list[Problem]
    all_ids: set[str] = field(default_factory=set)

    def warn(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message, "warning"))

    def run(self, steps: list[Step]) -> None:
        """Check every block of the flow, then the references."""
        self.all_ids = {x.id for s in steps for x in s.walk()}
        if self.settings and self.settings.limits.max_step_executions < 0:
            self.warn("settings.limits.maxStepExecutions",
                      "maxStepExecutions -1: nothing stops a run that keeps looping; the run continues as new "
                      "and runs until it ends, is cancelled or times out (settings.timeout). Keep it for "
                      "deliberate pollers that end on a condition; a job that repeats on a fixed rhythm is "
                      "better a schedule (see docs/flow-language.md, long-running flows)")
        self._block(steps)
        check_references(steps, self.info, self.all_ids, self.problems)

    def _block(self, block: list[Step]) -> None:
        ids = {s.id for s in block}
        for s in block:
            self._targets(s, ids)
            self._run_limit(s)
            self._retry_product(s)
            self._retry_count(s)
            for sub in s.blocks.values():
                self._block(sub)
        graph_edges = edges(block)
        if is_graph(block):
            self._reachability(block, graph_edges)
        self._cycles(block, graph_edges)

    def _targets(self, s: Step, ids: set[str]) -> None:
        info = self.info[id(s)]
        nexts = s.next or []
        for i, target in enumerate(nexts):
            where = info.key_path("next") if len(nexts) == 1 else join_path(info.key_path("next"), i)
            self._target(target, where, ids, words=False)
        if s.condition is not None:
            for part, targets in (("then", s.condition.then), ("else", s.condition.else_)):
                base = join_path(info.key_path("condition"), part)
                for i, target in enumerate(targets):
                    self._target(target, base if len(targets) == 1 else join_path(base, i), ids, words=True)
        if s.on_error is not None and s.on_error.next:
            self._target(s.on_error.next, join_path(info.key_path("onError"), "next"), ids, words=False)

    def _target(self, target: str, where: str, ids: set[str], *, words: bool) -> None:
        if target in ids or (words and target in WORDS):
            return
        if target in WORDS:
            msg = f"'{target}' is only allowed in condition.then / condition.else; here name a step id"
        elif target in self.all_ids:
            msg = (f"'{target}' is in another list of steps: routing can only name a step of the same list "
                   "(the steps of a then/else/steps block form their own list)")
        else:
            msg = f"'{target}' names no step{did_you_mean(target, sorted(ids) + (list(WORDS) if words else []))}"
        self.problems.append(Problem(where, msg))

    def _reachability(self, block: list[Step], graph_edges: dict[str, list[str]]) -> None:
        seen = {block[0].id}
        queue = deque([block[0].id])
        while queue:
            for t in graph_edges.get(queue.popleft(), []):
                if t not in seen:
                    seen.add(t)
                    queue.append(t)
        for s in block:
            if s.id not in seen:
                self.warn(self.info[id(s)].path, f"step '{s.id}' is never reached: in graph style (a step of this "
                          "list has 'next' or 'condition') only the first step and the steps named by next, "
                          "condition or onError.next run")

    def _cycles(self, block: list[Step], graph_edges: dict[str, list[str]]) -> None:
        by_id = {s.id: s for s in block}
        if len(by_id) < len(block):
            return  # duplicate ids (already an error) would show as a cycle that the flow does not have
        for members in strongly_connected(list(by_id), graph_edges):
            looped = len(members) > 1 or members[0] in graph_edges.get(members[0], [])
            if not looped or any(_limited(by_id[m]) for m in members):
                continue
            order = [s.id for s in block if s.id in members]
            limit = self.settings.limits.max_step_executions if self.settings else 10_000
            stops = (f"stops only at settings.limits.maxStepExecutions ({limit})" if limit > 0 else
                     "never stops (maxStepExecutions is -1): make sure a condition ends it")
            self.warn(self.info[id(by_id[order[0]])].path,
                      f"steps {' -> '.join([*order, order[0]])} form a cycle and none of them has a runLimit: "
                      f"a run that keeps looping {stops}")

    def _retry_count(self, s: Step) -> None:
        if s.on_error is not None and s.on_error.action in ("retry-step", "retry-workflow") \
                and s.on_error.max_retries is None:
            self.warn(join_path(self.info[id(s)].key_path("onError"), "action"),
                      f"onError.action {s.on_error.action} without maxRetries never retries; set maxRetries")

    def _retry_product(self, s: Step) -> None:
        policy = s.retry_policy
        if policy is not None and policy.max_delay_ms is not None and policy.delay_ms is not None \
                and policy.max_delay_ms < policy.delay_ms:
            self.warn(join_path(self.info[id(s)].key_path("retryPolicy"), "maxDelayMs"),
                      f"maxDelayMs {policy.max_delay_ms:g} is below delayMs {policy.delay_ms:g}: the first retry "
                      f"still waits {policy.delay_ms:g} ms (maxDelayMs only caps later delays)")
        on_error = s.on_error or (self.settings.on_error if self.settings else None)
        if not on_error or not on_error.max_retries or on_error.action == "retry-workflow":
            return
        if s.retry_policy is None or not s.retry_policy.max_retries:
            return  # onError.maxRetries is the whole budget: 1 + maxRetries calls
        calls = (on_error.max_retries + 1) * (s.retry_policy.max_retries + 1)
        self.warn(self.info[id(s)].key_path("onError"),
                  f"step '{s.id}' has onError.maxRetries {on_error.max_retries} and retryPolicy.maxRetries "
                  f"{s.retry_policy.max_retries}: each of its {on_error.max_retries + 1} runs is retried by "
                  f"Temporal, up to {calls} calls in all; drop one of them for a single budget")

    def _run_limit(self, s: Step) -> None:
        limit = s.run_limit
        if limit is None or limit < 0:
            return
        on_error = s.on_error or (self.settings.on_error if self.settings else None)
        # onError.maxRetries re-runs the step for every action but retry-workflow (which restarts the run)
        step_retries = (on_error.max_retries or 0) if on_error and on_error.action != "retry-workflow" else 0
        policy = s.retry_policy if s.retry_policy and s.retry_policy.max_retries is not None else (
            self.settings.retry_policy if self.settings else None)
        policy_retries = policy.max_retries or 0 if policy else 0
        retries = max(step_retries, policy_retries)
        if retries and limit < retries + 1:
            self.warn(self.info[id(s)].key_path("runLimit"),
                      f"step '{s.id}' will not retry as configured: runLimit {limit} is lower than maxRetries + 1 "
                      f"= {retries + 1}, so after {limit} run(s) it fails with \"step '{s.id}' has reached its "
                      f"run limit\"; set runLimit to {retries + 1} or -1")


def _limited(step: Step) -> bool:
    limit = step.run_limit
    return limit is not None and limit >= 0


def strongly_connected(nodes: list[str], graph_edges: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit on long chains)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    for root in nodes:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            succ = graph_edges.get(node, [])
            if i < len(succ):
                work.append((node, i + 1))
                nxt = succ[i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                comp = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    comp.append(top)
                    if top == node:
                        break
                out.append(comp)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return out
