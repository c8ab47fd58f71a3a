"""Circuit breakers shared by all runs (issue 18 D): a failing host gets about ``failureThreshold`` calls
plus the half-open trials, not every run's retries; once it recovers, a trial closes the breaker."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from flowtide.client.runs import start_run, wait_record
from flowtide.store.breakers import breaker_key
from flowtide.workflows.language.dsl import parse_flow
from tests.support.cli import flowtide
from tests.support.flows import step

PATH = "/status/200"  # planned to answer 503 until the test lets it recover
BREAKER = {"failureThreshold": 3, "windowSeconds": 60, "openSeconds": 2}


def flow(base: str) -> dict[str, Any]:
    return {"id": "breaker", "steps": [{"stepId": "call", "stepType": "core.http", "circuitBreaker": BREAKER,
                                        "retryPolicy": {"maxRetries": 3, "delayMs": 200},
                                        "input": {"url": base + PATH}}]}


async def runs(client: Any, task_queue: str, base: str, n: int, stagger_s: float) -> list[dict[str, Any]]:
    handles = []
    for _ in range(n):
        handles.append(await start_run(client, parse_flow(flow(base)), {}, task_queue=task_queue))
        await asyncio.sleep(stagger_s)
    return list(await asyncio.gather(*(wait_record(h) for h in handles)))


@pytest.fixture(params=["file", "database"])
def breakers_db(request: pytest.FixtureRequest, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's file, or the service database (``FLOWTIDE_DATABASE_URL``: every worker's breakers)."""
    if request.param == "file":
        monkeypatch.setenv("FLOWTIDE_BREAKERS_DB", str(tmp_path / "breakers.db"))
        return
    from flowtide.store.database import Store
    url = f"sqlite:///{tmp_path / 'flowtide.db'}"
    Store(url).migrate()
    monkeypatch.delenv("FLOWTIDE_BREAKERS_DB", raising=False)
    monkeypatch.setenv("FLOWTIDE_DATABASE_URL", url)


@pytest.mark.usefixtures("worker", "breakers_db")
async def test_breaker_spares_a_failing_host_and_closes_when_it_recovers(client, task_queue, service, capsys):
    service.plan(PATH, *[503] * 500)
    before = service.calls[PATH]
    failed = await runs(client, task_queue, service.url, 10, 0.1)
    calls = service.calls[PATH] - before
    with capsys.disabled():
        print(f"provider calls with the breaker: {calls} (without: {10 * 4})")
    assert all(r["status"] == "failed" for r in failed)
    codes = {step(r, "call")["error"]["code"] for r in failed}
    assert "CIRCUIT_OPEN" in codes and codes <= {"CIRCUIT_OPEN", "HTTP_SERVER_ERROR"}
    assert calls <= 12  # 3 to open it, a few in flight, one trial per open period (2 s)
    code, out, _ = await flowtide(capsys, "breakers", "list", "--json")
    key = breaker_key("core.http", {"url": service.url + PATH})
    assert code == 0 and [b["state"] for b in json.loads(out) if b["key"] == key] == ["open"]

    service.plan(PATH)  # the host recovers
    await asyncio.sleep(BREAKER["openSeconds"])
    before = service.calls[PATH]
    ok = await runs(client, task_queue, service.url, 5, 0)
    assert [r["status"] for r in ok] == ["completed"] * 5
    assert service.calls[PATH] - before == 5  # the trial closed it; the others waited, then went through
    code, out, _ = await flowtide(capsys, "breakers", "list", "--json")
    assert [b["state"] for b in json.loads(out) if b["key"] == key] == ["closed"]
    code, out, _ = await flowtide(capsys, "breakers", "reset", key)
    assert code == 0 and json.loads((await flowtide(capsys, "breakers", "list", "--json"))[1]) == []


@pytest.mark.usefixtures("breakers_db")
async def test_resetting_a_breaker_that_does_not_exist_is_not_found(capsys):
    code, out, err = await flowtide(capsys, "breakers", "reset", "nowhere.test:443")
    assert code == 4 and out == ""
    assert len(err.strip().splitlines()) == 1 and "no circuit breaker 'nowhere.test:443'" in err, err
    code, out, err = await flowtide(capsys, "breakers", "reset", "nowhere.test:443", "--project", "p", "-o", "json")
    assert code == 4 and json.loads(err)["error"]["code"] == "NOT_FOUND", (out, err)


def test_breaker_keys_name_the_host_or_connection_never_credentials():
    assert breaker_key("core.http", {"url": "https://api.example.test:8443/v1/x?a=1"}) == "api.example.test:8443"
    assert breaker_key("datastore.query", {"connection": "postgresql://app:pw@db.internal/crm"}) == \
        "postgresql://db.internal"
    assert breaker_key("llm.chat", {"model": "m"}) == "llm.chat"


async def test_breaker_state_is_shared_with_other_processes(tmp_path, monkeypatch):
    # What one process (a worker) noted, another one (a restarted worker, the CLI) sees: state is in the file.
    from flowtide.store import breakers
    from tests.support.cli import flowtide_process
    monkeypatch.setenv("FLOWTIDE_BREAKERS_DB", str(tmp_path / "b.db"))
    cfg = {"failureThreshold": 2, "windowSeconds": 60.0, "openSeconds": 300.0}
    for _ in range(2):
        breakers.leave(breakers.enter("h:1", cfg, 10), "HTTP_SERVER_ERROR")
    code, out, err = await flowtide_process("breakers", "list", "--json")
    assert code == 0, err
    assert [(b["key"], b["state"], b["recentFailures"]) for b in json.loads(out)] == [("h:1", "open", 2)]
    with pytest.raises(Exception) as exc:
        breakers.enter("h:1", cfg, 10)
    assert getattr(exc.value, "code", None) == "CIRCUIT_OPEN" and exc.value.retry_after_s > 290  # type: ignore[attr-defined]
