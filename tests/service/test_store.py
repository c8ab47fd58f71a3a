"""The service database on SQLite and on a real PostgreSQL: migrations, keys, revisions, idempotency, races."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from flowtide.store.database import Store, StoreError, hash_key
from tests.support.postgres import fresh_database


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path: Path) -> Store:
    url = fresh_database(request.param, tmp_path, request)
    s = Store(url)
    s.migrate()
    yield s
    s.engine.dispose()


def test_migrations_are_versioned_and_idempotent(store):
    store.migrate()
    with store.engine.connect() as conn:
        version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    from alembic.script import ScriptDirectory

    from flowtide.store import database as store_module
    assert version == ScriptDirectory(str(Path(store_module.__file__).parent / "migrations")).get_current_head()
    assert {"projects", "api_keys", "flow_revisions", "idempotency_keys", "hook_secrets", "connections",
            "webhook_signatures"} <= set(inspect(store.engine).get_table_names())


def test_admin_commands_of_several_processes_share_one_database(store):
    env = {**os.environ, "FLOWTIDE_DATABASE_URL": store.url.replace("+psycopg", "")}
    procs = [subprocess.Popen([sys.executable, "-m", "flowtide.client.cli", "projects", "create", f"p{i}"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for i in range(3)]
    for p in procs:
        _, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    assert {"p0", "p1", "p2"} <= {p["id"] for p in store.list_projects()}


def test_a_refused_admin_action_is_one_line_and_exit_2(store):
    env = {**os.environ, "FLOWTIDE_DATABASE_URL": store.url.replace("+psycopg", "")}
    store.create_project("taken")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "flowtide.client.cli", *args], env=env, capture_output=True,
                              text=True, timeout=60)

    plain = cli("projects", "create", "taken")
    assert plain.returncode == 2 and plain.stderr == "flowtide: project 'taken' exists already\n"
    as_json = cli("projects", "create", "taken", "--json")
    assert as_json.returncode == 2
    assert json.loads(as_json.stdout)["error"] == {"code": "REFUSED", "message": "project 'taken' exists already",
                                                   "problems": []}


def test_projects_and_keys_store_only_a_hash(store):
    store.create_project("acme")
    with pytest.raises(StoreError):
        store.create_project("acme")
    with pytest.raises(StoreError):
        store.create_key("nope", "run")
    with pytest.raises(StoreError):
        store.create_key("acme", "root")
    key_id, key = store.create_key("acme", "admin", "ci")
    assert key.startswith("ftk_") and len(key) > 40
    with store.engine.connect() as conn:
        dump = str(conn.execute(text("SELECT * FROM api_keys")).all())
    assert key not in dump and hash_key(key) in dump
    assert store.key_by_hash(hash_key(key))["role"] == "admin"
    store.revoke_key(key_id)
    assert store.key_by_hash(hash_key(key)) is None
    with pytest.raises(StoreError):
        store.revoke_key(key_id)
    assert store.list_keys("acme")[0]["revokedAt"] is not None


def test_concurrent_deploys_get_distinct_revisions(store):
    store.create_project("acme")
    with ThreadPoolExecutor(8) as pool:
        revs = list(pool.map(lambda i: store.deploy("acme", "f", {"id": "f", "n": i}, "F", "k")["revision"],
                             range(16)))
    assert sorted(revs) == list(range(1, 17))
    assert [r["revision"] for r in store.revisions("acme", "f")] == list(range(16, 0, -1))
    assert store.revision("acme", "f")["revision"] == 16
    assert store.flows("acme") == [{"flowId": "f", "revision": 16, "deployedAt": store.revision("acme", "f")[
        "deployedAt"], "title": "F"}]
    assert store.revision("other", "f") is None


def test_idempotency_claims_race_to_one_owner(store):
    store.create_project("acme")
    with ThreadPoolExecutor(10) as pool:
        owners = list(pool.map(lambda i: store.claim_idempotency("acme", "k1", "h", f"wf-{i}"), range(10)))
    assert len(set(owners)) == 1
    assert store.claim_idempotency("acme", "k1", "other", "wf-x") == owners[0]


def test_hook_secrets_rotate(store):
    store.create_project("acme")
    first = store.set_hook_secret("acme", "f")
    second = store.set_hook_secret("acme", "f")
    assert first != second and store.hook_secret("acme", "f") == second and store.hook_secret("acme", "g") is None


async def test_the_api_on_postgresql_starts_one_run_per_idempotency_key(client, pg_url):
    import asyncio

    import httpx
    import psycopg

    from tests.support.service import ECHO, running_api
    name = f"api_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = pg_url.rsplit("/", 1)[0] + "/" + name
    async with running_api(client, url, f"tq-pg-{uuid.uuid4().hex[:8]}") as api, httpx.AsyncClient(timeout=30) as http:
        await api.deploy(http, ECHO)
        headers = {**api.headers("run"), "idempotency-key": "once"}
        answers = await asyncio.gather(*(http.post(api.url("/v1/flows/echo/runs"), json={"input": {"n": 2}},
                                                   headers=headers) for _ in range(10)))
        assert len({r.json()["runId"] for r in answers}) == 1 and {r.status_code for r in answers} == {202}
        r = await http.post(api.url("/v1/flows/echo/runs?wait=20"), json={"input": {"n": 5}},
                            headers=api.headers("run"))
        assert r.status_code == 200 and r.json()["output"] == {"got": 5}
        assert (await http.get(api.url("/healthz"))).json()["database"] is True


def test_migrations_wait_for_the_advisory_lock_on_postgresql(pg_url):
    """Replicas starting together migrate one at a time: ``migrate()`` waits while another holds the lock."""
    import threading
    import time

    import psycopg

    from flowtide.store import database as store_module
    name = f"lock_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = pg_url.rsplit("/", 1)[0] + "/" + name
    store = Store(url)
    with psycopg.connect(url, autocommit=True) as other:  # another replica, migrating
        other.execute("SELECT pg_advisory_lock(%s)", (store_module._MIGRATION_LOCK,))
        done = threading.Event()
        worker = threading.Thread(target=lambda: (store.migrate(), done.set()), daemon=True)
        worker.start()
        time.sleep(1.5)
        assert not done.is_set(), "migrate() went ahead while another process held the migration lock"
        tables = other.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'projects'").fetchone()
        assert tables == (0,)
        other.execute("SELECT pg_advisory_unlock(%s)", (store_module._MIGRATION_LOCK,))
    worker.join(60)
    assert done.is_set()
    assert "projects" in inspect(store.engine).get_table_names()
    store.engine.dispose()
