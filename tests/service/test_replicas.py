"""Two replicas of the service on one database (PostgreSQL, then SQLite) share what the service keeps.

Two apps in this process, each its own uvicorn on its own port and its own ``Store`` (engine and pool), as two
machines would have: a browser signed in on one is signed in on the other, a key's rate limit is one limit
across both (also when they are hit at once), sign-in attempts count on both, and a cancel accepted by a
replica that dies is still settled by the other one.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from temporalio.client import WorkflowExecutionStatus
from temporalio.worker import Worker

from flowtide.client.cancel import TERMINATE_REASON
from flowtide.dev.server import free_port
from flowtide.service import cancels
from flowtide.service.auth import RateLimiter
from flowtide.service.web.session import SIGNIN_PER_KEY
from tests.security.test_values_cancel import BadDeployInterpreter
from tests.support.postgres import fresh_database
from tests.support.service import Api, new_id, running_api
from tests.support.web import csrf, sign_in_http, signin_token


class Pair:
    """Two replicas: ``a`` (with the keys and a worker) and ``b``, on the database ``url``, task queue ``tq``."""

    def __init__(self, a: Api, b_base: str, b_svc: Any, url: str, tq: str) -> None:
        self.a, self.b_base, self.b_svc, self.url, self.tq = a, b_base, b_svc, url, tq
        self.bases = [a.base, b_base]


@pytest.fixture(params=["postgresql", "sqlite"])
async def pair(request: pytest.FixtureRequest, client: Any, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Pair]:
    from flowtide.client.cli.service import serving
    monkeypatch.setattr(cancels, "CANCEL_GRACE_S", 2.0)
    monkeypatch.setattr(cancels, "LEASE_S", 1.0)
    monkeypatch.setattr(cancels, "SWEEP_S", 0.3)
    url = fresh_database(request.param, tmp_path, request)
    tq = f"tq-rep-{uuid.uuid4().hex[:8]}"
    async with running_api(client, url, tq) as a:
        port = free_port()
        async with serving("127.0.0.1", port, client, tq, url) as server:
            yield Pair(a, f"http://127.0.0.1:{port}", server.config.app.state.svc, url, tq)


async def test_a_browser_signed_in_on_one_replica_is_signed_in_on_the_other(pair: Pair) -> None:
    key = pair.a.keys["acme"]["read"]
    async with httpx.AsyncClient(timeout=30) as http:  # one cookie jar for both (one origin behind a balancer)
        token = csrf((await http.get(pair.a.base + "/signin")).text)  # the form of one replica ...
        r = await http.post(pair.b_base + "/signin", data={"key": key, "next": "/runs", "csrf": token})
        assert r.status_code == 303, r.text  # ... posted to the other
        for base in pair.bases * 2:  # round robin, no sticky sessions
            page = await http.get(base + "/runs")
            assert page.status_code == 200 and "/signin" not in str(page.url), base
        sid = http.cookies["flowtide_session"]
        with pair.a.svc.store.engine.connect() as conn:
            stored = [tuple(r) for r in conn.execute(text("SELECT id_hash, key_id FROM web_sessions"))]
        assert len(stored) == 1 and sid not in stored[0] and not any(key in str(v) for v in stored[0])
        page = await http.get(pair.b_base + "/runs")
        r = await http.post(pair.a.base + "/signout", data={"csrf": csrf(page.text)})
        assert r.status_code == 303
        http.cookies.set("flowtide_session", sid)  # the old cookie, replayed at the other replica
        r = await http.get(pair.b_base + "/runs", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/signin")


async def test_a_keys_rate_limit_is_one_limit_across_replicas(pair: Pair) -> None:
    name, burst = new_id("limit"), 10
    for svc in (pair.a.svc, pair.b_svc):  # each replica its own limiter object, over its own engine
        svc.limiter = RateLimiter(svc.store, rate=0.01, burst=burst, name=name)
    headers = pair.a.headers("read")
    async with httpx.AsyncClient(timeout=30) as http:
        one_by_one = [(await http.get(pair.bases[i % 2] + "/v1/flows", headers=headers)).status_code
                      for i in range(2 * burst)]
        assert one_by_one.count(200) == burst and one_by_one[burst:] == [429] * burst
        for svc in (pair.a.svc, pair.b_svc):
            svc.limiter = RateLimiter(svc.store, rate=0.01, burst=burst, name=name + "-together")
        together = await asyncio.gather(*(http.get(pair.bases[i % 2] + "/v1/flows", headers=headers)
                                          for i in range(4 * burst)))
    codes = [r.status_code for r in together]
    assert codes.count(200) == burst and codes.count(429) == 3 * burst, codes


async def test_sign_in_attempts_count_on_every_replica(pair: Pair) -> None:
    guessed = "ftk_guess-" + uuid.uuid4().hex
    codes = []
    for i in range(int(SIGNIN_PER_KEY[1]) + 1):
        async with httpx.AsyncClient(base_url=pair.bases[i % 2], timeout=30) as site:
            token = await signin_token(site)
            codes.append((await site.post("/signin", data={"key": guessed, "csrf": token})).status_code)
    assert codes == [401] * int(SIGNIN_PER_KEY[1]) + [429]
    async with httpx.AsyncClient(base_url=pair.b_base, timeout=30) as site:
        assert (await sign_in_http(site, pair.a.keys["acme"]["read"])).status_code == 303


async def test_a_cancel_accepted_by_a_replica_that_dies_is_settled_by_the_other(
        pair: Pair, client: Any, task_queue: str) -> None:
    from flowtide.client.cli.service import serving
    from flowtide.client.runs import start_run
    from flowtide.workflows.language.dsl import parse_flow
    flow = parse_flow({"id": "stuck", "steps": [{"stepId": "x", "stepType": "core.set-variable",
                                                 "input": {"x": 1}}]}, source="test")
    async with Worker(client, task_queue=task_queue, workflows=[BadDeployInterpreter]):
        handle = await start_run(client, flow, {}, task_queue=task_queue, project_id="acme")
        for _ in range(100):  # until its first workflow task has failed and is being retried
            if (await handle.describe()).raw_description.pending_workflow_task.attempt > 1:
                break
            await asyncio.sleep(0.1)
        port = free_port()
        async with serving("127.0.0.1", port, client, pair.tq, pair.url) as server:  # replica c
            async with httpx.AsyncClient(timeout=30) as http:
                for _ in range(50):  # visibility lists the run a moment after it starts
                    r = await http.post(f"http://127.0.0.1:{port}/v1/runs/{handle.id}/cancel",
                                        headers=pair.a.headers("run"))
                    if r.status_code != 404:
                        break
                    await asyncio.sleep(0.2)
            assert r.status_code == 202, r.text
            assert len(server.config.app.state.svc.tasks) == 1  # c settles it ...
        # ... but stops before its grace period is over: the row it leased is left to the others
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        for _ in range(100):
            if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
                break
            await asyncio.sleep(0.2)
    assert (await handle.describe()).status == WorkflowExecutionStatus.TERMINATED
    reasons = [e.workflow_execution_terminated_event_attributes.reason async for e in handle.fetch_history_events()
               if e.HasField("workflow_execution_terminated_event_attributes")]
    assert reasons == [TERMINATE_REASON]
    with pair.a.svc.store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM cancel_watches")).scalar() == 0


async def test_long_bucket_names_are_hashed_not_cut(tmp_path: Path) -> None:
    from flowtide.service.errors import ApiError
    from flowtide.store.database import Store
    store = Store(f"sqlite:///{tmp_path / 'flowtide.db'}")
    store.migrate()
    limiter = RateLimiter(store, rate=0.01, burst=1)
    long_flow = "hook:acme/" + "x" * 190  # two webhooks whose flow ids differ only past 120 characters
    await limiter.take(long_flow + "1")
    await limiter.take(long_flow + "2")
    with pytest.raises(ApiError):
        await limiter.take(long_flow + "1")


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_session_caps_hold_when_replicas_sign_in_at_the_same_moment(kind: str, tmp_path: Path,
                                                                    request: pytest.FixtureRequest) -> None:
    """Two replicas (two engines on one database), eight threads each, all signing in at once: the key's cap and
    the table's cap are exact, not "within one or two"."""
    import threading

    from flowtide.store.database import Store
    from flowtide.store.replicas import SessionsFull, create_session
    url = fresh_database(kind, tmp_path, request)
    stores = [Store(url), Store(url)]
    stores[0].migrate()
    stores[0].create_project("acme")
    keys = [stores[0].create_key("acme", "read")[0] for _ in range(4)]

    def burst(per_key: int, max_sessions: int, key_of: Any) -> int:
        start, refused = threading.Barrier(16), []

        def sign_in(i: int) -> None:
            start.wait()
            try:
                create_session(stores[i % 2], key_of(i), 600, max_sessions, per_key)
            except SessionsFull:
                refused.append(i)
        threads = [threading.Thread(target=sign_in, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        return len(refused)

    def live(key_id: str | None = None) -> int:
        with stores[0].engine.connect() as conn:
            where = " WHERE key_id = :k" if key_id else ""
            return int(conn.execute(text(f"SELECT count(*) FROM web_sessions{where}"), {"k": key_id}).scalar() or 0)

    assert burst(per_key=3, max_sessions=1000, key_of=lambda i: keys[0]) == 0
    assert live(keys[0]) == 3  # the key's oldest made room, one at a time
    # three more keys into a table of 9: which sign-ins find it full depends on the order (a key with a session
    # replaces its own oldest, one without is refused), but the caps never depend on it
    burst(per_key=5, max_sessions=9, key_of=lambda i: keys[1 + i % 3])
    assert live() == 9 and live(keys[0]) == 3  # full, and no other key's session was taken to make room
    assert all(live(k) <= 5 for k in keys[1:])
    with pytest.raises(SessionsFull):  # a key with no session of its own finds the table full
        create_session(stores[1], stores[0].create_key("acme", "read")[0], 600, 9, 5)
    for store in stores:
        store.engine.dispose()
