"""A cancel always ends a run, even one whose workflow tasks keep failing (issue 23)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from temporalio import workflow
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import Worker
from temporalio.workflow import NondeterminismError

from flowtide.client.api import FlowHandle
from flowtide.client.cancel import TERMINATE_REASON
from flowtide.client.runs import start_run
from flowtide.dev.server import DevServer
from flowtide.workflows.engine.interpreter import FlowWorkflow
from flowtide.workflows.language.dsl import parse_flow
from tests.support.cli import flowtide_process


@workflow.defn(name="FlowWorkflow", sandboxed=False)
class BadDeployInterpreter(FlowWorkflow):
    """Every workflow task fails (as after a nondeterministic deploy): Temporal retries it forever."""

    @workflow.run
    async def run(self, params: dict[str, Any]) -> dict[str, Any]:
        raise NondeterminismError("simulated bad deploy")


FLOW = {"id": "stuck", "steps": [{"stepId": "x", "stepType": "core.set-variable", "input": {"x": 1}}]}


async def stuck_run(client: Client, task_queue: str) -> Any:
    handle = await start_run(client, parse_flow(FLOW, source="test"), {}, task_queue=task_queue)
    for _ in range(100):  # until its first workflow task has failed and is being retried
        desc = await handle.describe()
        if desc.raw_description.pending_workflow_task.attempt > 1:
            return handle
        await asyncio.sleep(0.1)
    raise AssertionError("the workflow task never failed")


async def test_cancel_through_the_python_api_terminates_a_run_whose_task_keeps_failing(client, task_queue):
    async with Worker(client, task_queue=task_queue, workflows=[BadDeployInterpreter]):
        handle = await stuck_run(client, task_queue)
        started = time.monotonic()
        assert await FlowHandle(handle).cancel(grace_s=2) == "terminated"
        assert time.monotonic() - started < 15
    desc = await handle.describe()
    assert desc.status == WorkflowExecutionStatus.TERMINATED
    reasons = [e.workflow_execution_terminated_event_attributes.reason async for e in handle.fetch_history_events()
               if e.HasField("workflow_execution_terminated_event_attributes")]
    assert reasons == [TERMINATE_REASON]


async def test_flowtide_cancel_ends_a_run_whose_task_keeps_failing(client, task_queue, dev_server: DevServer):
    async with Worker(client, task_queue=task_queue, workflows=[BadDeployInterpreter]):
        handle = await stuck_run(client, task_queue)
        code, out, err = await flowtide_process("cancel", handle.id, "--grace", "2",
                                                env={"TEMPORAL_ADDRESS": dev_server.address}, timeout=60)
    assert code == 0, err
    assert "terminated" in out
    assert (await handle.describe()).status == WorkflowExecutionStatus.TERMINATED


async def test_a_healthy_run_is_cancelled_not_terminated(client, task_queue, worker):
    flow = {"id": "waits", "steps": [{"stepId": "wait", "stepType": "core.delay", "input": {"seconds": 3600}}]}
    handle = await start_run(client, parse_flow(flow, source="test"), {}, task_queue=task_queue)
    await asyncio.sleep(0.5)
    assert await FlowHandle(handle).cancel(grace_s=10) == "cancelled"
