"""``flowtide rerun``: plan and start a new run of a recorded run's flow revision and input.

The flow revision and the input come from the old run's ``WORKFLOW_EXECUTION_STARTED`` event (exactly what
it ran, whatever the files say now). ``--from-failed`` reuses the recorded outputs of the steps that
completed before the restart point (the first failed step; for a cancelled or timed-out run, the first
step that did not finish): the new run gets ``options.reuse = {stepId: {"output", "meta"}}`` and the
interpreter puts those outputs in place without executing the steps, so their side effects do not repeat.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from flowtide.client.rerun_items import failed_items_reuse
from flowtide.client.reuse import RerunRefused, restart_index, reusable
from flowtide.workflows.engine import ITEMS_KEY
from flowtide.workflows.errors import FlowValidationError, Problem
from flowtide.workflows.kinds import KINDS
from flowtide.workflows.language import safe_validator, schema_errors

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class PlanStep:
    """One step of the flow and what the new run does with it."""

    step_id: str
    title: str
    kind: str
    depth: int
    action: str  # reuse | run again | run | inside reused step
    side_effect: str | None = None


@dataclass
class RerunPlan:
    """What ``rerun`` starts: the flow, the input, the reused outputs, and notes for the user."""

    flow: dict[str, Any]
    payload: Any
    reuse: dict[str, Any]
    steps: list[PlanStep] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    restart_at: str | None = None


def walk(steps: list[dict[str, Any]], depth: int = 0) -> list[tuple[dict[str, Any], int]]:
    """Every step of a wire flow with its nesting depth, in document order."""
    out: list[tuple[dict[str, Any], int]] = []
    for s in steps:
        out.append((s, depth))
        for block in (s.get("blocks") or {}).values():
            out += walk(block, depth + 1)
    return out


def check_against(reuse: dict[str, Any], old: dict[str, Any], new: dict[str, Any], notes: list[str]) -> None:
    """Drop the reused outputs that no longer fit the fixed revision ``new``; say why in ``notes``."""
    before = {s["id"]: s for s, _ in walk(old.get("steps") or [])}
    after = {s["id"]: s for s, _ in walk(new.get("steps") or [])}
    for sid in list(reuse):
        step, was = after.get(sid.removesuffix(ITEMS_KEY)), before.get(sid.removesuffix(ITEMS_KEY))
        reason = None
        if step is None:
            reason = "is not in the new flow"
        elif was is not None and step["kind"] != was["kind"]:
            reason = f"changed kind ({was['kind']} -> {step['kind']})"
        elif was is not None and _canon(step.get("input")) != _canon(was.get("input")):
            reason = "has a changed input, so its recorded output may no longer fit: it runs again"
        if reason:
            del reuse[sid]
            notes.append(f"step '{sid}' {reason}")


def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def side_effect(step: dict[str, Any], recorded_input: Any = None) -> str | None:
    """Why running ``step`` again changes the outside world, or None."""
    kind = step["kind"]
    if kind == "core.http":
        inp = recorded_input if isinstance(recorded_input, dict) else step.get("input") or {}
        method = str(inp.get("method") or "GET").strip().upper()
        if "{{" in method:
            return "HTTP method decided at run time"
        return None if method in SAFE_METHODS else f"HTTP {method}"
    info = KINDS.get(kind)
    return f"{kind} (writes or sends)" if info is not None and info.side_effects else None


def plan_steps(flow: dict[str, Any], record: dict[str, Any], reuse: dict[str, Any]) -> list[PlanStep]:
    """The flow's steps with what the new run does with each."""
    ran = {s["stepId"]: s.get("input") for s in record.get("steps") or []}
    out: list[PlanStep] = []
    covered_below: int | None = None
    for step, depth in walk(flow.get("steps") or []):
        if covered_below is not None and depth > covered_below:
            out.append(PlanStep(step["id"], step.get("title") or step["id"], step["kind"], depth, "inside reused step"))
            continue
        covered_below = None
        if step["id"] in reuse:
            covered_below = depth if step.get("blocks") else None
            out.append(PlanStep(step["id"], step.get("title") or step["id"], step["kind"], depth, "reuse"))
            continue
        action = "run again" if step["id"] in ran else "run"
        out.append(PlanStep(step["id"], step.get("title") or step["id"], step["kind"], depth, action,
                            side_effect(step, ran.get(step["id"]))))
    return out


def payload_problems(schema: dict[str, Any] | None, payload: Any) -> list[Problem]:
    """Mismatches of ``payload`` against the flow's input JSON Schema."""
    if not schema:
        return []
    try:  # the engine's validator: RE2 patterns (a backtracking one cannot stall the service), no remote $ref
        errors = schema_errors(safe_validator(schema, check=False), payload, 100)
    except Exception as exc:  # a schema the run would refuse too (an unsupported pattern, a remote $ref)
        return [Problem("$", f"the flow's input schema cannot be used: {str(exc)[:200]}")]
    return [Problem("$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path), e.message)
            for e in errors]


def build_plan(params: dict[str, Any], record: dict[str, Any], *, from_failed: bool,
               new_flow: dict[str, Any] | None = None, new_input: Any = None, input_given: bool = False,
               failed_items: bool = False) -> RerunPlan:
    """The rerun of a run started with ``params`` whose run record is ``record``.

    Raises:
        RerunRefused: ``--from-failed`` with nothing to start from, or a fixed flow of another flow id.
        FlowValidationError: the edited input does not match the flow's input schema.
    """
    old = dict(params.get("flow") or {})
    flow = new_flow or old
    if new_flow is not None and new_flow.get("id") != old.get("id"):
        raise RerunRefused(f"--flow is flow '{new_flow.get('id')}' but the run is of flow '{old.get('id')}'")
    payload = new_input if input_given else params.get("input")
    problems = payload_problems(flow.get("inputSchema"), payload)
    if problems:
        raise FlowValidationError(problems, source="input")
    notes: list[str] = []
    idx: int | None
    if failed_items:
        reuse, idx = failed_items_reuse(record, notes)
    else:
        reuse = reusable(record, notes) if from_failed else {}
        idx = restart_index(record) if from_failed else None
    if new_flow is not None:
        check_against(reuse, old, new_flow, notes)
    if input_given and reuse:
        notes.append("the input changed: the reused outputs were computed from the old input")
    rows = record.get("steps") or []
    plan = RerunPlan(flow=flow, payload=payload, reuse=reuse, notes=notes,
                     restart_at=rows[idx]["stepId"] if idx is not None else None)
    plan.steps = plan_steps(flow, record, reuse)
    return plan


async def rerun_failed_items(client: Any, run: str, *, task_queue: str | None = None) -> Any:
    """Python API: start a failed-items re-run of ``run`` (id, prefix or workflow id); return its handle.

    Raises:
        RerunRefused: the run has nothing to run again.
        RunNotFound: ``run`` matches no run (or several).
    """
    from flowtide.client.history import start_info
    from flowtide.client.inspect import inspect_run
    from flowtide.client.resolve import resolve_run
    from flowtide.client.runs import start_run

    handle = await resolve_run(client, run)
    view = await inspect_run(handle, client)
    old = client.get_workflow_handle(handle.id, run_id=view.record.get("runId") or handle.run_id)
    info = await start_info(await old.fetch_history(), client.data_converter)
    plan = build_plan(info.params, view.record, from_failed=True, failed_items=True)
    return await start_run(client, plan.flow, plan.payload, task_queue=task_queue or info.task_queue,
                           reuse=plan.reuse or None, rerun_of=old.run_id)
