"""The benchmark scenarios: each runs Flowtide and the hand-written baseline on the same worker, interleaved.

Every timing is client-side wall clock from "start the workflow" to "have its result", so both sides pay
the same start and result round trips; medians are taken over interleaved repetitions so that a slow
moment of the machine hits both sides alike.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from dataclasses import dataclass
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle

from bench import baseline, flows, rounds
from flowtide.client.runs import start_run, wait_record
from flowtide.workflows.contracts import activity_task
from flowtide.workflows.language import parse_flow
from flowtide.workflows.retry import effective

ACTIVITY_EVENTS = frozenset({
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT, EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED,
    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED})
ACTIVITY_MARKER = "core_local_activity"  # the marker name local activities record (one event each)

RUN_TIMEOUT_S = 300.0


@dataclass
class Env:
    """What every scenario needs: a client, the worker's task queue, the HTTP service's base URL."""

    client: Client
    task_queue: str
    url: str


def _wid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def flowtide_run(env: Env, doc: dict[str, Any], payload: Any = None, *, timeout_s: float = RUN_TIMEOUT_S
                       ) -> tuple[float, dict[str, Any], WorkflowHandle[Any, Any]]:
    """Run one flow to its end; return (seconds, run record, handle).

    Raises:
        TimeoutError: the run did not end within ``timeout_s`` (a stuck run must not hang the benchmark).
    """
    flow = parse_flow(doc, source="bench")
    t0 = time.perf_counter()
    handle = await start_run(env.client, flow, payload if payload is not None else {}, task_queue=env.task_queue)
    record = await asyncio.wait_for(wait_record(handle), timeout_s)
    return time.perf_counter() - t0, record, handle


def core_http_task(url: str) -> dict[str, Any]:
    """The task Flowtide's interpreter hands to its ``core.http`` activity for a GET of ``url``."""
    return activity_task("core.http", {"url": url}, step_id="get", timeout=30.0,
                         retry=effective("HTTP", None, None).to_dict(), run_id="bench", workflow_id="bench")


def baseline_params(env: Env, steps: int, local: bool, activity: str) -> dict[str, Any]:
    """Input of the hand-written workflow: its own httpx activity, or Flowtide's ``core.http``."""
    url = f"{env.url}/ok"
    arg: Any = url if activity == baseline.ACTIVITY_NAME else core_http_task(url)
    return {"steps": steps, "local": local, "activity": activity, "arg": arg}


async def baseline_run(env: Env, params: dict[str, Any]) -> float:
    """Run the hand-written workflow once; return seconds."""
    t0 = time.perf_counter()
    await asyncio.wait_for(env.client.execute_workflow(baseline.WORKFLOW_NAME, params, id=_wid("baseline"),
                                                       task_queue=env.task_queue), RUN_TIMEOUT_S)
    return time.perf_counter() - t0


async def sequential(env: Env, steps: int, reps: int, execution: str) -> dict[str, Any]:
    """``steps`` HTTP steps in a row: Flowtide, hand-written + httpx, hand-written + Flowtide's activity."""
    local = execution == "local"
    doc = flows.sequential(env.url, steps, execution)

    async def flowtide() -> None:
        await flowtide_run(env, doc)

    async def hand() -> None:
        await baseline_run(env, baseline_params(env, steps, local, baseline.ACTIVITY_NAME))

    async def hand_core() -> None:
        await baseline_run(env, baseline_params(env, steps, local, "core.http"))

    got = await rounds.paired({"flowtide": flowtide, "baseline": hand, "baseline_core_http": hand_core}, reps)
    ms = {k: statistics.median(got.wall(k)) * 1000 / steps for k in got.samples}
    cpu = {k: statistics.median(got.cpu(k)) * 1000 / steps for k in got.samples}
    return {"execution": execution, "steps": steps, "reps": reps,
            "flowtide_step_ms": ms["flowtide"], "baseline_step_ms": ms["baseline"],
            "baseline_core_http_step_ms": ms["baseline_core_http"],
            "overhead_ratio": rounds.ratio(got.wall("flowtide"), got.wall("baseline")),
            "interpreter_ratio": rounds.ratio(got.wall("flowtide"), got.wall("baseline_core_http")),
            "cpu_ms_per_step": round(cpu["flowtide"], 3), "baseline_cpu_ms_per_step": round(cpu["baseline"], 3),
            "cpu_ratio": rounds.ratio(got.cpu("flowtide"), got.cpu("baseline"))}


async def throughput(env: Env, runs: int, steps: int, reps: int, execution: str) -> dict[str, Any]:
    """``runs`` concurrent runs of ``steps`` HTTP steps each; steps per second for each side."""
    local = execution == "local"
    doc = flows.sequential(env.url, steps, execution)
    flow = parse_flow(doc, source="bench")

    async def flowtide() -> None:
        handles = await asyncio.gather(*(start_run(env.client, flow, {}, task_queue=env.task_queue)
                                         for _ in range(runs)))
        await asyncio.wait_for(asyncio.gather(*(wait_record(h) for h in handles)), RUN_TIMEOUT_S)

    async def hand() -> None:
        params = baseline_params(env, steps, local, baseline.ACTIVITY_NAME)
        handles = await asyncio.gather(*(env.client.start_workflow(
            baseline.WORKFLOW_NAME, params, id=_wid("baseline"), task_queue=env.task_queue) for _ in range(runs)))
        await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), RUN_TIMEOUT_S)

    got = await rounds.paired({"flowtide": flowtide, "baseline": hand}, reps)
    rate = {k: runs * steps / statistics.median(got.wall(k)) for k in got.samples}
    return {"execution": execution, "runs": runs, "steps": steps, "reps": reps,
            "flowtide_steps_per_s": rate["flowtide"], "baseline_steps_per_s": rate["baseline"],
            # steps per second is the inverse of time: baseline time / Flowtide time, per round
            "throughput_ratio": rounds.ratio(got.wall("baseline"), got.wall("flowtide")),
            "cpu_ms_per_step": round(statistics.median(got.cpu("flowtide")) * 1000 / (runs * steps), 3),
            "baseline_cpu_ms_per_step": round(statistics.median(got.cpu("baseline")) * 1000 / (runs * steps), 3),
            "cpu_ratio": rounds.ratio(got.cpu("flowtide"), got.cpu("baseline"))}


def activity_events(events: list[Any]) -> int:
    """Activity events in a history: remote activity events plus local-activity markers."""
    n = sum(1 for e in events if e.event_type in ACTIVITY_EVENTS)
    return n + sum(1 for e in events if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
                   and e.marker_recorded_event_attributes.marker_name == ACTIVITY_MARKER)


async def pure(env: Env, steps: int, reps: int) -> dict[str, Any]:
    """A flow of ``steps`` set-variable / if steps: speed and the activity events it leaves (must be 0)."""
    doc = flows.pure(steps)
    seconds: list[float] = []
    events: list[Any] = []
    record: dict[str, Any] = {}
    for _ in range(reps + 1):  # the first run warms the sandbox up
        took, record, handle = await flowtide_run(env, doc)
        seconds.append(took)
        events = (await handle.fetch_history()).events
    took = statistics.median(seconds[1:])
    tasks = sum(1 for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)
    return {"steps": steps, "status": record.get("status"), "seconds": took, "steps_per_s": steps / took,
            "activity_events": activity_events(events), "history_events": len(events), "workflow_tasks": tasks}
