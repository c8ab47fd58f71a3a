"""Webhook signatures: parsed before anything else (401, never 500), and accepted once across replicas.

Two service instances share one database (SQLite, then PostgreSQL): a signed request accepted by one is
refused by the other (409 ``CONFLICT``, ``reason: WEBHOOK_REPLAYED``), also when both arrive together.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

from flowtide.dev.server import free_port
from flowtide.service.hooks import sign
from tests.support.postgres import fresh_database, postgres_cluster
from tests.support.service import Api, new_id, running_api

PLAIN = {"steps": [{"stepId": "answer", "stepType": "core.return", "input": {"output": {"n": "{{ initial.n }}"}}}]}
MALFORMED = [
    "", "t=", "v1=", "t=1", "garbage", "t=abc,v1=00", "t=²,v1=" + "0" * 64, "t=٣,v1=" + "0" * 64,
    "t=+1700000000,v1=" + "0" * 64, "t= 1700000000x,v1=" + "0" * 64, "t=1_700_000_000,v1=" + "0" * 64,
    "t=" + "9" * 5000 + ",v1=" + "0" * 64, "t=1700000000,v1=zz" + "0" * 62, "t=1700000000,v1=" + "0" * 63,
    "t=1700000000,v1=" + "0" * 5000, "t=1,t=2,v1=" + "0" * 64, "t=1700000000,v1=" + "0" * 64 + ",v1=" + "1" * 64,
    ",,,,", "=" * 600, "t=1700000000;v1=" + "0" * 64, "t=\t1", "t=1700000000,v1=" + "é" * 64,
]


@pytest.fixture(autouse=True)
def plain_structlog() -> Any:
    before = structlog.get_config()
    structlog.reset_defaults()
    yield
    structlog.configure(**before)


@pytest.fixture(scope="module")
def pg_base() -> Any:
    with postgres_cluster() as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
async def replicas(request: pytest.FixtureRequest, client: Any,
                   tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Api, str]]:
    """Two service instances on one database: ``(first, base URL of the second)``."""
    from flowtide.client.cli.service import serving
    url = fresh_database(request.param, Path(tmp_path_factory.mktemp("hooks")), request, "pg_base")
    tq = f"tq-hook-{uuid.uuid4().hex[:8]}"
    async with running_api(client, url, tq) as first:
        port = free_port()
        async with serving("127.0.0.1", port, client, tq, url):
            yield first, f"http://127.0.0.1:{port}"


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=30) as c:
        yield c


async def _hook(api: Api, http: httpx.AsyncClient) -> tuple[str, str]:
    fid = new_id("hook")
    await api.deploy(http, {**PLAIN, "id": fid})
    return fid, await asyncio.to_thread(api.svc.store.set_hook_secret, "acme", fid)


def _code(r: httpx.Response) -> str:
    assert "Traceback" not in r.text
    return str(r.json()["errors"][0]["extensions"]["code"])


async def test_malformed_signatures_are_401_before_anything_else(replicas: tuple[Api, str],
                                                                 http: httpx.AsyncClient) -> None:
    api, _ = replicas
    fid, _ = await _hook(api, http)
    for header in MALFORMED:
        r = await http.post(api.url(f"/v1/hooks/acme/{fid}"), content=b'{"n": 1}',
                            headers={"content-type": "application/json", "x-flowtide-signature": header.encode()})
        assert (r.status_code, _code(r)) == (401, "UNAUTHENTICATED"), (header[:40], r.status_code, r.text[:200])
    # parsed first: a malformed header is refused even for a flow that does not exist, with no body read
    r = await http.post(api.url("/v1/hooks/acme/no-such-flow"), content=b"{",
                        headers={"content-type": "text/plain", "x-flowtide-signature": "t=x"})
    assert (r.status_code, _code(r)) == (401, "UNAUTHENTICATED") and "malformed" in r.text


async def test_a_signed_request_is_accepted_once_on_every_replica(replicas: tuple[Api, str],
                                                                  http: httpx.AsyncClient) -> None:
    api, other = replicas
    fid, secret = await _hook(api, http)
    body, t0 = json.dumps({"n": 5}).encode(), int(time.time())
    headers = {"content-type": "application/json", "x-flowtide-signature": sign(secret, body, t0)}
    r = await http.post(api.url(f"/v1/hooks/acme/{fid}"), content=body, headers=headers)
    assert r.status_code == 200 and r.json() == {"n": 5}, r.text
    for base in (api.base, other):  # the same replica, and the other one
        r = await http.post(f"{base}/v1/hooks/acme/{fid}", content=body, headers=headers)
        assert (r.status_code, _code(r)) == (409, "CONFLICT"), r.text
        assert r.json()["errors"][0]["extensions"]["reason"] == "WEBHOOK_REPLAYED"
    # a new timestamp is a new delivery; both replicas race for one signature: exactly one wins
    headers["x-flowtide-signature"] = sign(secret, body, t0 - 10)
    answers = await asyncio.gather(*(http.post(f"{base}/v1/hooks/acme/{fid}", content=body, headers=headers)
                                     for base in (api.base, other, api.base, other)))
    assert sorted(a.status_code for a in answers) == [200, 409, 409, 409], [a.text for a in answers]
    # a delivery that started nothing (here: no flow deployed under that id yet) may be sent again as it was
    ghost = new_id("ghost")
    secret2 = await asyncio.to_thread(api.svc.store.set_hook_secret, "acme", ghost)
    headers["x-flowtide-signature"] = sign(secret2, body)
    for base in (api.base, other):
        r = await http.post(f"{base}/v1/hooks/acme/{ghost}", content=body, headers=headers)
        assert (r.status_code, _code(r)) == (404, "NOT_FOUND"), r.text


async def test_expired_signatures_are_purged(replicas: tuple[Api, str]) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import select

    from flowtide.store.schema import webhook_signatures
    store = (replicas[0]).svc.store
    soon, gone = datetime.now(UTC) + timedelta(seconds=300), datetime.now(UTC) - timedelta(seconds=1)
    hook = f"test/{uuid.uuid4().hex[:8]}"
    assert await asyncio.to_thread(store.claim_signature, hook, "a" * 64, soon)
    assert not await asyncio.to_thread(store.claim_signature, hook, "a" * 64, soon)
    assert await asyncio.to_thread(store.claim_signature, hook, "b" * 64, gone)  # expired: purged at once
    with store.engine.connect() as conn:
        left = conn.execute(select(webhook_signatures.c.digest).where(webhook_signatures.c.hook == hook)).scalars()
        assert list(left) == ["a" * 64]
