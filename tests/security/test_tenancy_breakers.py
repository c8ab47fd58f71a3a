"""Circuit breakers are a project's own: project A's failures open A's breaker of a host, never B's (real
runs through Temporal against a real local HTTP service), unless the operator shares the breaker."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from flowtide.client.runs import start_run, wait_record
from flowtide.store.breakers import SHARED_MAX_OPEN_S, SHARED_MIN_FAILURES, breaker_key, list_breakers
from flowtide.workflows.language.dsl import parse_flow
from tests.support.cli import flowtide
from tests.support.flows import step

pytestmark = pytest.mark.usefixtures("worker")
BREAKER = {"failureThreshold": 2, "windowSeconds": 60, "openSeconds": 86_400}  # a tenant asking for a day


@pytest.fixture(autouse=True)
def breakers_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "breakers.db"
    monkeypatch.setenv("FLOWTIDE_BREAKERS_DB", str(path))  # the in-process worker reads it at every call
    monkeypatch.delenv("FLOWTIDE_BREAKERS_SHARED", raising=False)
    return path


async def _code(client: Any, task_queue: str, url: str, project: str | None) -> str | None:
    doc = {"id": "breaker-scope", "steps": [{"stepId": "call", "stepType": "core.http", "circuitBreaker": BREAKER,
                                             "retryPolicy": {"maxRetries": 0}, "input": {"url": url}}]}
    rec = await wait_record(await start_run(client, parse_flow(doc), {}, task_queue=task_queue, project_id=project))
    return None if rec["status"] == "completed" else step(rec, "call")["error"]["code"]


async def _open_for_a(client: Any, task_queue: str, service: Any, path: str, failures: int = 2) -> None:
    service.plan(path, *[503] * 100)
    for _ in range(failures):
        assert await _code(client, task_queue, service.url + path, "acme") == "HTTP_SERVER_ERROR"
    before = service.calls[path]
    assert await _code(client, task_queue, service.url + path, "acme") == "CIRCUIT_OPEN"
    assert service.calls[path] == before  # acme's breaker is open: the host was not called


async def test_one_projects_failures_never_refuse_another_projects_calls(client: Any, task_queue: str,
                                                                        service: Any, capsys: Any) -> None:
    path = "/status/200"
    await _open_for_a(client, task_queue, service, path)
    for other in ("other", None):  # another project, and a run outside any project (the "no project" scope)
        before = service.calls[path]
        assert await _code(client, task_queue, service.url + path, other) == "HTTP_SERVER_ERROR"
        assert service.calls[path] == before + 1  # the call was made
    code, out, _ = await flowtide(capsys, "breakers", "list", "--json")
    listed = {(b["project"], b["key"]): b["state"] for b in json.loads(out)}
    key = breaker_key("core.http", {"url": service.url + path})
    assert listed[("acme", f"[acme] {key}")] == "open" and listed[(None, key)] == "closed"
    assert listed[("other", f"[other] {key}")] == "closed"
    code, out, _ = await flowtide(capsys, "breakers", "reset", key, "--project", "acme")
    assert code == 0
    service.plan(path)
    assert await _code(client, task_queue, service.url + path, "acme") is None


async def test_a_breaker_the_operator_shares_is_every_projects(client: Any, task_queue: str, service: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWTIDE_BREAKERS_SHARED", "127.0.0.1")
    path = "/status/200"
    # a shared breaker is held to the shared bounds: at least 5 failures, open at most 60 s, whatever a flow asks
    await _open_for_a(client, task_queue, service, path, failures=SHARED_MIN_FAILURES)
    [row] = [r for r in list_breakers() if r["key"].startswith("127.0.0.1")]
    assert row["state"] == "open" and 0 < row["openForS"] <= SHARED_MAX_OPEN_S, row
    before = service.calls[path]
    assert await _code(client, task_queue, service.url + path, "other") == "CIRCUIT_OPEN"
    assert service.calls[path] == before
    service.plan(path)


async def test_rows_of_an_older_breakers_file_stay_readable(breakers_db: Path, capsys: Any) -> None:
    from flowtide.store.breakers import SCHEMA
    with sqlite3.connect(breakers_db) as conn:
        conn.execute(SCHEMA)
        conn.execute("INSERT INTO breakers VALUES ('api.example.test:443', 'open', '[]', ?, 0, 1, ?, ?)",
                     (time.time() + 60, json.dumps(BREAKER), time.time()))
    code, out, _ = await flowtide(capsys, "breakers", "list")
    assert code == 0 and "-" in out.splitlines()[1] and "api.example.test:443" in out and "open" in out
    assert breaker_key("core.http", {"url": "https://api.example.test"}) == "api.example.test"  # no project
    assert (await flowtide(capsys, "breakers", "reset", "api.example.test:443"))[0] == 0
