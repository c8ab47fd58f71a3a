"""Stop and restart the embedded Temporal server (SQLite file) while runs wait on a timer and on a signal.

The server is a real ``temporal server start-dev`` process with its own port and database file (not the
session's in-memory server); the worker is a real ``python -m flowtide.worker`` process that stays up across the
outage. Both runs must finish after the restart: nothing is lost.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from flowtide.client.connect import TemporalUnreachable, connect
from flowtide.client.runs import start_run, wait_record
from flowtide.dev.server import DevServer, free_port
from flowtide.workflows.language.dsl import parse_flow
from tests.reliability.procs import WorkerProcess

TIMER = {"id": "timer", "steps": [
    {"stepId": "wait", "stepType": "core.delay", "input": {"seconds": 4}},
    {"stepId": "done", "stepType": "core.return", "input": {"output": {"slept": "{{ wait.delayedSeconds }}"}}}]}
SIGNAL = {"id": "approval", "steps": [
    {"stepId": "wait", "stepType": "core.wait-for-signal", "input": {"signal": "approve", "timeout": 300}},
    {"stepId": "done", "stepType": "core.return", "input": {"output": {"by": "{{ wait.data.by }}"}}}]}


async def connect_when_healthy(address: str, timeout: float = 30) -> Any:
    """The port opens before the frontend is healthy ("Frontend is not healthy yet") after a restart."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await connect(address)
        except TemporalUnreachable:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def status_of(client: Any, workflow_id: str) -> str:
    return str((await client.get_workflow_handle(workflow_id).query("record"))["status"])


async def wait_status(client: Any, workflow_id: str, wanted: set[str], timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while True:
        status = await status_of(client, workflow_id)
        if status in wanted or time.monotonic() > deadline:
            return status
        await asyncio.sleep(0.1)


async def test_runs_waiting_on_timer_and_signal_survive_a_server_restart(tmp_path: Path, task_queue: str) -> None:
    db = tmp_path / "temporal.db"

    def server() -> DevServer:
        return DevServer(port=port, ui_port=None, db_file=str(db),
                         extra_args=["--dynamic-config-value", "frontend.workerHeartbeatsEnabled=false"])

    port = free_port()
    first = await asyncio.to_thread(server().start)
    second = None
    try:
        client = await connect_when_healthy(first.address)
        with WorkerProcess(first.address, task_queue, tmp_path / "worker.log"):
            timer = await start_run(client, parse_flow(TIMER), {}, task_queue=task_queue)
            signal = await start_run(client, parse_flow(SIGNAL), {}, task_queue=task_queue)
            assert await wait_status(client, timer.id, {"waiting"}) == "waiting"
            assert await wait_status(client, signal.id, {"paused", "waiting"}) in {"paused", "waiting"}

            t0 = time.monotonic()
            await asyncio.to_thread(first.stop)
            assert first.proc is not None and first.proc.returncode is not None
            await asyncio.sleep(1.0)  # the server is gone for a while; the timer comes due meanwhile
            second = await asyncio.to_thread(server().start)
            print(f"\nserver down and back in {time.monotonic() - t0:.1f}s, db {db.stat().st_size} bytes")

            client = await connect_when_healthy(second.address)
            await client.get_workflow_handle(signal.id).signal("approve", {"by": "ann"})
            timer_rec = await asyncio.wait_for(wait_record(client.get_workflow_handle(timer.id)), 60)
            signal_rec = await asyncio.wait_for(wait_record(client.get_workflow_handle(signal.id)), 60)
            print(f"both runs finished {time.monotonic() - t0:.1f}s after the stop")
        assert timer_rec["status"] == "completed" and timer_rec["output"] == {"slept": 4}
        assert signal_rec["status"] == "completed" and signal_rec["output"] == {"by": "ann"}
    finally:
        first.stop()
        if second is not None:
            second.stop()
