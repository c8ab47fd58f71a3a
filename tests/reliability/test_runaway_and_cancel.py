"""Nothing hangs: a ``next`` cycle ends on the default step budget, and ``flowtide cancel`` ends any wait in 5 s.

The budget with a lowered ``maxStepExecutions`` is ``tests/workflows/test_error_semantics.py::
test_step_budget_ends_a_runaway_cycle``; here the default (10,000) is reached with nothing set. The cancel
test runs the real CLI as a child process against runs waiting on a signal, on a timer and on an HTTP call
that would take 60 s.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from flowtide.client.runs import start_run, wait_record
from flowtide.dev.server import DevServer
from flowtide.workflows.language.dsl import parse_flow
from tests.support.cli import flowtide_process
from tests.support.flows import run_flow

pytestmark = pytest.mark.usefixtures("worker")


async def test_next_cycle_without_run_limit_fails_on_the_default_budget(client: Any, task_queue: str) -> None:
    t0 = time.monotonic()
    rec = await asyncio.wait_for(run_flow(client, task_queue, {"id": "spin", "steps": [
        {"id": "a", "action": "core.set-variable", "parameters": {"x": 1}, "next": "b"},
        {"id": "b", "action": "core.set-variable", "parameters": {"y": 2}, "next": "a"}]}), 120)
    took = time.monotonic() - t0
    assert rec["status"] == "failed"
    assert rec["errors"][-1]["code"] == "STEP_BUDGET_EXCEEDED"
    assert "10000" in rec["errors"][-1]["message"].replace(",", "")
    print(f"\nrunaway cycle stopped after 10,000 steps in {took:.1f}s")


WAITS = {
    "signal": {"stepId": "wait", "stepType": "core.wait-for-signal", "input": {"signal": "never", "timeout": 3600}},
    "timer": {"stepId": "wait", "stepType": "core.delay", "input": {"seconds": 3600}},
    "http": {"stepId": "wait", "stepType": "core.http", "timeout": 120, "input": {"url": "{{ initial.url }}"}},
}


@pytest.mark.parametrize("kind", list(WAITS))
async def test_flowtide_cancel_ends_a_waiting_run_within_5_s(
        client: Any, task_queue: str, dev_server: DevServer, service: Any, kind: str) -> None:
    flow = parse_flow({"id": f"cancel-{kind}", "steps": [
        WAITS[kind], {"stepId": "after", "stepType": "core.set-variable", "input": {"x": 1}}]}, source="test")
    handle = await start_run(client, flow, {"url": service.url + "/slow?ms=60000"}, task_queue=task_queue)
    for _ in range(100):  # until the run is inside its wait
        if (await handle.query("record"))["status"] in ("waiting", "paused", "running") and (
                kind != "http" or service.calls["/slow"]):
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    t0 = time.monotonic()
    code, out, err = await flowtide_process("cancel", handle.id, env={"TEMPORAL_ADDRESS": dev_server.address},
                                            timeout=30)
    assert code == 0, err
    assert "cancellation requested" in out
    rec = await asyncio.wait_for(wait_record(handle), 10)
    took = time.monotonic() - t0
    print(f"\ncancel of a run waiting on {kind}: closed {took:.2f}s after `flowtide cancel` started")
    assert rec["status"] == "cancelled"
    assert all(s["stepId"] != "after" for s in rec["steps"])
    assert took < 5.0
