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
