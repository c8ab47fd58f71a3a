"""A signal sent to the run reaches the step waiting for it wherever it is (a sub-flow, a batched loop's child
run), and a run whose child waits is found by ``runs list --status paused``."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flowtide.client.listing import list_runs
from flowtide.client.replay import replay_history
from flowtide.client.runs import start_run, wait_record
from flowtide.worker.app import build_worker
from flowtide.workflows.language.dsl import parse_flow
from tests.support.cli import until

WAIT = {"stepId": "wait", "stepType": "core.wait-for-signal", "input": {"signal": "go", "timeout": 60}}


@pytest.mark.usefixtures("worker")
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


@pytest.mark.usefixtures("worker")
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


async def test_a_signal_relayed_to_a_child_that_just_closed_stays_with_the_parent(client: Any, task_queue: str) -> None:
    """The child closed but the parent has not yet seen it: the SDK applies the signal before the child's close in
    one activation, so the parent forwards it to a run that is gone. That must not fail the parent."""
    flow = parse_flow({"id": "relay-closed", "steps": [
        {"stepId": "inner", "stepType": "core.sub-flow", "continueOnError": True,
         "input": {"flow": {"id": "child", "steps": [WAIT]}}},
        {"stepId": "later", "stepType": "core.wait-for-signal", "input": {"signal": "x", "timeout": 60}},
        {"stepId": "done", "stepType": "core.return", "input": {"output": "{{ later.data }}"}}]}, source="test")
    async with build_worker(client, task_queue, graceful_shutdown_s=1, sandbox=True):
        handle = await start_run(client, flow, {}, task_queue=task_queue)

        async def child_waits() -> bool:
            return (await handle.query("record"))["status"] == "paused"

        assert await until(child_waits, timeout=15)
    # no worker now: the child's close and the signal reach the parent in one workflow task
    child = client.get_workflow_handle(f"{handle.id}-inner")
    await child.terminate("gone before the parent knew")
    await handle.signal("x", {"n": 1})
    async with build_worker(client, task_queue, graceful_shutdown_s=1, sandbox=True):
        record = await asyncio.wait_for(wait_record(handle), 40)
    assert record["status"] == "completed_with_errors", record["errors"]  # the sub-flow's error, absorbed
    assert record["output"] == {"n": 1}
    inner = next(s for s in record["steps"] if s["stepId"] == "inner")
    assert inner["status"] == "failed" and "terminated" in str(inner["error"]).lower(), inner
    assert (await replay_history(await handle.fetch_history())).ok  # the patched path replays as it ran
