"""A run that continued as new is one run for REST and the pages too; a body that never arrives is a 408.

The chain tests make real runs continue as new (a tiny ``continueAsNewEvents``, as tests/workflows/
test_long_runs.py does) and steer them by their FIRST run id, the id the start answer and the list give.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
import structlog.testing

from tests.support.rest_api import api_fixture, http_fixture
from tests.support.service import Api, new_id
from tests.support.web import csrf, sign_in_http
from tests.workflows.test_long_runs import cycle, runs_so_far

WAITS = [{"id": "wait-go", "action": "core.wait-for-signal", "parameters": {"signal": "go", "timeout": 120},
          "next": "end"},
         {"id": "end", "action": "core.return", "parameters": {"output": {"go": "{{ wait-go.data }}",
                                                                        "n": "{{ vars.n }}"}}}]


api = api_fixture("chains")
http = http_fixture()


async def _chained(api: Api, http: httpx.AsyncClient, client: Any, doc: dict[str, Any]) -> dict[str, Any]:
    """Deploy ``doc`` under a new id, start it, and wait until it has continued as new twice."""
    fid = new_id("chain")
    await api.deploy(http, {**doc, "id": fid})
    r = await http.post(api.url(f"/v1/flows/{fid}/runs"), json={}, headers=api.headers("run"))
    assert r.status_code == 202, r.text
    started = r.json()
    await runs_so_far(client, started["workflowId"], 3)
    return dict(started)


async def _paused(client: Any, workflow_id: str) -> None:
    for _ in range(300):
        if (await client.get_workflow_handle(workflow_id).describe()).search_attributes.get("FlowStatus") == [
                "paused"]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{workflow_id} never waited for its signal")


async def _until(api: Api, http: httpx.AsyncClient, run_id: str, status: str) -> dict[str, Any]:
    """The run record once the run (read by ``run_id`` over REST) has ``status``."""
    for _ in range(200):
        rec = dict((await http.get(api.url(f"/v1/runs/{run_id}"), headers=api.headers("read"))).json())
        if rec["status"] == status:
            return rec
        await asyncio.sleep(0.1)
    raise AssertionError(f"run {run_id} is {rec['status']}, not {status}")


async def test_signal_and_rerun_take_the_first_run_id(api: Api, http: httpx.AsyncClient, client: Any) -> None:
    doc = cycle(15, events=30, extra=WAITS)
    doc["steps"][3]["condition"]["else"] = "wait-go"
    started = await _chained(api, http, client, doc)
    first = started["runId"]
    await _paused(client, started["workflowId"])
    r = await http.post(api.url(f"/v1/runs/{first}/signals/go"), json={"ok": 1}, headers=api.headers("run"))
    assert r.status_code == 202, r.text
    rec = await _until(api, http, first, "completed")
    assert rec["runId"] == first and rec["output"] == {"go": {"ok": 1}, "n": 15}
    r = await http.post(api.url(f"/v1/runs/{first}/rerun"), json={}, headers=api.headers("run"))
    assert r.status_code == 202, r.text
    async with httpx.AsyncClient(base_url=api.base, timeout=60) as page:
        assert (await sign_in_http(page, api.keys["acme"]["run"])).status_code == 303
        shown = await page.get(f"/runs/{first}")
        assert shown.status_code == 200 and first[:8] in shown.text
        plan = await page.get(f"/runs/{first}/rerun")
        assert plan.status_code == 200, plan.text[:500]
        token = csrf(plan.text)
        again = await page.post(f"/runs/{first}/rerun", data={"csrf": token})
        assert again.status_code == 303 and again.headers["location"].startswith("/runs/"), again.text[:300]


async def test_cancel_takes_the_first_run_id(api: Api, http: httpx.AsyncClient, client: Any) -> None:
    started = await _chained(api, http, client, cycle(10**9, events=30))
    r = await http.post(api.url(f"/v1/runs/{started['runId']}/cancel"), headers=api.headers("run"))
    assert r.status_code == 202, r.text
    assert (await _until(api, http, started["runId"], "cancelled"))["chain"]["runs"] >= 3


async def _stalled(api: Api, request: bytes, body: bytes, trickle: float | None) -> tuple[bytes, float]:
    """Send ``request`` (head) and then ``body`` slowly (a byte every ``trickle`` s) or not at all."""
    host, port = api.base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    t0 = time.monotonic()
    writer.write(request)
    await writer.drain()

    async def dribble() -> None:
        for b in body if trickle is not None else b"":
            writer.write(bytes([b]))
            await writer.drain()
            await asyncio.sleep(trickle or 0)

    sender = asyncio.create_task(dribble())
    try:
        answer = await asyncio.wait_for(reader.read(4096), timeout=15)
    finally:
        sender.cancel()
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass
    return answer, time.monotonic() - t0


@pytest.mark.parametrize("trickle", [None, 0.2])
async def test_a_body_that_stops_or_trickles_is_408(api: Api, trickle: float | None) -> None:
    api.svc.body_timeout = 1.0
    try:
        body = b'{"input": {"n": 1}, "pad": "' + b"x" * 200 + b'"}'
        for path, ctype, headers in (
                ("/v1/flows/whatever/runs", "application/json", api.headers("run")),
                ("/signin", "application/x-www-form-urlencoded", {})):
            head = (f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: {ctype}\r\n"
                    f"content-length: {len(body)}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                    + "\r\n").encode()
            answer, took = await _stalled(api, head, body, trickle)
            assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
            assert b"REQUEST_TIMEOUT" in answer and took < 5, (answer[:300], took)
    finally:
        api.svc.body_timeout = 30.0


async def test_a_client_that_leaves_mid_body_is_not_an_internal_error(api: Api) -> None:
    body = b'{"input": {"n": 1}, "pad": "' + b"x" * 200 + b'"}'
    head = (f"POST /v1/flows/whatever/runs HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in api.headers("run").items())
            + "\r\n").encode()
    host, port = api.base.removeprefix("http://").split(":")
    with structlog.testing.capture_logs() as logs:
        _reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(head + body[:40])
        await writer.drain()
        await asyncio.sleep(0.3)
        writer.close()  # gone before the rest of the body
        await asyncio.sleep(1.0)
    assert not [e for e in logs if e.get("event") == "internal error"], logs
