"""The hand-written Temporal baseline the benchmark compares Flowtide against.

What a careful Temporal user would write by hand for the same job: one workflow that calls an HTTP
activity ``steps`` times in a row, with a timeout and a bounded retry policy on every call, and one
activity that does a GET with a shared ``httpx.AsyncClient`` (connection pooling, no per-call setup).
The benchmark registers both on the very worker that runs Flowtide, so both sides share the server, the
worker settings and the event loop.

The module is imported by the workflow sandbox too: it has no import-time side effects and pulls
``httpx`` in through ``imports_passed_through`` so the sandbox does not re-import it on every run.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    import httpx

ACTIVITY_NAME = "bench.http_get"
WORKFLOW_NAME = "BaselineSequence"
# The same retry shape Flowtide uses for HTTP by default (2 retries, 1 s, x2): a fair comparison.
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_attempts=3)
TIMEOUT = timedelta(seconds=30)

_clients: dict[int, httpx.AsyncClient] = {}


def _client() -> httpx.AsyncClient:
    """One pooled client per event loop (the worker runs activities on its own loop)."""
    loop_id = id(asyncio.get_running_loop())
    client = _clients.get(loop_id)
    if client is None:
        client = _clients[loop_id] = httpx.AsyncClient(timeout=httpx.Timeout(30.0), trust_env=False)
    return client


async def close_clients() -> None:
    """Close the pooled clients (call before the event loop ends)."""
    for client in list(_clients.values()):
        await client.aclose()
    _clients.clear()


@activity.defn(name=ACTIVITY_NAME)
async def http_get(url: str) -> dict[str, Any]:
    """GET ``url``; fail (and let Temporal retry) on a 5xx; return the status and the JSON body.

    Args:
        url: the address to fetch.

    Returns:
        ``{"status": int, "body": Any}``.
    """
    response = await _client().get(url)
    if response.status_code >= 500:
        raise RuntimeError(f"GET {url} returned {response.status_code}")
    return {"status": response.status_code, "body": response.json()}


@workflow.defn(name=WORKFLOW_NAME)
class BaselineSequence:
    """Calls one activity ``steps`` times in a row and returns the last result."""

    @workflow.run
    async def run(self, params: dict[str, Any]) -> dict[str, Any]:
        """Run the sequence.

        Args:
            params: ``{"steps": int, "local": bool, "activity": str, "arg": Any}``. ``activity`` defaults to
                this module's ``http_get`` (then ``arg`` is the URL); the benchmark also passes Flowtide's
                ``core.http`` with a step task, to separate interpreter cost from activity cost. ``local``
                runs each call as a local activity (what Flowtide's ``execution: local`` does).

        Returns:
            The last activity result and the number of calls made.
        """
        name = params.get("activity") or ACTIVITY_NAME
        last: dict[str, Any] = {}
        for i in range(int(params["steps"])):
            options: dict[str, Any] = {"activity_id": f"step-{i}", "start_to_close_timeout": TIMEOUT,
                                       "retry_policy": RETRY, "result_type": dict}
            if params.get("local"):
                last = await workflow.execute_local_activity(name, params["arg"], **options)
            else:
                last = await workflow.execute_activity(name, params["arg"], **options)
        return {"calls": int(params["steps"]), "last": last}


WAITING_NAME = "BaselineWaiting"


@workflow.defn(name=WAITING_NAME)
class BaselineWaiting:
    """Waits for one signal ``go`` (what a hand-written approval step does) and returns its data."""

    def __init__(self) -> None:
        self.data: Any = None
        self.arrived = False

    @workflow.run
    async def run(self, params: dict[str, Any]) -> dict[str, Any]:
        """Wait up to ``params["timeout"]`` seconds for the signal."""
        await workflow.wait_condition(lambda: self.arrived, timeout=timedelta(seconds=float(params["timeout"])))
        return {"signal": "go", "data": self.data}

    @workflow.signal(name="go")
    def go(self, data: Any) -> None:
        """The signal the run waits for."""
        self.data, self.arrived = data, True

    @workflow.query(name="state")
    def state(self) -> str:
        """Whether the run still waits (``paused``) or was signalled (``running``)."""
        return "running" if self.arrived else "paused"


LOOP_NAME = "BaselineLoop"
BATCH_NAME = "BaselineLoopBatch"


@workflow.defn(name=BATCH_NAME)
class BaselineLoopBatch:
    """One batch of a hand-written loop: GET each item, ``concurrency`` at a time; failed items are counted."""

    @workflow.run
    async def run(self, params: dict[str, Any]) -> dict[str, int]:
        """Run items ``offset .. offset + count - 1``; return the succeeded and failed counts."""
        gate = asyncio.Semaphore(int(params["concurrency"]))
        counts = {"succeeded": 0, "failed": 0}

        async def one(i: int) -> None:
            async with gate:
                try:
                    await workflow.execute_activity(ACTIVITY_NAME, f"{params['url']}/customers/{i}",
                                                    activity_id=f"item-{i}", start_to_close_timeout=TIMEOUT,
                                                    retry_policy=RETRY)
                    counts["succeeded"] += 1
                except ActivityError:
                    counts["failed"] += 1

        start = int(params["offset"])
        await asyncio.gather(*(one(i) for i in range(start, start + int(params["count"]))))
        return counts


@workflow.defn(name=LOOP_NAME)
class BaselineLoop:
    """A hand-written loop in the shape Flowtide uses: one child workflow per batch of items, in turn."""

    @workflow.run
    async def run(self, params: dict[str, Any]) -> dict[str, int]:
        """Loop over ``range(items)`` in batches of ``batch``; return the total counts."""
        total = {"succeeded": 0, "failed": 0}
        items, batch = int(params["items"]), int(params["batch"])
        for n, offset in enumerate(range(0, items, batch)):
            part = {"offset": offset, "count": min(batch, items - offset), "concurrency": params["concurrency"],
                    "url": params["url"]}
            res = await workflow.execute_child_workflow(BATCH_NAME, part, id=f"{workflow.info().workflow_id}-b{n}")
            total["succeeded"] += res["succeeded"]
            total["failed"] += res["failed"]
        return total
