"""Scale-out on one task queue: two worker processes share the load; one is killed mid-load; no run is lost.

Twenty runs of a flow with HTTP steps and a short delay are started while both workers poll; once most runs
wait on their delay (cached on one worker or the other), one worker is SIGKILLed. The other finishes every
run, each with the output of an undisturbed run. This is the capacity model of docs/operations.md in small:
workers are interchangeable, and Temporal moves a dead worker's runs to the living ones (after the sticky
timeout).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from flowtide.client.runs import start_run, wait_record
from flowtide.dev.server import DevServer
from flowtide.workflows.language.dsl import parse_flow
from tests.reliability.procs import WorkerProcess

RUNS = 20


def _flow(base: str) -> Any:
    return parse_flow({"id": "two-workers", "steps": [
        {"stepId": "first", "stepType": "core.http", "input": {"url": base + "/customers/{{ initial.n }}"}},
        {"stepId": "pause", "stepType": "core.delay", "input": {"seconds": 1}},
        {"stepId": "second", "stepType": "core.http", "input": {"url": base + "/ok"}},
        {"stepId": "out", "stepType": "core.return", "input": {"output": {
            "n": "{{ initial.n }}", "name": "{{ first.body.name }}", "ok": "{{ second.status }}"}}}]},
        source="test")


async def _waiting(handle: Any) -> bool:
    return bool((await handle.query("record"))["status"] == "waiting")


async def test_killing_one_of_two_workers_loses_no_run(client: Any, dev_server: DevServer, task_queue: str,
                                                       service: Any, tmp_path: Path) -> None:
    a = WorkerProcess(dev_server.address, task_queue, tmp_path / "a.log").start()
    b = WorkerProcess(dev_server.address, task_queue, tmp_path / "b.log").start()
    try:
        flow = _flow(service.url)
        handles = await asyncio.gather(*(start_run(client, flow, {"n": n}, task_queue=task_queue)
                                         for n in range(RUNS)))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and sum(await asyncio.gather(*(_waiting(h) for h in handles))) < RUNS // 2:
            await asyncio.sleep(0.05)
        a.kill()  # mid-load: runs wait on their delay, some are on an HTTP step
        records = await asyncio.wait_for(asyncio.gather(*(wait_record(h) for h in handles)), 120)
    finally:
        a.kill()
        b.kill()
    assert [r["status"] for r in records] == ["completed"] * RUNS
    assert [r["output"]["n"] for r in records] == list(range(RUNS))
    assert all(r["output"]["ok"] == 200 and r["output"]["name"] for r in records)
