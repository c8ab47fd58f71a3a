"""A worker asked to stop (SIGTERM, Ctrl-C in `flowtide run`) finishes the steps it has in flight and starts no
new local step: a flow of local GETs does not keep a stopping worker busy until the flow ends. The run goes
on, with the same record, on the next worker (docs/operations.md, "Shutdown and crashes")."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from temporalio.client import WorkflowExecutionStatus

from flowtide.client.history import record_from_events
from flowtide.client.replay import replay_history
from flowtide.client.runs import start_run, wait_record
from flowtide.worker.app import build_worker
from flowtide.workflows.language.dsl import parse_flow
from tests.support.flows import step
from tests.support.steps import http


async def in_flight(service: Any, before: int) -> None:
    """Until the demo service has taken one more call of ``/slow`` than ``before``."""
    for _ in range(200):
        if service.calls["/slow"] > before:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the slow step never started")


async def test_a_stopping_worker_starts_no_new_local_step_and_the_next_worker_goes_on(client: Any,
                                                                                       service: Any) -> None:
    tq = f"drain-{uuid.uuid4().hex[:8]}"
    later = [f"c{i}-{tq}" for i in range(5)]  # the demo service is the session's: paths of this test only
    flow = parse_flow({"id": "drain", "steps": [
        http("slow", service.url + "/slow?ms=1500"),
        *[http(f"c{i}", f"{service.url}/customers/{s}") for i, s in enumerate(later[:-1])],
        http("last", f"{service.url}/customers/{later[-1]}"),
        {"stepId": "done", "stepType": "core.set-variable", "input": {"ids": "{{ last.output.body.id }}"}}]})
    slow = service.calls["/slow"]  # the demo service is the session's: count from here
    async with build_worker(client, tq, graceful_shutdown_s=10, sandbox=True):  # the GET in flight may finish
        handle = await start_run(client, flow, {}, task_queue=tq)
        await in_flight(service, slow)
        asked = time.monotonic()
    stopped_in = time.monotonic() - asked
    assert service.calls["/slow"] == slow + 1
    assert not any(service.calls[f"/customers/{s}"] for s in later), dict(service.calls)  # none started
    assert stopped_in < 10, stopped_in  # the GET in flight (1.5 s), not the flow
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    waiting = await record_from_events(await handle.fetch_history(), client.data_converter, status="running")
    assert [(s["stepId"], s["status"], s["error"]) for s in waiting["steps"]] == [
        ("slow", "completed", None), ("c0", "running", None)]  # handed back: neither failed nor an attempt

    async with build_worker(client, tq, graceful_shutdown_s=1, sandbox=True):
        rec = await wait_record(handle)
    assert rec["status"] == "completed", rec["errors"]
    assert rec["errors"] == []
    steps = ["slow", "c0", "c1", "c2", "c3", "last"]
    assert [step(rec, s)["attempts"] for s in steps] == [1] * 6  # a refused start is no attempt
    assert step(rec, "done")["output"] == {"ids": later[-1]}
    assert [service.calls[f"/customers/{s}"] for s in later] == [1] * 5
    assert service.calls["/slow"] == slow + 1  # finished on the first worker: not repeated
    history = await handle.fetch_history()
    report = await replay_history(history)
    assert report.ok, report.explanation
    rebuilt = await record_from_events(history, client.data_converter, status="completed")
    assert [(s["stepId"], s["status"], s["attempts"]) for s in rebuilt["steps"]] == [(s, "completed", 1) for s in steps]


async def test_a_local_step_that_outlives_the_grace_starts_again_on_the_next_worker(client: Any,
                                                                                     service: Any) -> None:
    tq = f"drain-{uuid.uuid4().hex[:8]}"
    after = f"/customers/after-{tq}"
    flow = parse_flow({"id": "drain-grace", "steps": [http("slow", service.url + "/slow?ms=8000", timeout=20),
                                                      http("after", service.url + after)]})
    slow = service.calls["/slow"]
    async with build_worker(client, tq, graceful_shutdown_s=1, sandbox=True):
        handle = await start_run(client, flow, {}, task_queue=tq)
        await in_flight(service, slow)
        asked = time.monotonic()
    stopped_in = time.monotonic() - asked
    assert stopped_in < 6, stopped_in  # the grace (1 s), not the rest of the 8 s call
    assert service.calls[after] == 0
    async with build_worker(client, tq, graceful_shutdown_s=1, sandbox=True):
        rec = await wait_record(handle)
    assert rec["status"] == "completed", rec["errors"]
    assert service.calls["/slow"] == slow + 2  # abandoned with the first worker, repeated by the second
    assert (step(rec, "slow")["attempts"], step(rec, "slow")["output"]["body"]) == (1, {"ok": True, "sleptMs": 8000})
    assert (await replay_history(await handle.fetch_history())).ok
