"""Kill -9 the worker the moment a long run continues as new; a new worker must carry the chain on, losing nothing.

Real processes: the session's Temporal dev server, the local demo service, and ``python -m flowtide.worker``
children (``tests.reliability.procs``). The flow is a poller cycle of HTTP calls that continues as new every
couple of rounds; each call names its round in an ``X-Call`` header, so the service's request log tells how
often each one reached it.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus

from flowtide.client.runs import start_run, wait_record
from flowtide.dev.demo_service import DemoService
from flowtide.dev.server import DevServer
from flowtide.workflows.language.dsl import parse_flow
from tests.reliability.procs import WorkerProcess

ROUNDS = 12


def poller(base: str) -> dict[str, Any]:
    return {"id": "long-poller", "settings": {"limits": {"continueAsNewEvents": 40}}, "steps": [
        {"id": "tick", "action": "core.set-variable", "parameters": {"n": "{{ vars.n | plus: 1 }}"}, "next": "call"},
        {"id": "call", "action": "core.http", "runLimit": -1, "timeout": 5,
         "retryPolicy": {"maxRetries": 3, "delayMs": 100},
         "parameters": {"url": base + "/ok", "headers": {"X-Call": "{{ $run.workflowId }}/{{ vars.n }}"}},
         "next": "pause"},
        {"id": "pause", "action": "core.delay", "parameters": {"seconds": 0.05},
         "condition": {"if": f"{{{{ vars.n }}}} < {ROUNDS}", "then": "tick", "else": "done"}},
        {"id": "done", "action": "core.return", "parameters": {"output": {
            "n": "{{ vars.n }}", "last": "{{ call.status }}", "run": "{{ $run.id }}"}}}]}


def calls(service: DemoService, workflow_id: str) -> Counter[str]:
    prefix = workflow_id + "/"
    return Counter(b["headers"]["x-call"].split("/", 1)[1] for b in list(service.bodies)
                   if b["headers"].get("x-call", "").startswith(prefix))


async def first_boundary(client: Any, workflow_id: str, first_run: str) -> None:
    """Return as soon as the first run of the chain has continued as new."""
    handle = client.get_workflow_handle(workflow_id, run_id=first_run)
    t0 = time.monotonic()
    while (await handle.describe()).status != WorkflowExecutionStatus.CONTINUED_AS_NEW:
        assert time.monotonic() - t0 < 30, "the run never continued as new"
        await asyncio.sleep(0.005)


async def test_kill_9_worker_at_the_continue_as_new_boundary(dev_server: DevServer, client: Any,
                                                             service: DemoService, task_queue: str,
                                                             tmp_path: Path) -> None:
    log = tmp_path / "workers.log"
    first = await asyncio.to_thread(WorkerProcess(dev_server.address, task_queue, log).start)
    try:
        handle = await start_run(client, parse_flow(poller(service.url), source="test"), {}, task_queue=task_queue)
        first_run = handle.first_execution_run_id
        assert first_run is not None
        await first_boundary(client, handle.id, first_run)
        await asyncio.to_thread(first.kill)  # the new run's first workflow task is in flight or not yet taken
        with await asyncio.to_thread(WorkerProcess(dev_server.address, task_queue, log).start):
            rec = await asyncio.wait_for(wait_record(handle), 60)
    finally:
        first.kill()
    assert rec["status"] == "completed", rec.get("errors")
    assert rec["output"] == {"n": ROUNDS, "last": 200, "run": first_run}
    assert rec["chain"]["runs"] > 2
    seen = calls(service, handle.id)
    assert set(seen) == {str(n) for n in range(1, ROUNDS + 1)}, seen
    assert sum(seen.values()) - ROUNDS <= 1, seen  # at most the call in flight at the kill reached it twice
    assert [s["stepId"] for s in rec["steps"]].count("call") == ROUNDS
    print(f"\nkilled worker {first.pid}; workflow tasks of the second run completed by "
          f"{await identities(client, handle.id, await next_run(client, handle.id, first_run))}")


async def next_run(client: Any, workflow_id: str, run_id: str) -> str:
    async for e in client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history_events():
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            return str(e.workflow_execution_continued_as_new_event_attributes.new_execution_run_id)
    raise AssertionError("no continue-as-new event")


async def identities(client: Any, workflow_id: str, run_id: str) -> list[str]:
    """Which workers completed the run's workflow tasks; and whether one timed out (the kill)."""
    found = []
    async for e in client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history_events():
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            found.append(e.workflow_task_completed_event_attributes.identity)
        elif e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
            found.append("timed out")
    return list(dict.fromkeys(found))
