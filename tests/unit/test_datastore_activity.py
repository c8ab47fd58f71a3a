"""datastore.query on real SQLite files and, when PostgreSQL is installed, a throwaway local cluster."""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from flowtide.activities.datastore import datastore_query
from tests.support.activities import LoopTicks, step_task
from tests.support.postgres import free_port, postgres_cluster

SLOW_SQL = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) "
            "SELECT count(*) FROM n WHERE i < 1000000000")


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FLOWTIDE_FILE_ROOTS", str(tmp_path))
    db = sqlite3.connect(tmp_path / "app.db")
    db.executescript("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, avatar BLOB);"
                     "INSERT INTO users (name) VALUES ('ann'), ('bob'), ('cat');")
    db.close()
    return tmp_path


def task(inp: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
    return step_task("datastore.query", inp, step_id="q", title="Query", timeout=timeout)


async def query(inp: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return (await ActivityEnvironment().run(datastore_query, task(inp, **kw)))["output"]


async def fails(inp: dict[str, Any], **kw: Any) -> ApplicationError:
    with pytest.raises(ApplicationError) as info:
        await ActivityEnvironment().run(datastore_query, task(inp, **kw))
    return info.value


def lite(sql: str, params: Any = None, **kw: Any) -> dict[str, Any]:
    return {"connection": "sqlite:///app.db", "sql": sql, "params": params, **kw}


async def test_select_with_positional_and_named_params(root):
    out = await query(lite("SELECT id, name FROM users WHERE name IN (?, ?) ORDER BY id", ["ann", "cat"]))
    assert out == {"rows": [{"id": 1, "name": "ann"}, {"id": 3, "name": "cat"}], "rowCount": 2,
                   "columns": ["id", "name"]}
    out = await query({"path": str(root / "app.db"), "sql": "SELECT name FROM users WHERE id = :id",
                       "params": {"id": 2}})
    assert out["rows"] == [{"name": "bob"}]


async def test_values_are_bound_never_spliced(root):
    evil = "x'); DROP TABLE users; --"
    out = await query(lite("INSERT INTO users (name, avatar) VALUES (?, ?)", [evil, None]))
    assert out == {"rows": [], "rowCount": 1, "columns": []}
    out = await query(lite("SELECT count(*) AS n FROM users WHERE name = ?", [evil]))
    assert out["rows"] == [{"n": 1}]


async def test_blobs_json_params_and_duplicate_columns(root):
    await query(lite("UPDATE users SET avatar = X'00FF' WHERE id = 1"))
    out = await query(lite("SELECT u.id, v.id, u.avatar, json_extract(?, '$.a') AS a FROM users u "
                           "JOIN users v ON v.id = u.id WHERE u.id = 1", [{"a": 7}]))
    assert out["columns"] == ["id", "id_2", "avatar", "a"]
    assert out["rows"] == [{"id": 1, "id_2": 1, "avatar": base64.b64encode(b"\x00\xff").decode(), "a": 7}]


async def test_sqlite_error_codes(root):
    cases = [
        (lite("SELECT * FROM missing"), "DATA_STORE_TABLE_NOT_FOUND", True),
        (lite("SELEC 1"), "DATA_STORE_INVALID_QUERY", True),
        (lite("SELECT nope FROM users"), "DATA_STORE_INVALID_QUERY", True),
        (lite("SELECT ?", [1, 2]), "DATA_STORE_INVALID_QUERY", True),
        (lite("SELECT 1; SELECT 2"), "DATA_STORE_INVALID_QUERY", True),
        (lite("INSERT INTO users (name) VALUES ('ann')"), "DATA_STORE_CONSTRAINT_VIOLATION", True),
        (lite("INSERT INTO users (name) VALUES ('dan')", readOnly=True), "DATA_STORE_AUTH_FAILED", True),
        ({"connection": "sqlite:///nope.db", "sql": "SELECT 1"}, "DATA_STORE_CONNECTION_FAILED", True),
        ({"path": "../escape.db", "sql": "SELECT 1"}, "FILE_INVALID_PATH", True),
    ]
    for inp, code, final in cases:
        err = await fails(inp)
        assert (err.type, err.non_retryable) == (code, final), inp
        assert err.details[0]["type"] == "execution"


async def test_not_a_database(root):
    (root / "junk.db").write_bytes(b"this is not sqlite" * 100)
    err = await fails({"path": "junk.db", "sql": "SELECT * FROM users"})
    assert err.type == "DATA_STORE_CONNECTION_FAILED" and err.non_retryable


async def test_create_makes_a_new_database(root):
    await query({"path": "new.db", "create": True, "sql": "CREATE TABLE t (x)"})
    assert (root / "new.db").exists()
    assert (await query({"connection": "sqlite:///:memory:", "sql": "SELECT 1 AS one"}))["rows"] == [{"one": 1}]


async def test_locked_database_is_a_retryable_deadlock(root):
    holder = sqlite3.connect(root / "app.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        err = await fails(lite("INSERT INTO users (name) VALUES ('eve')", timeout=0.4))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert err.type == "DATA_STORE_DEADLOCK" and not err.non_retryable


async def test_slow_query_times_out_without_blocking_the_loop(root):
    async with LoopTicks(0.02) as beat:
        err = await fails(lite(SLOW_SQL, timeout=0.3), timeout=5)
    assert err.type == "DATA_STORE_TIMEOUT" and not err.non_retryable
    assert beat.ticks >= 5  # the event loop ran while SQLite worked in its thread


async def test_row_cap(root):
    err = await fails(lite("SELECT * FROM users", maxRows=2))
    assert err.type == "DATA_STORE_RESULT_TOO_LARGE" and err.non_retryable and "2 rows" in str(err)
    assert len((await query(lite("SELECT * FROM users", maxRows=3)))["rows"]) == 3


async def test_rows_are_counted_as_they_are_fetched(root):
    # one value past 16 MiB is refused inside SQLite; rows past the step's outputBytes as they are fetched
    err = await fails({"connection": "sqlite:///:memory:",
                       "sql": "SELECT zeroblob(999999999) FROM (VALUES (1), (2))"})
    assert err.type == "DATA_STORE_RESULT_TOO_LARGE" and err.non_retryable and "too big" in str(err)
    many = ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400) "
            "SELECT zeroblob(1000000) FROM n")
    err = await fails({"connection": "sqlite:///:memory:", "sql": many, "maxRows": 10**9})
    assert err.type == "DATA_STORE_RESULT_TOO_LARGE" and "262144 bytes" in str(err)
    fits = await query({"connection": "sqlite:///:memory:", "sql": "SELECT zeroblob(1000) AS b"})
    assert len(fits["rows"]) == 1


async def test_bad_input(root):
    assert (await fails({"connection": "mysql://x/y", "sql": "SELECT 1"})).type == "VALIDATION_ERROR"
    assert (await fails(lite(""))).type == "VALIDATION_ERROR"
    assert (await fails(lite("SELECT 1", "oops"))).type == "VALIDATION_ERROR"


async def test_missing_psycopg_says_how_to_install(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "psycopg", None)
    err = await fails({"connection": "postgresql://u@127.0.0.1:1/db", "sql": "SELECT 1"})
    assert err.type == "DATA_STORE_CONNECTION_FAILED" and err.non_retryable
    assert "flowtide[postgres]" in str(err)


# --- PostgreSQL: a throwaway cluster, only when the server binaries are installed ---------------------------

@pytest.fixture(scope="module")
def pg() -> Iterator[str]:
    with postgres_cluster() as url:
        yield url


@pytest.fixture(scope="module")
def pg_table(pg: str) -> str:
    import psycopg
    with psycopg.connect(pg, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, name text UNIQUE, price numeric, "
                     "made timestamptz, meta jsonb)")
        conn.execute("INSERT INTO items VALUES (1, 'pen', 1.50, '2024-01-02T03:04:05Z', '{\"a\": 1}'), "
                     "(2, 'ink', 20, NULL, NULL)")
    return pg


def pgq(conn: str, sql: str, params: Any = None, **kw: Any) -> dict[str, Any]:
    return {"connection": conn, "sql": sql, "params": params, **kw}


async def test_postgres_select_insert_and_types(pg_table):
    out = await query(pgq(pg_table, "SELECT id, name, price, made, meta FROM items WHERE id = %s", [1]))
    assert out["columns"] == ["id", "name", "price", "made", "meta"]
    assert out["rows"] == [{"id": 1, "name": "pen", "price": "1.50", "made": "2024-01-02T03:04:05+00:00",
                            "meta": {"a": 1}}]
    out = await query(pgq(pg_table, "INSERT INTO items (id, name, meta) VALUES (%(id)s, %(name)s, %(meta)s)",
                          {"id": 3, "name": "x'); DROP TABLE items; --", "meta": {"b": [1]}}))
    assert out["rowCount"] == 1
    out = await query(pgq(pg_table, "SELECT meta FROM items WHERE id = 3"))
    assert out["rows"] == [{"meta": {"b": [1]}}]


async def test_postgres_password_from_a_secret_is_redacted(pg_table, monkeypatch):
    monkeypatch.setenv("FLOWTIDE_SECRET_PG_PASSWORD", "s3cret")
    conn = pg_table.replace(":s3cret@", ":{{ secrets.PG_PASSWORD }}@")
    res = await ActivityEnvironment().run(datastore_query, task(pgq(conn, "SELECT 1 AS one")))
    assert res["output"]["rows"] == [{"one": 1}]
    assert "s3cret" not in repr(res)


async def test_postgres_error_codes(pg_table):
    wrong = pg_table.replace(":s3cret@", ":wrong@")
    refused = f"postgresql://flow:s3cret@127.0.0.1:{free_port()}/postgres"
    cases = [
        (pgq(pg_table, "SELECT * FROM missing"), "DATA_STORE_TABLE_NOT_FOUND", True),
        (pgq(pg_table, "SELEC 1"), "DATA_STORE_INVALID_QUERY", True),
        (pgq(pg_table, "SELECT %s", [1, 2]), "DATA_STORE_INVALID_QUERY", True),
        (pgq(pg_table, "INSERT INTO items (id) VALUES (1)"), "DATA_STORE_CONSTRAINT_VIOLATION", True),
        (pgq(pg_table, "INSERT INTO items (id) VALUES (9)", readOnly=True), "DATA_STORE_AUTH_FAILED", True),
        (pgq(wrong, "SELECT 1"), "DATA_STORE_AUTH_FAILED", True),
        (pgq(refused, "SELECT 1"), "DATA_STORE_CONNECTION_FAILED", False),
        (pgq(pg_table.replace("/postgres", "/nope"), "SELECT 1"), "DATA_STORE_CONNECTION_FAILED", True),
        (pgq(pg_table, "SELECT pg_sleep(5)", timeout=0.3), "DATA_STORE_TIMEOUT", False),
        (pgq(pg_table, "SELECT * FROM items", maxRows=1), "DATA_STORE_RESULT_TOO_LARGE", True),
    ]
    for inp, code, final in cases:
        err = await fails(inp)
        assert (err.type, err.non_retryable) == (code, final), (inp["sql"], str(err))
    assert "wrong" not in str((await fails(pgq(wrong, "SELECT 1"))).details)


async def test_postgres_lock_conflict_is_a_retryable_deadlock(pg_table):
    import psycopg
    async with await psycopg.AsyncConnection.connect(pg_table) as holder:
        await holder.execute("SELECT * FROM items WHERE id = 2 FOR UPDATE")
        err = await fails(pgq(pg_table, "SELECT * FROM items WHERE id = 2 FOR UPDATE NOWAIT"))
        await holder.rollback()
    assert err.type == "DATA_STORE_DEADLOCK" and not err.non_retryable
