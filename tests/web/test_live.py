"""Live updates: the server-sent event streams over real HTTP against a real run (through a second replica),
their bounds and heartbeats, and a runs list row that changes in Chromium without a reload."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from flowtide.client.inspect import OPEN_STATUSES
from flowtide.dev.server import free_port
from flowtide.service.web import live
from tests.support.service import WAITS, new_id
from tests.support.web import sign_in, sign_in_http, start, until


@pytest.fixture
async def replica(site: Any, client: Any) -> AsyncIterator[str]:
    """A second ``serve`` replica on the same database and Temporal, without a worker of its own."""
    from flowtide.client.cli.service import serving
    port = free_port()
    url = site.svc.store.engine.url.render_as_string(hide_password=False)
    async with serving("127.0.0.1", port, client, site.task_queue, url):
        yield f"http://127.0.0.1:{port}"


@contextlib.asynccontextmanager
async def signed_in_client(base: str, key: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client with a browser session of ``key`` (signed in through the form)."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        assert (await sign_in_http(http, key)).status_code == 303
        yield http


async def events(r: httpx.Response) -> AsyncIterator[tuple[str, Any]]:
    """``(name, data)`` of each event of an open stream; ``("heartbeat", None)`` for a comment line."""
    name = None
    async for line in r.aiter_lines():
        if line.startswith(": "):
            yield "heartbeat", None
        elif line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: ") and name:
            yield name, json.loads(line[6:])
            name = None


async def held_run(site: Any, http: httpx.AsyncClient) -> dict[str, Any]:
    flow = {**WAITS, "id": new_id("live")}
    await site.deploy(http, flow)
    return {**await start(site, http, flow["id"], {}), "flowId": flow["id"]}


async def test_a_run_streams_through_another_replica_until_it_ends(site, replica, monkeypatch):
    monkeypatch.setattr(live, "HEARTBEAT_S", 0.5)
    async with httpx.AsyncClient(timeout=30) as api:
        run = await held_run(site, api)  # started through replica A (the one with the worker)
        seen: list[tuple[str, Any]] = []
        t0 = time.monotonic()
        async with signed_in_client(replica, site.keys["acme"]["read"]) as browser, \
                browser.stream("GET", f"/live/runs/{run['runId']}") as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            assert r.headers["cache-control"] == "no-store"
            async for name, data in events(r):
                seen.append((name, data))
                if name == "heartbeat" and not any(n == "heartbeat" for n, _ in seen[:-1]):
                    signal = await api.post(site.url(f"/v1/runs/{run['runId']}/signals/go"), json={},
                                            headers=site.headers("run"))
                    assert signal.status_code == 202
        # the stream closed itself at the terminal status
        names = [n for n, _ in seen]
        assert names[0] == "run" and seen[0][1]["status"] == "running" and "heartbeat" in names
        assert names[-1] == "end" and seen[-1][1]["status"] == "completed"
        assert time.monotonic() - t0 < 20


async def test_the_list_stream_sees_a_new_run_and_bad_requests_are_answered(site, monkeypatch):
    async with httpx.AsyncClient(timeout=30) as api:
        run = await held_run(site, api)
        async with signed_in_client(site.base, site.keys["acme"]["read"]) as browser:
            async with browser.stream("GET", f"/live/runs?flowId={run['flowId']}") as r:
                assert r.status_code == 200
                stream = events(r)

                async def listed(run_id: str) -> list[list[str]]:
                    while True:  # visibility is eventually consistent: the run shows up in a later event
                        name, rows = await asyncio.wait_for(anext(stream), 15)
                        if name == "runs" and run_id in [x[0] for x in rows]:
                            return list(rows)
                assert (await listed(run["runId"]))[0][1] in OPEN_STATUSES
                second = await start(site, api, run["flowId"], {})
                rows = await listed(second["runId"])
                assert [x[0] for x in rows] == [second["runId"], run["runId"]]
            assert (await browser.get("/live/runs?status=nope")).status_code == 400
            assert (await browser.get("/live/runs/not-a-run-of-acme")).status_code == 404
        anonymous = await httpx.AsyncClient(base_url=site.base).get(f"/live/runs/{run['runId']}")
        assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/signin")


async def test_streams_are_bounded_per_session_and_key_and_given_back_when_the_client_leaves(site, monkeypatch):
    monkeypatch.setattr(live, "MAX_STREAMS_PER_SESSION", 2)
    async with httpx.AsyncClient(timeout=30) as api:
        run = await held_run(site, api)
        path = f"/live/runs/{run['runId']}"
        async with signed_in_client(site.base, site.keys["acme"]["read"]) as browser, \
                signed_in_client(site.base, site.keys["acme"]["read"]) as other:
            async with browser.stream("GET", path) as one, browser.stream("GET", path) as two:
                assert one.status_code == two.status_code == 200
                third = await browser.get(path)
                assert third.status_code == 429 and "at most 2 live streams" in third.text
                assert third.headers["retry-after"] == "10"
                async with other.stream("GET", path) as elsewhere:  # another session has its own bound
                    assert elsewhere.status_code == 200
                    monkeypatch.setattr(live, "MAX_STREAMS_PER_KEY", 3)  # ... within its key's
                    by_key = await other.get(path)
                    assert by_key.status_code == 429 and "at most 3 live streams per key" in by_key.text
                    monkeypatch.setattr(live, "MAX_STREAMS_PER_KEY", 32)
            # both streams left: their slots come back (the server saw the disconnect), two open again

            async def reopened() -> bool:
                async with browser.stream("GET", path) as a, browser.stream("GET", path) as b:
                    return a.status_code == b.status_code == 200
            assert await until(reopened, 10)


async def test_a_list_row_changes_without_a_reload(site, browser):
    async with httpx.AsyncClient(timeout=30) as api:
        run = await held_run(site, api)
        ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
        ctx.set_default_timeout(10_000)
        page = await ctx.new_page()
        errors: list[str] = []
        # failed loads are seen as responses (Chromium's own /favicon.ico request is not one of the page's)
        page.on("console", lambda m: errors.append(m.text) if m.type == "error"
                and not m.text.startswith("Failed to load resource") else None)
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        await sign_in(page, site, then=f"/runs?flowId={run['flowId']}")
        row = page.locator("#runs-live table.runs tbody tr").first
        assert "Completed" not in await row.inner_text()
        await page.evaluate("window.stillTheSamePage = true")
        r = await api.post(site.url(f"/v1/runs/{run['runId']}/signals/go"), json={}, headers=site.headers("run"))
        assert r.status_code == 202

        async def completed() -> bool:
            return "Completed" in await page.locator("#runs-live table.runs tbody tr").first.inner_text()
        assert await until(completed, 15), "the row did not change"
        assert await page.evaluate("window.stillTheSamePage === true"), "the page was reloaded"
        assert not errors, errors
        await ctx.close()
