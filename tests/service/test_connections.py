"""Connections in the service database (SQLite and a real PostgreSQL), their locking and ``/v1/connections``.

Sealed at rest (no credential value in the database file or table), opened only with the same key; one
refresh at a time even for callers that share no process lock (threads standing in for worker processes,
serialized by the lock file on SQLite and by the row lock on PostgreSQL); REST answers never carry a secret.
"""

from __future__ import annotations

import concurrent.futures
import secrets
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from flowtide.activities.connection.oauth import _refresh_locked
from flowtide.store.connections import Connections, connection_states
from flowtide.store.database import Store, StoreError
from flowtide.store.secretbox import SecretKeyError
from tests.support.oauth_server import OAuthWorld
from tests.support.postgres import fresh_database


@pytest.fixture(autouse=True)
def secret_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = "test-key-" + secrets.token_hex(16)
    monkeypatch.setenv("FLOWTIDE_SECRET_KEY", key)
    return key


@pytest.fixture(params=["sqlite", "postgresql"])
def conns(request: pytest.FixtureRequest, tmp_path: Path) -> Connections:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'flowtide.db'}"
    else:
        base = request.getfixturevalue("pg_url")
        url = base.rsplit("/", 1)[0] + "/" + _database(base)
    store = Store(url)
    store.migrate()
    return Connections(store)


def _database(pg_url: str) -> str:
    """A fresh database on the shared cluster for one test."""
    name = "conn_" + secrets.token_hex(4)
    admin = Store(pg_url)
    with admin.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.engine.dispose()
    return name


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migration_0002_upgrades_a_0001_database(backend: str, request: pytest.FixtureRequest,
                                                tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        base = request.getfixturevalue("pg_url")
        url = base.rsplit("/", 1)[0] + "/" + _database(base)
    store = Store(url)
    cfg = Config()
    import flowtide.store.database as store_module
    cfg.set_main_option("script_location", str(Path(store_module.__file__).parent / "migrations"))
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    store.create_project("kept")
    store.migrate()
    from alembic.script import ScriptDirectory
    with store.engine.connect() as conn:  # 0002 and every later migration
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == ScriptDirectory.from_config(
            cfg).get_current_head()
    assert [p["id"] for p in store.list_projects()] == ["kept"]
    Connections(store).add("crm", "bearer", {"token": "t"})
    assert [c["name"] for c in Connections(store).list()] == ["crm"]


def test_sealed_at_rest_opened_with_the_key_only(conns: Connections, monkeypatch: pytest.MonkeyPatch) -> None:
    values = {"bearer": {"token": "tok-" + secrets.token_hex(8)},
              "basic": {"username": "ann", "password": "pw-" + secrets.token_hex(8)},
              "api-key": {"header": "X-Api-Key", "value": "key-" + secrets.token_hex(8)},
              "oauth2": {"tokenUrl": "https://auth.example/token", "clientId": "cid",
                         "clientSecret": "cs-" + secrets.token_hex(8), "refreshToken": "rt-" + secrets.token_hex(8),
                         "scopes": ["read", "write"]}}
    for kind, v in values.items():
        conns.add(f"c-{kind}", kind, v)
    with conns.store.engine.connect() as conn:
        dump = repr(conn.execute(text("SELECT * FROM connections")).all())
    listed = repr(conns.list())
    for v in values.values():
        for field in ("token", "password", "value", "clientSecret", "refreshToken"):
            if field in v:
                assert v[field] not in dump and v[field] not in listed
    c = conns.get("c-oauth2")
    assert c is not None and c.secret["refreshToken"] == values["oauth2"]["refreshToken"]
    assert c.config == {"tokenUrl": "https://auth.example/token", "clientId": "cid", "scopes": ["read", "write"],
                        "grant": "refresh_token"}
    assert [s["state"] for s in connection_states(conns.store)] == ["ok"] * 4
    monkeypatch.setenv("FLOWTIDE_SECRET_KEY", "another-key-" + "x" * 32)
    with pytest.raises(SecretKeyError, match="cannot be opened"):
        conns.get("c-bearer")


def test_add_reconnect_remove_and_state(conns: Connections) -> None:
    conns.add("crm", "oauth2", {"tokenUrl": "https://a.example/t", "clientId": "c", "clientSecret": "s"})
    with pytest.raises(StoreError, match="exists already"):
        conns.add("crm", "bearer", {"token": "t"})
    with pytest.raises(StoreError, match="needs token"):
        conns.add("other", "bearer", {})
    with pytest.raises(StoreError, match="connection name"):
        conns.add("1bad name", "bearer", {"token": "t"})
    conns.mark_error("crm", "token refresh refused: invalid_grant")
    shown = conns.show("crm") or {}
    assert shown["state"] == "error" and shown["reason"].endswith("invalid_grant")
    conns.reconnect("crm", {"refreshToken": "new-rt"})
    c = conns.get("crm")
    assert c is not None and c.state == "ok" and c.reason is None and c.config["grant"] == "refresh_token"
    assert c.secret == {"clientSecret": "s", "refreshToken": "new-rt"}
    conns.remove("crm")
    assert conns.get("crm") is None
    with pytest.raises(StoreError, match="no connection"):
        conns.remove("crm")


def test_one_refresh_for_callers_without_a_shared_process_lock(conns: Connections) -> None:
    with OAuthWorld() as world:
        world.delay_s = 0.3
        conns.add("crm", "oauth2", {"tokenUrl": world.url + "/token", "clientId": world.client_id,
                                    "clientSecret": world.client_secret, "refreshToken": world.refresh_token})
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: _refresh_locked(conns, "crm", None), range(8)))
    assert world.grants == ["refresh_token"]
    assert {token for token, refused in answers} == {world.issued[0]}


