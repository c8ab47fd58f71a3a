"""Long-running runs: N runs that wait for a signal, next to N hand-written workflows that do the same.

Start phase: start the N runs (50 requests in flight) and query each once, which returns only after the
worker has run the run's first workflow task: the time until all of them wait. Resume phase: signal them
all and wait for every result. The worker's resident memory is read while all 2N runs wait.
"""

from __future__ import annotations

import asyncio
import statistics
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench import baseline, rounds
from bench.scenarios import Env
from flowtide.client.runs import start_run
from flowtide.workflows.dsl import parse_flow

IN_FLIGHT = 50
WAIT_S = 3600


def _flow() -> dict[str, Any]:
    return {"id": "bench-waiting", "steps": [
        {"stepId": "approval", "stepType": "core.wait-for-signal", "input": {"signal": "go", "timeout": WAIT_S}},
        {"stepId": "done", "stepType": "core.return", "input": {"output": "{{ approval.data }}"}}]}


def rss_mb() -> float:
    """This process's resident memory now (VmRSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _bounded(calls: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(call: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await call()

    return list(await asyncio.gather(*(one(c) for c in calls)))


async def waiting_runs(env: Env, n: int) -> dict[str, Any]:
    """Start and resume ``n`` waiting runs per side; times, CPU, memory and history sizes."""
    flow = parse_flow(_flow(), source="bench")
    tag = uuid.uuid4().hex[:6]

    async def start_flowtide(i: int) -> Any:
        handle = await start_run(env.client, flow, {}, task_queue=env.task_queue, workflow_id=f"wait-f-{tag}-{i}")
        await handle.query("record")
        return handle

    async def start_baseline(i: int) -> Any:
        handle = await env.client.start_workflow(baseline.WAITING_NAME, {"timeout": WAIT_S},
                                                 id=f"wait-b-{tag}-{i}", task_queue=env.task_queue)
        await handle.query("state")
        return handle

    handles: dict[str, list[Any]] = {}
    start: dict[str, rounds.Sample] = {}
    for side, make in (("flowtide", start_flowtide), ("baseline", start_baseline)):
        async def run_side(make: Callable[[int], Awaitable[Any]] = make, side: str = side) -> None:
            handles[side] = await _bounded([lambda i=i: make(i) for i in range(n)])
        start[side] = await rounds.measure(run_side)
    memory = rss_mb()
    resume: dict[str, rounds.Sample] = {}
    for side in ("flowtide", "baseline"):
        async def resume_side(side: str = side) -> None:
            await _bounded([lambda h=h: h.signal("go", {"ok": True}) for h in handles[side]])
            await _bounded([lambda h=h: h.result() for h in handles[side]])
        resume[side] = await rounds.measure(resume_side)
    events = [int((await h.describe()).raw_description.workflow_execution_info.history_length)
              for h in handles["flowtide"][:20]]
    return {"runs": n, "start_seconds": {k: round(v.wall, 2) for k, v in start.items()},
            "resume_seconds": {k: round(v.wall, 2) for k, v in resume.items()},
            "waiting_start_ratio": round(start["flowtide"].wall / start["baseline"].wall, 3),
            "waiting_resume_ratio": round(resume["flowtide"].wall / resume["baseline"].wall, 3),
            "waiting_cpu_ratio": round((start["flowtide"].cpu + resume["flowtide"].cpu)
                                       / max(1e-9, start["baseline"].cpu + resume["baseline"].cpu), 3),
            "waiting_rss_mb": round(memory, 1), "history_events_per_run": statistics.median(events)}
