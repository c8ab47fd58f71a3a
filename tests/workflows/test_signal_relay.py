"""A signal sent to the run reaches the step waiting for it wherever it is (a sub-flow, a batched loop's child
run), and a run whose child waits is found by ``runs list --status paused``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flowtide.client.listing import list_runs
from flowtide.client.runs import start_run, wait_record
from flowtide.workflows.language.dsl import parse_flow
from tests.support.cli import until

pytestmark = pytest.mark.usefixtures("worker")
WAIT = {"stepId": "wait", "stepType": "core.wait-for-signal", "input": {"signal": "go", "timeout": 60}}


async def test_a_signal_reaches_a_waiting_sub_flow_and_the_parent_shows_paused(client: Any, task_queue: str) -> None:
    flow = parse_flow({"id": "relay-sub", "steps": [
        {"stepId": "inner", "stepType": "core.sub-flow", "input": {"flow": {"id": "child", "steps": [
            WAIT, {"stepId": "out", "stepType": "core.return", "input": {"output": "{{ wait.data }}"}}]}}},
        {"stepId": "done", "stepType": "core.return", "input": {"output": "{{ inner.output }}"}}]}, source="test")
    handle = await start_run(client, flow, {}, task_queue=task_queue)

    async def paused() -> bool:
        return any(r.workflow_id == handle.id for r in await list_runs(client, status="paused", flow="relay-sub"))

    assert await until(paused, timeout=15), "the parent of a waiting sub-flow is not listed as paused"
    assert (await handle.query("record"))["status"] == "paused"
    await handle.signal("go", {"approved": True})
    record = await asyncio.wait_for(wait_record(handle), 20)
    assert record["status"] == "completed" and record["output"] == {"approved": True}

    async def running_again() -> bool:
        return not await paused()

    assert await until(running_again, timeout=15)


async def test_a_signal_reaches_the_batches_of_a_loop(client: Any, task_queue: str) -> None:
    flow = parse_flow({"id": "relay-loop", "settings": {"limits": {"loopBatchSize": 1}}, "steps": [
        {"stepId": "loop", "stepType": "core.for-each", "input": {"items": 2, "steps": [WAIT]}}]}, source="test")
    handle = await start_run(client, flow, {}, task_queue=task_queue)
    done = asyncio.ensure_future(wait_record(handle))
    sent = 0
    while not done.done() and sent < 40:
        await asyncio.sleep(0.5)
        if (await handle.query("record"))["status"] == "paused":
            await handle.signal("go", sent)
            sent += 1
    record = await asyncio.wait_for(done, 20)
    assert record["status"] == "completed", record["errors"]
    assert record["steps"][0]["output"]["succeeded"] == 2
    assert record["loops"][0]["batched"] is True
