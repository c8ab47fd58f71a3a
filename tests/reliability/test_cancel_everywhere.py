"""Cancel means cancel: wherever a run is when it is cancelled, it ends CANCELLED, its children are cancelled,
and nothing after it runs, even with ``continueOnError`` on the step that was interrupted."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus

from flowtide.client.runs import start_run, wait_record
from flowtide.workflows.language.dsl import parse_flow

pytestmark = pytest.mark.usefixtures("worker")

DELAY = {"stepId": "nap", "stepType": "core.delay", "input": {"seconds": 600}}
CASES: dict[str, tuple[dict[str, Any], list[str]]] = {
    # the interrupted step, and the ids of the child runs it starts (relative to the run's id)
    "sub-flow": ({"stepId": "inner", "stepType": "core.sub-flow", "continueOnError": True,
                  "input": {"flow": {"id": "child", "steps": [DELAY]}}}, ["-inner"]),
    "batched-loop": ({"stepId": "loop", "stepType": "core.for-each", "continueOnError": True,
                      "input": {"items": 6, "concurrency": 2, "steps": [DELAY]}}, ["-loop-loop", "-loop-b0"]),
    "inline-loop": ({"stepId": "loop", "stepType": "core.for-each", "continueOnError": True,
                     "input": {"items": 3, "concurrency": 3, "steps": [DELAY]}}, []),
    "retry-in-flight": ({"stepId": "call", "stepType": "core.http", "continueOnError": True,
                         "retryPolicy": {"maxRetries": 5, "delayMs": 60_000},
                         "input": {"url": "{{ initial.base }}/status/503"}}, []),
    "signal-wait": ({"stepId": "wait", "stepType": "core.wait-for-signal", "continueOnError": True,
                     "input": {"signal": "never", "timeout": 600}}, []),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_cancel_ends_the_run_cancelled_and_runs_nothing_after(client: Any, task_queue: str, service: Any,
                                                                     case: str) -> None:
    step, children = CASES[case]
    settings = {"limits": {"loopBatchSize": 2}} if case == "batched-loop" else {}
    flow = parse_flow({"id": f"cancel-{case}", "settings": settings, "steps": [
        step, {"stepId": "after", "stepType": "core.set-variable", "input": {"ran": True}}]}, source="test")
    handle = await start_run(client, flow, {"base": service.url}, task_queue=task_queue)
    await _until_started(client, handle, [handle.id + c for c in children], case)
    await handle.cancel()
    record = await asyncio.wait_for(wait_record(handle), 20)
    assert record["status"] == "cancelled", record.get("errors")
    assert not [s for s in record["steps"] if s["stepId"] == "after"]
    assert not [e for e in record["errors"] if e.get("severity") == "error"], record["errors"]
    for suffix in children:
        desc = await client.get_workflow_handle(handle.id + suffix).describe()
        assert desc.status == WorkflowExecutionStatus.CANCELED, (suffix, desc.status)


async def _until_started(client: Any, handle: Any, child_ids: list[str], case: str) -> None:
    """Wait until the run (and each child) is inside the step that will be interrupted."""
    for _ in range(200):
        desc = await handle.describe()
        ready = desc.raw_description.pending_activities if case == "retry-in-flight" else True
        if ready and all([await _running(client, c) for c in child_ids]):
            rec = await handle.query("record")
            if rec["steps"] and (case != "retry-in-flight" or
                                 desc.raw_description.pending_activities[0].attempt >= 2):
                await asyncio.sleep(0.3)
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{case}: the run never reached its step")


async def _running(client: Any, workflow_id: str) -> bool:
    try:
        return (await client.get_workflow_handle(workflow_id).describe()).status == WorkflowExecutionStatus.RUNNING
    except Exception:
        return False
