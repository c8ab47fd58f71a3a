"""Start runs, wait for them, and turn Temporal's answer into the run record (docs/runs.md)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError, CancelledError, TerminatedError, TimeoutError

from flowtide.client.flowfiles import load_flow_file
from flowtide.worker.local import serves
from flowtide.workflows.contracts import RunFailure
from flowtide.workflows.errors import FlowValidationError, Problem
from flowtide.workflows.language import Flow, json_problem, json_safe
from flowtide.workflows.search_attributes import (
    FLOW_ID,
    FLOW_STATUS,
    FLOW_VERSION,
    PROJECT_ID,
    RERUN_OF,
    WORKFLOW_TYPE,
)

# how a run can end without a result: the CLI exits 1, the Python API raises RunFailed
TERMINAL_FAILURES = frozenset({"failed", "cancelled", "timed_out", "terminated"})


def new_workflow_id(flow_id: str) -> str:
    """Readable workflow ids: ``<flowId>-<16 hex>``.

    Workflow ids are one namespace for every project, and two projects may deploy the same flow id: 64 random
    bits keep a start from ever meeting another run's id (32 made it likely after about 100,000 runs of one
    flow id, and an idempotent start would then have answered with the other run)."""
    return f"{flow_id}-{uuid.uuid4().hex[:16]}"


def inline_sub_flows(wire: dict[str, Any], base_dir: Path, depth: int = 0) -> dict[str, Any]:
    """Replace ``core.sub-flow`` steps' ``flowFile`` by the loaded flow (workflows never read files)."""
    if depth > 8:
        raise FlowValidationError([Problem("", "sub-flows nest deeper than 8 levels")])

    def walk(steps: list[dict[str, Any]]) -> None:
        for s in steps:
            inp = s.get("input") or {}
            if s["kind"] == "core.sub-flow" and "flowFile" in inp and "flow" not in inp:
                path = base_dir / str(inp["flowFile"])
                child = load_flow_file(str(path)).to_wire()
                inp["flow"] = inline_sub_flows(child, path.parent, depth + 1)
            for block in (s.get("blocks") or {}).values():
                walk(block)

    walk(wire["steps"])
    return wire


@dataclass(frozen=True)
class RunAction:
    """What starting a run of a flow sends to Temporal, whoever starts it (the CLI, the API or a schedule)."""

    arg: dict[str, Any]
    search_attributes: TypedSearchAttributes
    memo: dict[str, Any]
    static_summary: str
    static_details: str
    execution_timeout: timedelta | None

    def options(self) -> dict[str, Any]:
        """Keyword arguments shared by ``Client.start_workflow`` and ``ScheduleActionStartWorkflow``."""
        return {"memo": self.memo, "static_summary": self.static_summary, "static_details": self.static_details,
                "execution_timeout": self.execution_timeout}


def check_value(value: Any, where: str) -> None:
    """Refuse (``FlowValidationError``, a ``VALIDATION_ERROR``) data that is not plain JSON before it enters a
    run: NaN, Infinity, an enormous integer, nesting past the limit (``language.json_problem``)."""
    problem = json_problem(value, where)
    if problem is not None:
        raise FlowValidationError([Problem(where, problem)], source=where)


def run_action(wire: dict[str, Any], payload: Any, *, reuse: dict[str, Any] | None = None,
               rerun_of: str | None = None, project_id: str | None = None,
               memo: dict[str, Any] | None = None) -> RunAction:
    """The workflow argument, search attributes (FlowId, FlowVersion, FlowStatus, ProjectId), memo and texts.

    ``project_id`` tags the run with the ``ProjectId`` search attribute (runs started by the service);
    ``memo`` adds entries to the run's memo.
    """
    check_value(payload, "$")
    attrs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(FLOW_ID, wire["id"]), SearchAttributePair(FLOW_VERSION, int(wire.get("version", 1))),
        SearchAttributePair(FLOW_STATUS, "running")]
    if rerun_of:
        attrs.append(SearchAttributePair(RERUN_OF, rerun_of))
    if project_id:
        attrs.append(SearchAttributePair(PROJECT_ID, project_id))
    options: dict[str, Any] = {}
    if reuse:
        options["reuse"] = reuse
    if rerun_of:
        options["rerunOf"] = rerun_of
    timeout = (wire.get("settings") or {}).get("timeout")
    return RunAction(
        arg={"flow": wire, "input": payload, "options": options},
        search_attributes=TypedSearchAttributes(attrs),
        memo={"flowId": wire["id"], "flowVersion": wire.get("version", 1), "rerunOf": rerun_of, **(memo or {})},
        static_summary=f"{wire.get('name') or wire['id']} (v{wire.get('version', 1)})"[:200],
        static_details=f"flow `{wire['id']}` version {wire.get('version', 1)}, "
                       f"{len(wire['steps'])} top-level steps" + (f", re-run of {rerun_of}" if rerun_of else ""),
        execution_timeout=timedelta(seconds=float(timeout)) if timeout else None)


async def start_run(client: Client, flow: Flow | dict[str, Any], payload: Any, *, task_queue: str,
                    workflow_id: str | None = None, reuse: dict[str, Any] | None = None,
                    rerun_of: str | None = None, project_id: str | None = None,
                    memo: dict[str, Any] | None = None, **start_options: Any) -> WorkflowHandle[Any, Any]:
    """Start one run of ``flow`` with ``payload``; return its handle.

    ``start_options`` go to ``Client.start_workflow`` as they are (the service passes
    ``id_conflict_policy`` / ``id_reuse_policy`` for idempotent starts).
    """
    wire = flow.to_wire() if isinstance(flow, Flow) else flow
    action = run_action(wire, payload, reuse=reuse, rerun_of=rerun_of, project_id=project_id, memo=memo)
    if "request_eager_start" not in start_options and serves(client, task_queue):
        start_options["request_eager_start"] = True  # a worker of this queue runs here (worker.local)
    return await client.start_workflow(
        WORKFLOW_TYPE, action.arg, id=workflow_id or new_workflow_id(wire["id"]), task_queue=task_queue,
        search_attributes=action.search_attributes, **action.options(), **start_options)


def run_error(record: dict[str, Any]) -> dict[str, Any] | None:
    """The error that ended a run: its run-level error, else the first failure nothing absorbed."""
    if record.get("error"):
        return dict(record["error"])
    for e in record.get("errors") or []:
        if e.get("severity") == "error" and not e.get("absorbed"):
            return dict(e)
    return None


def record_from_failure(err: WorkflowFailureError) -> dict[str, Any] | None:
    """The run record carried by a failed run's failure details, if any."""
    cause = err.cause
    ended = RunFailure.decode(cause.details) if isinstance(cause, ApplicationError) else None
    return dict(ended.run) if ended is not None and ended.run is not None else None


def closed_status(err: WorkflowFailureError) -> str:
    cause = err.cause
    if isinstance(cause, CancelledError):
        return "cancelled"
    if isinstance(cause, TimeoutError):
        return "timed_out"
    if isinstance(cause, TerminatedError):
        return "terminated"
    return "failed"


async def wait_record(handle: WorkflowHandle[Any, Any]) -> dict[str, Any]:
    """Wait for the run to close and return its run record."""
    try:
        return dict(json_safe(await handle.result()))
    except WorkflowFailureError as err:
        rec = record_from_failure(err)
        if rec is not None:
            return dict(json_safe(rec))
        from flowtide.client.inspect import fetch_record
        rec = await fetch_record(handle)
        rec["status"] = closed_status(err)
        return rec
