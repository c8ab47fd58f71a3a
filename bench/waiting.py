"""Long-running runs: N runs that wait for a signal, next to N hand-written workflows that do the same.

Start phase: start the runs (50 requests in flight) and query each once, which returns only after the
worker has run the run's first workflow task: the time until all of them wait. Resume phase: signal them
and wait for every result. Both phases run in paired rounds of N / rounds runs per side, the side that goes
first alternating. The worker's resident memory is read while all 2N runs wait.
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
from flowtide.workflows.language import parse_flow

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


async def waiting_runs(env: Env, n: int, rounds_: int = 3) -> dict[str, Any]:
    """Start and resume ``n`` waiting runs per side in ``rounds_`` paired rounds (rotating which side goes first);
    per-round time ratios, CPU, the memory while all ``2 n`` wait, and history sizes."""
    flow = parse_flow(_flow(), source="bench")
    tag = uuid.uuid4().hex[:6]
    per_round = max(1, -(-n // rounds_))  # rounded up: at least n runs per side in all

    async def start_flowtide(i: int) -> Any:
        handle = await start_run(env.client, flow, {}, task_queue=env.task_queue, workflow_id=f"wait-f-{tag}-{i}")
        await handle.query("record")
        return handle

    async def start_baseline(i: int) -> Any:
        handle = await env.client.start_workflow(baseline.WAITING_NAME, {"timeout": WAIT_S},
                                                 id=f"wait-b-{tag}-{i}", task_queue=env.task_queue)
        await handle.query("state")
        return handle

    makers = {"flowtide": start_flowtide, "baseline": start_baseline}
    handles: dict[str, list[list[Any]]] = {"flowtide": [], "baseline": []}
    start: dict[str, list[rounds.Sample]] = {"flowtide": [], "baseline": []}
    for r in range(rounds_):
        for side in (("flowtide", "baseline") if r % 2 == 0 else ("baseline", "flowtide")):
            async def run_side(side: str = side, r: int = r) -> None:
                handles[side].append(await _bounded([lambda i=i: makers[side](i) for i in
                                                     range(r * per_round, (r + 1) * per_round)]))
            start[side].append(await rounds.measure(run_side))
    memory = rss_mb()
    resume: dict[str, list[rounds.Sample]] = {"flowtide": [], "baseline": []}
    for r in range(rounds_):
        for side in (("baseline", "flowtide") if r % 2 == 0 else ("flowtide", "baseline")):
            async def resume_side(side: str = side, r: int = r) -> None:
                await _bounded([lambda h=h: h.signal("go", {"ok": True}) for h in handles[side][r]])
                await _bounded([lambda h=h: h.result() for h in handles[side][r]])
            resume[side].append(await rounds.measure(resume_side))
    events = [int((await h.describe()).raw_description.workflow_execution_info.history_length)
              for h in handles["flowtide"][0][:20]]

    def wall(phase: dict[str, list[rounds.Sample]], side: str) -> list[float]:
        return [s.wall for s in phase[side]]

    def cpu(side: str) -> float:
        return sum(s.cpu for s in start[side] + resume[side])

    return {"runs": per_round * rounds_, "rounds": rounds_,
            "start_seconds": {k: round(sum(wall(start, k)), 2) for k in start},
            "resume_seconds": {k: round(sum(wall(resume, k)), 2) for k in resume},
            "waiting_start_spread": rounds.ratio(wall(start, "flowtide"), wall(start, "baseline")),
            "waiting_resume_spread": rounds.ratio(wall(resume, "flowtide"), wall(resume, "baseline")),
            "waiting_start_ratio": rounds.ratio(wall(start, "flowtide"), wall(start, "baseline"))["median"],
            "waiting_resume_ratio": rounds.ratio(wall(resume, "flowtide"), wall(resume, "baseline"))["median"],
            "waiting_cpu_ratio": round(cpu("flowtide") / max(1e-9, cpu("baseline")), 3),
            "waiting_rss_mb": round(memory, 1), "history_events_per_run": statistics.median(events)}
