"""Eager starts: a run started where a worker of its task queue runs (same process, same connection) gets its
first workflow task in the start's answer; any other start is a plain one (``worker.local``)."""

from __future__ import annotations

from typing import Any

import flowtide
from flowtide.client.connect import connect
from flowtide.client.runs import start_run, wait_record
from flowtide.worker.app import build_worker
from flowtide.worker.local import serves
from flowtide.workflows.language.dsl import parse_flow

FLOW = parse_flow({"id": "eager", "steps": [{"stepId": "set", "stepType": "core.set-variable", "input": {"x": 1}}]})


async def accepted(handle: Any) -> bool:
    """What the server recorded: whether the run's first workflow task went out in the start's answer."""
    history = await handle.fetch_history()
    return bool(history.events[0].workflow_execution_started_event_attributes.eager_execution_accepted)


async def test_a_start_next_to_a_worker_of_its_queue_is_eager(client: Any, task_queue: str) -> None:
    async with flowtide.create_worker(client, task_queue=task_queue, graceful_shutdown_s=1):  # the Python API
        run = await flowtide.start_flow(client, FLOW, task_queue=task_queue)
        assert (await run.result())["status"] == "completed"
        assert getattr(run.handle, "__temporal_eagerly_started") is True  # the SDK saw the task come back
        assert await accepted(run.handle)


async def test_a_start_without_a_worker_here_is_plain(client: Any, task_queue: str, dev_server: Any) -> None:
    other = await connect(dev_server.address)  # another connection: its starts cannot reach this worker
    async with build_worker(client, task_queue, graceful_shutdown_s=1):
        assert serves(client, task_queue) and not serves(other, task_queue)
        assert not serves(client, task_queue + "-elsewhere")
        handle = await start_run(other, FLOW, {}, task_queue=task_queue)
        assert (await wait_record(handle))["status"] == "completed"
        assert getattr(handle, "__temporal_eagerly_started") is False and not await accepted(handle)


async def test_a_worker_that_shut_down_serves_no_more(client: Any, task_queue: str) -> None:
    worker = build_worker(client, task_queue, graceful_shutdown_s=1)
    async with worker:
        assert serves(client, task_queue)
    assert not serves(client, task_queue)
