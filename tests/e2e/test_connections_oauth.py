"""Connections end to end: a real OAuth2 token endpoint and API on loopback, a real Temporal dev server.

One oauth2 connection goes through its life: the first use obtains a token (20 concurrent steps, one
refresh), a revoked token (401) is refreshed once and the request sent again, an expired token is refreshed
before use, a refused refresh fails the step with AUTH_REAUTHORIZATION_REQUIRED and puts the connection in
state ``error``, ``reconnect`` puts it back and ``rerun --from-failed`` succeeds. No credential value shows
in a history, a run record, a log line or a CLI answer.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from flowtide.client.runs import start_run, wait_record
from flowtide.store.connections import Connections
from flowtide.store.database import Store, now
from flowtide.store.schema import connections
from flowtide.workflows.language.dsl import parse_flow
from tests.reliability.canary import history_json, hits
from tests.support.cli import flowtide
from tests.support.flows import step
from tests.support.oauth_server import OAuthWorld


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dev_server: Any) -> Connections:
    """A migrated SQLite service database shared by this process's worker and CLI, and a secret key."""
    url = f"sqlite:///{tmp_path / 'flowtide.db'}"
    monkeypatch.setenv("FLOWTIDE_DATABASE_URL", url)
    monkeypatch.setenv("FLOWTIDE_SECRET_KEY", "k-" + secrets.token_hex(20))
    monkeypatch.setenv("TEMPORAL_ADDRESS", dev_server.address)
    store = Store(url)
    store.migrate()
    return Connections(store)


def api_flow(api: str, n: int = 1) -> dict[str, Any]:
    call = {"stepId": "call", "stepType": "core.http", "connection": "crm", "retryPolicy": {"maxRetries": 2,
            "delayMs": 100}, "input": {"url": api + "/api"}}
    if n == 1:
        return {"id": "crm-call", "steps": [call]}
    return {"id": "crm-fanout", "steps": [{"stepId": "each", "stepType": "core.for-each", "input": {
        "items": list(range(n)), "concurrency": n, "steps": [call]}}]}


async def run(client: Any, task_queue: str, doc: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    handle = await start_run(client, parse_flow(doc, source="test"), {}, task_queue=task_queue)
    return await wait_record(handle), handle


async def test_oauth2_connection_lifecycle(client: Any, task_queue: str, worker: Any, db: Connections,
                                           dev_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    logs: list[str] = []  # everything the worker and the CLI wrote (structured log lines go to stderr)

    async def cli(*args: str) -> tuple[int, str, str]:
        logs.extend(capsys.readouterr())  # the worker's lines since the last command
        code, out, err = await flowtide(capsys, *args)
        logs.extend((out, err))
        return code, out, err

    with OAuthWorld() as world:
        code, _, err = await cli("connections", "add", "crm", "--kind", "oauth2", "--token-url",
                                      world.url + "/token", "--client-id", world.client_id, "--client-secret",
                                      world.client_secret, "--refresh-token", world.refresh_token, "--scope", "read")
        assert code == 0, err
        world.delay_s = 0.3  # the twenty steps all find no token while the one refresh is under way
        world.api_delay_s = 0.3
        fan, fan_handle = await run(client, task_queue, api_flow(world.url, 20))
        assert fan["status"] == "completed", fan.get("errors")
        assert world.grants == ["refresh_token"]  # 20 concurrent steps, exactly one refresh
        assert world.max_in_flight >= 10, world.max_in_flight  # the steps did run at the same time
        world.delay_s = world.api_delay_s = 0.0

        world.revoke()  # the API now refuses the stored token: 401, one refresh, the request sent again
        rec, h401 = await run(client, task_queue, api_flow(world.url))
        assert rec["status"] == "completed", rec.get("errors")
        assert step(rec, "call")["attempts"] == 1 and len(world.grants) == 2
        assert step(rec, "call")["output"]["body"]["authorization"] == "Bearer ***"  # the echo is redacted

        with db.store.engine.begin() as conn:  # the token is about to expire: refreshed before it is sent
            conn.execute(update(connections).values(expires_at=now()))
        rec, _ = await run(client, task_queue, api_flow(world.url))
        assert rec["status"] == "completed" and len(world.grants) == 3

        world.refused = True  # the authorization server revokes the refresh token (and its access tokens)
        world.revoke()
        failed, failed_handle = await run(client, task_queue, api_flow(world.url))
        assert failed["status"] == "failed"
        err_rec = failed["errors"][0]
        assert err_rec["code"] == "AUTH_REAUTHORIZATION_REQUIRED" and err_rec["retryable"] is False
        assert err_rec["attempt"] == 1 and len(world.grants) == 4  # never retried
        shown = db.show("crm") or {}
        assert shown["state"] == "error" and "invalid_grant" in shown["reason"]
        logs.extend(capsys.readouterr())
        event = [json.loads(line) for line in logs[-1].splitlines() if "reauthorization_required" in line]
        assert event[0]["event"] == "connection.reauthorization_required" and event[0]["connection"] == "crm"
        code, out, err = await cli("connections", "list")
        assert "crm  -  oauth2  error" in out
        code, out, err = await cli("runs", "show", failed["runId"])
        assert "Will a retry help? no" in out

        world.refused, world.refresh_token = False, "rt-" + secrets.token_hex(12)
        code, _, err = await cli("connections", "reconnect", "crm", "--refresh-token",
                                      world.refresh_token)
        assert code == 0 and (db.show("crm") or {})["state"] == "ok", err
        code, out, err = await cli("rerun", failed["runId"], "--from-failed", "--no-worker", "--json",
                                        "--task-queue", task_queue)
        assert code == 0, err
        assert json.loads(out)["status"] == "completed" and len(world.grants) == 5

        code, out, err = await cli("connections", "test", "crm", "--url", world.url + "/api")
        assert code == 0 and "GET " in out and ": 200" in out
        logs.extend(capsys.readouterr())

    secret_values = [world.client_secret, world.refresh_token, *world.issued]
    texts = [history_json(dev_server.address, h.id) for h in (fan_handle, h401, failed_handle)]
    texts += [json.dumps(r, default=str) for r in (fan, rec, failed)]
    texts += [*logs, json.dumps(db.list())]
    for text in texts:
        for value in secret_values:
            assert not hits(text, value), value


async def test_unknown_connection_is_auth_missing(client: Any, task_queue: str, worker: Any, db: Connections
                                                  ) -> None:
    doc = {"id": "no-conn", "steps": [{"stepId": "call", "stepType": "core.http", "connection": "nope",
                                       "input": {"url": "http://127.0.0.1:9/x"}}]}
    rec, _ = await run(client, task_queue, doc)
    assert rec["errors"][0]["code"] == "AUTH_MISSING"
    assert "No connection named 'nope' is attached to this step" in rec["errors"][0]["message"]
