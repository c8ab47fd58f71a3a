"""Connection credentials never reach a history, a run record, the worker's DEBUG log or an API answer.

The sibling of ``test_secret_canaries`` for connections: a real worker process reads an oauth2 connection
(client secret, refresh token) and a bearer connection from the service database. The API echoes the
credential it receives back (also in its 401 answers); the first access token is revoked (401, refresh,
second try), and a last run's refresh is refused (``invalid_grant``). Every credential value and every
access token issued appears 0 times (plain or base64) in the histories, the run records, the worker's log
and the connection listings.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

from flowtide.client.runs import start_run, wait_record
from flowtide.store.connections import Connections
from flowtide.store.database import Store
from flowtide.workflows.language.dsl import parse_flow
from tests.reliability.canary import history_json, hits
from tests.reliability.procs import WorkerProcess
from tests.support.oauth_server import OAuthWorld


def calls(api: str) -> dict[str, Any]:
    def call(sid: str, conn: str) -> dict[str, Any]:
        return {"stepId": sid, "stepType": "core.http", "connection": conn, "continueOnError": True,
                "retryPolicy": {"maxRetries": 0}, "input": {"url": api + "/api"}}
    return {"id": "connection-canaries", "steps": [call("oauth", "crm"), call("key", "billing")]}


async def test_connection_credentials_never_reach_history_record_logs_or_api(
        dev_server: Any, client: Any, task_queue: str, tmp_path: Path, monkeypatch: Any) -> None:
    url, key = f"sqlite:///{tmp_path / 'flowtide.db'}", "canary-key-" + secrets.token_hex(16)
    monkeypatch.setenv("FLOWTIDE_SECRET_KEY", key)
    store = Store(url)
    store.migrate()
    conns = Connections(store)
    api_key = "cnry" + secrets.token_hex(12)
    env = {"FLOWTIDE_DATABASE_URL": url, "FLOWTIDE_SECRET_KEY": key, "FLOWTIDE_LOG_LEVEL": "DEBUG"}
    with OAuthWorld() as world, WorkerProcess(dev_server.address, task_queue, tmp_path / "worker.log",
                                              env=env) as worker:
        conns.add("crm", "oauth2", {"tokenUrl": world.url + "/token", "clientId": world.client_id,
                                    "clientSecret": world.client_secret, "refreshToken": world.refresh_token})
        conns.add("billing", "bearer", {"token": api_key})
        flow = parse_flow(calls(world.url), source="test")
        records, handles = [], []
        for revoke, refuse in ((False, False), (True, False), (True, True)):
            if revoke:
                world.revoke()
            world.refused = refuse
            handle = await start_run(client, flow, {}, task_queue=task_queue)
            records.append(await wait_record(handle))
            handles.append(handle)
        worker.terminate()
    # the API takes only the tokens it issued: the api-key step's 401 answer echoes its key back, redacted
    codes = [{e["stepId"]: e["code"] for e in r["errors"]} for r in records]
    assert codes == [{"key": "HTTP_UNAUTHORIZED"}] * 2 + [{"oauth": "AUTH_REAUTHORIZATION_REQUIRED",
                                                         "key": "HTTP_UNAUTHORIZED"}], codes
    assert "Bearer ***" in json.dumps(records[0]["errors"])
    assert len(world.issued) == 2 and world.grants == ["refresh_token"] * 3
    canaries = [world.client_secret, world.refresh_token, api_key, *world.issued]
    places = {f"history {i}": history_json(dev_server.address, h.id) for i, h in enumerate(handles)}
    places.update({f"record {i}": json.dumps(r) for i, r in enumerate(records)})
    places["worker log"] = worker.log_text()
    places["connections"] = json.dumps(conns.list())
    assert "connection.reauthorization_required" in places["worker log"]
    found = {where: [h for c in canaries for h in hits(text, c)] for where, text in places.items()}
    assert found == {where: [] for where in places}, found