async def test_client_credentials_grant_with_scopes_and_a_refused_client(conns: Connections) -> None:
    from flowtide.activities.connection.oauth import access_token
    from flowtide.workflows.errors import StepFailure
    with OAuthWorld() as world:
        conns.add("svc", "oauth2", {"tokenUrl": world.url + "/token", "clientId": world.client_id,
                                    "clientSecret": world.client_secret, "scopes": ["read", "write"]})
        c = conns.get("svc")
        assert c is not None and c.config["grant"] == "client_credentials"
        assert await access_token(conns, c) == world.issued[0]
        assert world.forms == [{"grant_type": "client_credentials", "scope": "read write"}]
        conns.reconnect("svc", {"clientSecret": "wrong"})
        c = conns.get("svc")
        assert c is not None
        with pytest.raises(StepFailure) as info:
            await access_token(conns, c)
    assert info.value.code == "AUTH_REAUTHORIZATION_REQUIRED" and "invalid_client" in info.value.message
    assert (conns.show("svc") or {})["state"] == "error"


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_one_refresh_for_three_worker_processes(backend: str, request: pytest.FixtureRequest, tmp_path: Path,
                                                secret_key: str) -> None:
    """Worker processes (machines, on PostgreSQL) refreshing one expired token at once: one token request."""
    import multiprocessing

    from tests.support.oauth_server import tokens_in_a_process
    url = fresh_database(backend, tmp_path, request)
    store = Store(url)
    store.migrate()
    with OAuthWorld() as world:
        world.delay_s = 1.0  # long enough for the other processes to be waiting on the lock file
        Connections(store).add("crm", "oauth2", {"tokenUrl": world.url + "/token", "clientId": world.client_id,
                                                 "clientSecret": world.client_secret,
                                                 "refreshToken": world.refresh_token})
        with multiprocessing.get_context("spawn").Pool(3) as pool:
            got = pool.starmap(tokens_in_a_process, [(url, secret_key, "crm", 7)] * 3)
    assert world.grants == ["refresh_token"]
    assert {t for tokens in got for t in tokens} == {world.issued[0]}


async def test_rest_connections_are_admin_only_and_never_show_secrets(
        api: Any, http: Any, secret_key: str) -> None:
    secret = "sk-" + secrets.token_hex(12)
    body = {"kind": "api-key", "header": "X-Api-Key", "value": secret}
    r = await http.put(api.url("/v1/connections/billing"), json=body, headers=api.headers("run"))
    assert r.status_code == 403
    r = await http.put(api.url("/v1/connections/billing"), json=body, headers=api.headers("admin"))
    assert r.status_code == 201 and r.json()["state"] == "ok" and secret not in r.text, r.text
    r = await http.put(api.url("/v1/connections/billing"), json={"value": secret + "2"},
                       headers=api.headers("admin"))
    assert r.status_code == 200 and secret not in r.text
    listed = await http.get(api.url("/v1/connections"), headers=api.headers("admin"))
    assert [c["name"] for c in listed.json()["connections"]] == ["billing"] and secret not in listed.text
    other = await http.get(api.url("/v1/connections/billing"), headers=api.headers("admin", "other"))
    assert other.status_code == 404  # another project's connection
    bad = await http.put(api.url("/v1/connections/x"), json={"kind": "oauth2", "tokenUrl": 5},
                         headers=api.headers("admin"))
    assert bad.status_code == 400 and bad.json()["errors"][0]["extensions"]["code"] == "INPUT_INVALID"
    gone = await http.delete(api.url("/v1/connections/billing"), headers=api.headers("admin"))
    assert gone.status_code == 204
    assert (await http.get(api.url("/v1/connections/billing"), headers=api.headers("admin"))).status_code == 404


async def test_basic_connection_logs_a_datastore_step_in(pg_url: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from temporalio.testing import ActivityEnvironment

    from flowtide.activities.datastore import datastore_query
    from tests.support.activities import step_task
    url = f"sqlite:///{tmp_path / 'flowtide.db'}"
    monkeypatch.setenv("FLOWTIDE_DATABASE_URL", url)
    store = Store(url)
    store.migrate()
    Connections(store).add("warehouse", "basic", {"username": "flow", "password": "s3cret"})
    bare = "postgresql://" + pg_url.rsplit("@", 1)[1]  # no user or password in the flow
    task = step_task("datastore.query", {"connection": bare, "sql": "SELECT 'flow:s3cret' AS said"})
    task["connection"] = "warehouse"
    out = await ActivityEnvironment().run(datastore_query, task)
    assert out["output"]["rows"] == [{"said": "flow:***"}]  # the password is redacted even from query results
