"""Helpers to run flow documents on the test server and get their run records."""

from __future__ import annotations

from typing import Any

from temporalio.api.enums.v1 import EventType

from flowtide.client.runs import start_run, wait_record
from flowtide.workflows.language.dsl import parse_flow


async def run_flow(client: Any, task_queue: str, doc: Any, payload: Any = None, **kw: Any) -> dict[str, Any]:
    """Parse ``doc`` (either spelling), run it to the end, return the run record."""
    flow = parse_flow(doc, source="test")
    handle = await start_run(client, flow, payload if payload is not None else {}, task_queue=task_queue, **kw)
    return await wait_record(handle)


def step(rec: dict[str, Any], step_id: str, iteration: int | None = None) -> dict[str, Any]:
    """The last record of ``step_id`` (in ``iteration``) in a run record."""
    rows = [s for s in rec["steps"] if s["stepId"] == step_id and s.get("iteration") == iteration]
    assert rows, f"no step {step_id} in {[s['stepId'] for s in rec['steps']]}"
    return rows[-1]


async def histories(client: Any, handle: Any) -> dict[str, list[int]]:
    """Event counts of every run under ``handle`` (children, grandchildren, continued-as-new runs), by
    workflow id: one count per run of that id, in the order found."""
    out: dict[str, list[int]] = {}
    todo = [handle]
    while todo:
        h = todo.pop()
        events = [e async for e in h.fetch_history_events()]
        out.setdefault(h.id, []).append(len(events))
        for e in events:
            if e.event_type == EventType.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED:
                ex = e.child_workflow_execution_started_event_attributes.workflow_execution
                todo.append(client.get_workflow_handle(ex.workflow_id, run_id=ex.run_id))
            elif e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
                new_run = e.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
                todo.append(client.get_workflow_handle(h.id, run_id=new_run))
    return out


def any_of_bomb(levels: int = 40) -> dict[str, Any]:
    """A short JSON Schema that takes 2**levels checks: every level tries both branches, and the last is false."""
    defs: dict[str, Any] = {f"a{i}": {"anyOf": [{"$ref": f"#/$defs/a{i + 1}"}] * 2} for i in range(levels)}
    return {"$ref": "#/$defs/a0", "$defs": {**defs, f"a{levels}": False}}
