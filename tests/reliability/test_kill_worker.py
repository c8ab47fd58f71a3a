"""Kill -9 the worker process in the middle of a 12-step flow; a new worker must finish it, losing nothing.

Real processes throughout: the session's Temporal dev server, the local demo service (in this process), and
``python -m flowtide.worker`` children that are SIGKILLed at a seeded-random moment. Every HTTP step sends an
``X-Call`` header naming the run and the step, so the service's request log tells how often each call
reached it.

CI runs ``CI_SEEDS``; the full chaos variant (50 seeded kills) is ``pytest -m slow tests/reliability``.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from flowtide.client.runs import start_run, wait_record
from flowtide.dev.demo_service import DemoService
from flowtide.dev.server import DevServer
from flowtide.workflows.language.dsl import parse_flow
from tests.reliability.procs import WorkerProcess
from tests.support.flows import step

CI_SEEDS = [10, 11, 37]  # a kill in the middle of a POST, one at a random time, one after a call
FULL_SEEDS = list(range(1000, 1050))
POSTS = ("create-order", "update-order")


def counted_http(step_id: str, url: str, *, call: str | None = None, **inp: Any) -> dict[str, Any]:
    """A retried HTTP step whose calls the service counts by X-Call (a duplicate after a kill shows)."""
    headers = {"X-Call": "{{ $run.workflowId }}/" + (call or step_id)}
    return {"stepId": step_id, "stepType": "core.http", "timeout": 5,
            "retryPolicy": {"maxRetries": 3, "delayMs": 100}, "input": {"url": url, "headers": headers, **inp}}


def twelve_steps(base: str) -> dict[str, Any]:
    """HTTP GETs and two POSTs, a for-each of HTTP calls, a 1 s durable timer and a code step."""
    return {"id": "kill-me", "version": 1, "steps": [
        counted_http("get-customer", base + "/customers/{{ initial.customer }}"),
        counted_http("create-order", base + "/echo", method="POST",
             json={"customer": "{{ get-customer.body.id }}", "items": "{{ initial.items }}"}),
        {"stepId": "remember", "stepType": "core.set-variable", "input": {"owner": "{{ get-customer.body.name }}"}},
        {"stepId": "each", "stepType": "core.for-each", "input": {
            "items": "{{ initial.items }}", "concurrency": 1,
            "steps": [counted_http("fetch-item", base + "/customers/item-{{ $item }}",
                                   call="fetch-item-{{ $item }}")]}},
        {"stepId": "pause", "stepType": "core.delay", "input": {"seconds": 1}},
        {"stepId": "compute", "stepType": "core.code", "timeout": 10, "input": {"script": (
            "names = [r['body']['name'] for r in steps['each']['results']]\n"
            "return {'names': names, 'owner': vars['owner'], 'n': len(names) * 10}")}},
        counted_http("slow", base + "/slow?ms=400"),
        counted_http("update-order", base + "/slow?ms=300", method="POST", json={"total": "{{ compute.n }}"}),
        counted_http("get-again", base + "/customers/{{ initial.customer }}-2"),
        {"stepId": "mark", "stepType": "core.set-variable", "input": {"done": True}},
        counted_http("ping", base + "/ok"),
        {"stepId": "result", "stepType": "core.return", "input": {"output": {
            "customer": "{{ get-customer.body }}", "order": "{{ create-order.body.body }}",
            "owner": "{{ vars.owner }}", "items": "{{ each.count }}", "computed": "{{ compute.output }}",
            "slept": "{{ slow.body.sleptMs }}", "update": "{{ update-order.body }}",
            "again": "{{ get-again.body.name }}", "delayed": "{{ pause.delayedSeconds }}",
            "done": "{{ vars.done }}", "ping": "{{ ping.body }}"}}}]}


PAYLOAD = {"customer": "c7", "items": [1, 2, 3]}


def calls_of(service: DemoService, workflow_id: str) -> list[dict[str, Any]]:
    prefix = workflow_id + "/"
    return [b for b in list(service.bodies) if b["headers"].get("x-call", "").startswith(prefix)]


def count_calls(service: DemoService, workflow_id: str) -> Counter[str]:
    return Counter(b["headers"]["x-call"].split("/", 1)[1] for b in calls_of(service, workflow_id))


class Harness:
    def __init__(self, server: DevServer, client: Any, service: DemoService, task_queue: str, logs: Path) -> None:
        self.server, self.client, self.service, self.tq, self.logs = server, client, service, task_queue, logs
        self.flow = parse_flow(twelve_steps(service.url), source="test")

    def worker(self) -> WorkerProcess:
        return WorkerProcess(self.server.address, self.tq, self.logs)

    async def unkilled(self) -> tuple[dict[str, Any], float]:
        with self.worker():
            t0 = time.monotonic()
            rec = await wait_record(await start_run(self.client, self.flow, PAYLOAD, task_queue=self.tq))
            return rec, time.monotonic() - t0

    async def killed(self, when: tuple[str, float]) -> tuple[dict[str, Any], Any, float]:
        """Kill -9 ``when[1]`` seconds after the run starts, or after call ``when[0]`` reaches the service."""
        first = await asyncio.to_thread(self.worker().start)
        t0 = time.monotonic()
        handle = await start_run(self.client, self.flow, PAYLOAD, task_queue=self.tq)
        try:
            call, after = when
            while call != "start" and not count_calls(self.service, handle.id)[call]:
                assert time.monotonic() - t0 < 30, f"call {call} never came"
                await asyncio.sleep(0.005)
            await asyncio.sleep(after)
            await asyncio.to_thread(first.kill)
            with await asyncio.to_thread(self.worker().start):
                rec = await asyncio.wait_for(wait_record(handle), 60)
        finally:
            first.kill()
        return rec, handle, time.monotonic() - t0


async def interruptions(handle: Any) -> dict[str, int]:
    """What the kill interrupted, as seen in the history: timed-out activity attempts and workflow tasks."""
    from temporalio.api.enums.v1 import EventType
    seen: Counter[str] = Counter()
    async for e in handle.fetch_history_events():
        started = e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        if started and e.activity_task_started_event_attributes.attempt > 1:
            seen["activityRetried"] += 1
        elif e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT:
            seen["workflowTaskTimedOut"] += 1
    return dict(seen)


def check_calls(service: DemoService, handle: Any, kills: int) -> int:
    """Every call reached the service; at most ``kills`` extra ones; POSTs keep one idempotency key."""
    counts = count_calls(service, handle.id)
    assert set(counts) == set(CALLS), counts
    duplicated = sum(n - 1 for n in counts.values())
    assert duplicated <= kills, counts
    for post in POSTS:
        keys = {b["headers"].get("idempotency-key") for b in calls_of(service, handle.id)
                if b["headers"]["x-call"].endswith("/" + post)}
        # One key however often the POST reached the service: a service that honours Idempotency-Key
        # applies it once. The key is run id + step id.
        assert keys == {f"{handle.result_run_id}:{post}"}, keys
    return duplicated


@pytest.fixture
def harness(dev_server: DevServer, client: Any, service: DemoService, task_queue: str, tmp_path: Path) -> Harness:
    return Harness(dev_server, client, service, task_queue, tmp_path / "workers.log")


CALLS = ("get-customer", "create-order", "fetch-item-1", "fetch-item-2", "fetch-item-3", "slow", "update-order",
         "get-again", "ping")


def kill_moment(seed: int, duration: float) -> tuple[str, float]:
    """Half the seeds kill at a random time of the run; half right after a random call reached the service
    (often while its step is still in flight: the case that can duplicate a call)."""
    rng = random.Random(seed)
    if rng.random() < 0.5:
        return "start", rng.uniform(0.05, duration)
    return rng.choice(CALLS), rng.uniform(0.0, 0.2)


async def chaos(harness: Harness, seeds: list[int]) -> list[dict[str, Any]]:
    reference, duration = await harness.unkilled()
    assert reference["status"] == "completed", reference.get("errors")
    rows = []
    for seed in seeds:
        when = kill_moment(seed, duration)
        rec, handle, took = await harness.killed(when)
        assert rec["status"] == "completed", (seed, rec.get("errors"))
        assert rec["output"] == reference["output"], seed
        dup = check_calls(harness.service, handle, kills=1)
        rows.append({"seed": seed, "kill": f"{when[0]}+{when[1]:.2f}s", "took": round(took, 1), "duplicated": dup,
                     **await interruptions(handle)})
    print(f"\nunkilled run: {duration:.1f}s")
    for row in rows:
        print(row)
    return rows


async def test_kill_9_worker_mid_flow_ci(harness: Harness) -> None:
    rows = await chaos(harness, CI_SEEDS)
    assert len(rows) == len(CI_SEEDS)


@pytest.mark.slow
@pytest.mark.timeout(1800)
async def test_kill_9_worker_mid_flow_50_seeds(harness: Harness) -> None:
    rows = await chaos(harness, FULL_SEEDS)
    assert sum(r["duplicated"] for r in rows) <= len(FULL_SEEDS)


async def test_sigterm_lets_the_in_flight_step_finish(harness: Harness, service: DemoService) -> None:
    flow = parse_flow({"id": "graceful", "steps": [
        counted_http("slow", service.url + "/slow?ms=2000"),
        counted_http("after", service.url + "/ok")]}, source="test")
    first = await asyncio.to_thread(harness.worker().start)
    handle = await start_run(harness.client, flow, {}, task_queue=harness.tq)

    async def slow_call_arrived() -> bool:
        while not count_calls(service, handle.id)["slow"]:
            await asyncio.sleep(0.02)
        return True

    await asyncio.wait_for(slow_call_arrived(), 20)
    t0 = time.monotonic()
    code = await asyncio.to_thread(first.terminate, 20)
    stopped_after = time.monotonic() - t0
    assert code == 0, first.log_text()[-2000:]
    assert stopped_after >= 1.5  # it waited for the 2 s call instead of dropping it
    with await asyncio.to_thread(harness.worker().start):
        rec = await asyncio.wait_for(wait_record(handle), 30)
    assert rec["status"] == "completed"
    slow = step(rec, "slow")
    assert slow["status"] == "completed" and slow["attempts"] == 1
    assert count_calls(service, handle.id) == {"slow": 1, "after": 1}
