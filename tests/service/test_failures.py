"""When parts are missing: Temporal or the database unreachable (503), a bug (500 with a logged request id)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx

from flowtide.dev.server import free_port
from flowtide.service.app import build_service, create_app
from tests.service.test_rest import assert_error
from tests.support.service import ECHO


def _client(svc) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(svc)), base_url="http://api")


async def test_temporal_down_is_503_and_healthz_says_so(tmp_path: Path):
    svc = await asyncio.to_thread(build_service, database_url=f"sqlite:///{tmp_path / 'a.db'}",
                                  temporal_address=f"127.0.0.1:{free_port()}")
    await asyncio.to_thread(svc.store.create_project, "acme")
    key = (await asyncio.to_thread(svc.store.create_key, "acme", "admin"))[1]
    headers = {"authorization": f"Bearer {key}", "x-project-id": "acme"}
    async with _client(svc) as http:
        assert (await http.put("/v1/flows/echo", json=ECHO, headers=headers)).status_code == 201
        r = await http.post("/v1/flows/echo/runs", json={"input": {"n": 1}}, headers=headers)
        assert_error(r, 503, "TEMPORAL_UNAVAILABLE")
        assert svc.temporal_address not in r.text  # the operator's log names Temporal's address; a caller never
        r = await http.get("/healthz")
        assert r.status_code == 503 and r.json() == {"ok": False, "temporal": False, "database": True}


async def test_database_down_is_503(tmp_path: Path, client):
    svc = await asyncio.to_thread(build_service, database_url=f"sqlite:///{tmp_path / 'b.db'}", client=client)
    svc.store.engine.dispose()
    (tmp_path / "b.db").unlink()
    (tmp_path / "b.db").mkdir()  # a directory where the file was: every connection fails
    async with _client(svc) as http:
        r = await http.get("/v1/flows", headers={"authorization": "Bearer ftk_x", "x-project-id": "acme"})
        assert_error(r, 503, "TEMPORAL_UNAVAILABLE")
        assert (await http.get("/healthz")).json()["database"] is False


async def test_a_bug_is_500_with_a_logged_request_id_and_no_traceback(tmp_path: Path, client, caplog, capsys):
    svc = await asyncio.to_thread(build_service, database_url=f"sqlite:///{tmp_path / 'c.db'}", client=client)
    await asyncio.to_thread(svc.store.create_project, "acme")
    key = (await asyncio.to_thread(svc.store.create_key, "acme", "read"))[1]

    def broken(project: str) -> None:
        raise RuntimeError("boom in flows()")

    svc.store.flows = broken  # a fault injected into the database layer, not into the error handling under test
    caplog.set_level(logging.ERROR)
    async with _client(svc) as http:
        r = await http.get("/v1/flows", headers={"authorization": f"Bearer {key}", "x-project-id": "acme"})
    err = assert_error(r, 500, "INTERNAL")
    rid = err["extensions"]["requestId"]
    assert rid in err["message"] and "boom" not in r.text
    out = capsys.readouterr()
    logged = caplog.text + out.out + out.err
    assert rid in logged and "boom in flows()" in logged
