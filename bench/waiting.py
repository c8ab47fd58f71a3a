"""Long-running runs: N runs that wait for a signal, next to N hand-written workflows that do the same.

Start phase: start the runs (``IN_FLIGHT`` requests at a time) and query each once, which returns only after the
worker has run the run's first workflow task: the time until all of them wait. Resume phase: signal them
and wait for every result. Both phases run in paired rounds of N / rounds runs per side, the side that goes
first alternating. The worker's resident memory is read while all 2N runs wait, and before the first start.

``resume`` (``--waiting-resume K``) resumes only the K oldest runs per side (the ones longest out of the sticky
cache), in the same paired rounds, and leaves the others waiting until the server stops: at 100,000 runs per
side resuming all of them would double a run of about an hour for a ratio that a sample of them gives as well.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import uuid
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

from temporalio.service import RPCError, RPCStatusCode

from bench import baseline, rounds
from bench.scenarios import Env
from flowtide.client.runs import start_run
from flowtide.workflows.language import parse_flow

IN_FLIGHT = 100  # starts (and signals) in flight at once
QUERY_ATTEMPTS = 10
WAIT_S = 24 * 3600  # must outlast both phases: at 100,000 runs per side the starts alone took 58 minutes here,
# and with 1 h the oldest runs timed out while the resume phase reached them


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


async def _bounded(calls: Iterable[Callable[[], Awaitable[Any]]]) -> None:
    """Run ``calls`` with ``IN_FLIGHT`` at a time: a fixed pool of tasks takes them in turn, so 100,000 calls
    cost ``IN_FLIGHT`` tasks, not 100,000 waiting coroutines in the process being measured."""
    todo = iter(calls)

    async def pump() -> None:
        for call in todo:
            await call()

    await asyncio.gather(*(pump() for _ in range(IN_FLIGHT)))


async def _answered(handle: Any, query: str) -> None:
    """Query until answered: an answer comes once the worker has run the run's first workflow task. On a busy
    machine that can take longer than the server's query deadline, the task can fail once and be retried by
    Temporal, or the server can clear a buffered query and ask for a retry; each time the query is asked again."""
    for attempt in range(QUERY_ATTEMPTS):
        try:
            await handle.query(query)
            return
        except RPCError as err:
            timed_out = err.status == RPCStatusCode.DEADLINE_EXCEEDED or "Timeout" in str(err)
            # a workflow task that failed (the SDK's deadlock detector on a starved machine) is retried by Temporal;
            # the server drops a query it buffered when the run's sticky task moves ("buffered query cleared")
            not_ready = err.status in (RPCStatusCode.FAILED_PRECONDITION, RPCStatusCode.UNAVAILABLE)
            if not (timed_out or not_ready) or attempt == QUERY_ATTEMPTS - 1:
                raise
            if not_ready:
                await asyncio.sleep(1.0)


async def waiting_runs(env: Env, n: int, rounds_: int = 3, resume: int | None = None) -> dict[str, Any]:
    """Start ``n`` waiting runs per side and resume them (or the ``resume`` oldest) in ``rounds_`` paired rounds
    (rotating which side goes first); per-round time ratios, CPU, the memory while all ``2 n`` wait, and
    history sizes.

    Only workflow ids are kept between the phases (a handle is made again to signal a run), so the resident
    memory read while the runs wait is the worker's, not a list of 2 n client handles."""
    flow = parse_flow(_flow(), source="bench")
    tag = uuid.uuid4().hex[:6]
    per_round = max(1, -(-n // rounds_))  # rounded up: at least n runs per side in all
    ids = {"flowtide": f"wait-f-{tag}-", "baseline": f"wait-b-{tag}-"}

    async def start_flowtide(i: int) -> None:
        handle = await start_run(env.client, flow, {}, task_queue=env.task_queue, workflow_id=f"{ids['flowtide']}{i}")
        await _answered(handle, "record")

    async def start_baseline(i: int) -> None:
        handle = await env.client.start_workflow(baseline.WAITING_NAME, {"timeout": WAIT_S},
                                                 id=f"{ids['baseline']}{i}", task_queue=env.task_queue)
        await _answered(handle, "state")

    async def resume_one(side: str, i: int) -> None:
        handle = env.client.get_workflow_handle(f"{ids[side]}{i}")
        await handle.signal("go", {"ok": True})
        await handle.result()

    makers = {"flowtide": start_flowtide, "baseline": start_baseline}
    start: dict[str, list[rounds.Sample]] = {"flowtide": [], "baseline": []}
    gc.collect()
    before = rss_mb()
    for r in range(rounds_):
        part = range(r * per_round, (r + 1) * per_round)
        for side in (("flowtide", "baseline") if r % 2 == 0 else ("baseline", "flowtide")):
            async def start_side(side: str = side, part: range = part) -> None:
                await _bounded(lambda i=i: makers[side](i) for i in part)
            start[side].append(await rounds.measure(start_side))
    gc.collect()
    memory = rss_mb()
    resumed: dict[str, list[rounds.Sample]] = {"flowtide": [], "baseline": []}
    per_resume = max(1, -(-min(resume or n, n) // rounds_))
    for r in range(rounds_):
        part = range(r * per_resume, (r + 1) * per_resume)
        for side in (("baseline", "flowtide") if r % 2 == 0 else ("flowtide", "baseline")):
            async def resume_side(side: str = side, part: range = part) -> None:
                await _bounded(lambda i=i: resume_one(side, i) for i in part)
            resumed[side].append(await rounds.measure(resume_side))
    events = [int((await env.client.get_workflow_handle(f"{ids['flowtide']}{i}").describe())
                  .raw_description.workflow_execution_info.history_length) for i in range(min(20, per_round))]

    def wall(phase: dict[str, list[rounds.Sample]], side: str) -> list[float]:
        return [s.wall for s in phase[side]]

    def cpu(side: str) -> float:
        return sum(s.cpu for s in start[side] + resumed[side])

    runs = per_round * rounds_
    return {"runs": runs, "rounds": rounds_, "resumed": per_resume * rounds_,
            "start_seconds": {k: round(sum(wall(start, k)), 2) for k in start},
            "resume_seconds": {k: round(sum(wall(resumed, k)), 2) for k in resumed},
            "waiting_start_spread": rounds.ratio(wall(start, "flowtide"), wall(start, "baseline")),
            "waiting_resume_spread": rounds.ratio(wall(resumed, "flowtide"), wall(resumed, "baseline")),
            "waiting_start_ratio": rounds.ratio(wall(start, "flowtide"), wall(start, "baseline"))["median"],
            "waiting_resume_ratio": rounds.ratio(wall(resumed, "flowtide"), wall(resumed, "baseline"))["median"],
            "waiting_cpu_ratio": round(cpu("flowtide") / max(1e-9, cpu("baseline")), 3),
            "waiting_rss_mb": round(memory, 1), "rss_before_mb": round(before, 1),
            "history_events_per_run": statistics.median(events)}
