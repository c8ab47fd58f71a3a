"""OAuth2 refreshes: short-lived tokens are not refreshed on every step, and concurrent steps share one refresh.

A real token endpoint (``tests.support.oauth_server``) counts the token requests; a real Temporal worker runs
the steps against a real SQLite service database.
"""

from __future__ import annotations

from typing import Any

from flowtide.activities.connection.oauth import early_margin
from flowtide.store.connections import Connections
from tests.support.flows import run_flow
from tests.support.oauth_server import OAuthWorld


def fanout(api: str, n: int) -> dict[str, Any]:
    call = {"stepId": "call", "stepType": "core.http", "connection": "crm", "input": {"url": api + "/api"}}
    return {"id": "crm-fanout", "steps": [{"stepId": "each", "stepType": "core.for-each", "input": {
        "items": list(range(n)), "concurrency": n, "steps": [call]}}]}


def test_the_margin_fits_the_lifetime() -> None:
    assert early_margin(3600) == 60 and early_margin(60) == 6 and early_margin(5) == 2
    assert early_margin(None) == 60  # a token stored before its lifetime was kept


async def test_a_60s_token_is_shared_by_20_concurrent_steps_and_not_refreshed_per_step(
        client: Any, task_queue: str, worker: Any, conns: Connections) -> None:
    with OAuthWorld() as world:
        world.expires_in = 60  # shorter than the old fixed 60 s margin + anything: stale at once before
        world.delay_s = 0.3  # the twenty steps all find no token while the one refresh is under way
        conns.add("crm", "oauth2", {"tokenUrl": world.url + "/token", "clientId": world.client_id,
                                    "clientSecret": world.client_secret, "refreshToken": world.refresh_token})
        rec = await run_flow(client, task_queue, fanout(world.url, 20))
        assert rec["status"] == "completed", rec.get("errors")
        assert world.grants == ["refresh_token"]  # 20 concurrent steps, one token request
        rec = await run_flow(client, task_queue, fanout(world.url, 3))
        assert rec["status"] == "completed", rec.get("errors")
        assert world.grants == ["refresh_token"]  # the 60 s token is still good: no refresh per step


async def test_a_token_answer_is_read_within_64_kib(client: Any, task_queue: str, worker: Any,
                                                     conns: Connections) -> None:
    with OAuthWorld() as world:
        world.bomb = True  # 40 KB that inflate to 40 MB: the worker would hold them whole
        conns.add("crm", "oauth2", {"tokenUrl": world.url + "/token", "clientId": world.client_id,
                                    "clientSecret": world.client_secret, "refreshToken": world.refresh_token})
        rec = await run_flow(client, task_queue, fanout(world.url, 1))
        assert rec["status"] == "failed"
        [error] = [e for e in rec["errors"] if e["stepId"] == "call"]
        assert error["code"] == "HTTP_RESPONSE_TOO_LARGE" and "65536 bytes" in error["message"]
