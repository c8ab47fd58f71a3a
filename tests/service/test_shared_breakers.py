"""Circuit breakers in the service database: every worker of a deployment (processes here, machines in
production) shares each breaker, and exactly one of them gets the half-open trial."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from flowtide.client.cli.breakers import cmd_breakers
from flowtide.store import breakers
from flowtide.store.database import Store
from tests.support.breaker_race import trials_in_a_process
from tests.support.postgres import fresh_database

CFG = {"failureThreshold": 2, "windowSeconds": 60.0, "openSeconds": 1.0}


@pytest.fixture(params=["postgresql", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    found = fresh_database(request.param, tmp_path, request)
    Store(found).migrate()
    monkeypatch.setenv("FLOWTIDE_DATABASE_URL", found)
    monkeypatch.delenv("FLOWTIDE_BREAKERS_DB", raising=False)
    return found


def test_exactly_one_half_open_trial_across_worker_processes(url: str) -> None:
    key = f"[acme] h-{uuid.uuid4().hex[:6]}:443"
    for _ in range(2):  # this process's worker sees the host fail twice: the breaker opens for 1 s
        breakers.leave(breakers.enter(key, CFG, 30), "HTTP_SERVER_ERROR")
    assert [b["state"] for b in breakers.list_breakers() if b["key"] == key] == ["open"]
    start_at = time.time() + 6  # past the open time, and after the processes have started
    with multiprocessing.get_context("spawn").Pool(3) as pool:
        got = [r for rs in pool.starmap(trials_in_a_process, [(url, key, CFG, start_at, 4)] * 3) for r in rs]
    assert sorted(got) == ["CIRCUIT_OPEN"] * 11 + ["trial"], got
    row = next(b for b in breakers.list_breakers() if b["key"] == key)
    assert row["state"] == "half-open" and row["timesOpened"] == 1


def test_the_trial_closes_it_for_every_worker_and_the_cli_reads_the_database(url: str, capsys: Any) -> None:
    key = f"h-{uuid.uuid4().hex[:6]}:80"
    for _ in range(2):
        breakers.leave(breakers.enter(key, CFG, 30), "HTTP_TIMEOUT")
    other = breakers.database()
    assert other is not None
    with pytest.raises(Exception) as refused:  # another worker's store (its own engine) sees it open
        type(other)(Store(url)).enter(key, CFG, 30)
    assert getattr(refused.value, "code", None) == "CIRCUIT_OPEN"
    time.sleep(CFG["openSeconds"])
    trial = breakers.enter(key, CFG, 30)
    assert trial.trial
    breakers.leave(trial, None)  # the provider answered: closed for everyone
    assert not type(other)(Store(url)).enter(key, CFG, 30).trial
    cmd_breakers(argparse.Namespace(breakers_cmd="list", json=True))
    listed = json.loads(capsys.readouterr().out)
    assert [(b["key"], b["state"], b["timesOpened"]) for b in listed] == [(key, "closed", 1)]
    assert breakers.reset_breaker(key) and breakers.list_breakers() == []
    assert "password" not in breakers.where() and ":s3cret@" not in breakers.where()
