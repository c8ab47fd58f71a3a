"""The ``datastore.query`` step: one SQL statement with bound parameters on SQLite or PostgreSQL.

Input::

    {"connection"?: "sqlite:///relative.db" | "sqlite:////absolute.db" | "postgresql://user:pw@host/db",
     "path"?: a SQLite file (instead of connection), "sql" (or "query"), "params"?: [..] | {..},
     "maxRows"?: 10000, "timeout"?: seconds, "readOnly"?: false, "create"?: false (SQLite only)}

Output: ``{"rows": [{column: value}], "rowCount", "columns": [name]}``.

Values are always bound, never spliced into the SQL: SQLite takes ``?`` / ``:name`` placeholders,
PostgreSQL ``%s`` / ``%(name)s``. SQLite files must lie inside the file roots (``FLOWTIDE_FILE_ROOTS``,
see ``activities.files``), and so must every file a statement opens (``ATTACH``, ``VACUUM INTO``; no
``load_extension``): ``guards.sqlite`` is the connection's authorizer. They run in a thread;
PostgreSQL uses psycopg 3 (``flowtide[postgres]``), imported only when a flow asks for it. Connection strings
may hold ``{{ secrets.NAME }}``.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import re
import sqlite3
import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlsplit

from flowtide.activities._boundary import step_activity
from flowtide.activities._step import DEFAULT_OUTPUT_LIMIT, StepContext, StepResult
from flowtide.guards.files import allowed_roots, resolve_path
from flowtide.guards.network import DestinationBlocked, checked_addresses
from flowtide.guards.sqlite import SqlFileGuard, refused
from flowtide.workflows.errors import StepFailure

DEFAULT_MAX_ROWS = 10_000

# SQLSTATEs first, then their two-character classes (PostgreSQL appendix A).
_PG_STATES = {"42P01": "DATA_STORE_TABLE_NOT_FOUND", "42501": "DATA_STORE_AUTH_FAILED",
              "25006": "DATA_STORE_AUTH_FAILED", "40P01": "DATA_STORE_DEADLOCK", "40001": "DATA_STORE_DEADLOCK",
              "55P03": "DATA_STORE_DEADLOCK", "57014": "DATA_STORE_TIMEOUT", "3D000": "DATA_STORE_CONNECTION_FAILED"}
_PG_CLASSES = {"08": "DATA_STORE_CONNECTION_FAILED", "28": "DATA_STORE_AUTH_FAILED",
               "23": "DATA_STORE_CONSTRAINT_VIOLATION", "42": "DATA_STORE_INVALID_QUERY",
               "22": "DATA_STORE_INVALID_QUERY", "40": "DATA_STORE_DEADLOCK",
               "53": "DATA_STORE_CONNECTION_FAILED", "57": "DATA_STORE_CONNECTION_FAILED"}
# Failures retrying cannot fix although their code is transient: a database that does not exist
# (SQLSTATE 3D000 after connecting, only the server's text while connecting).
_PG_FINAL = frozenset({"3D000"})
_PG_MISSING_DB = re.compile(r'database "[^"]*" does not exist')


def _sqlite_code(exc: sqlite3.Error) -> str:
    name = getattr(exc, "sqlite_errorname", None) or ""
    text = str(exc).lower()
    if isinstance(exc, sqlite3.IntegrityError) or name.startswith("SQLITE_CONSTRAINT"):
        return "DATA_STORE_CONSTRAINT_VIOLATION"
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "is locked" in text:
        return "DATA_STORE_DEADLOCK"
    if name == "SQLITE_INTERRUPT" or text == "interrupted":
        return "DATA_STORE_TIMEOUT"
    if "no such table" in text:
        return "DATA_STORE_TABLE_NOT_FOUND"
    if name.startswith(("SQLITE_CANTOPEN", "SQLITE_NOTADB")) or "unable to open" in text:
        return "DATA_STORE_CONNECTION_FAILED"
    if name.startswith(("SQLITE_READONLY", "SQLITE_PERM", "SQLITE_AUTH")):
        return "DATA_STORE_AUTH_FAILED"
    if name == "SQLITE_ERROR" or isinstance(exc, sqlite3.ProgrammingError | sqlite3.InterfaceError):
        return "DATA_STORE_INVALID_QUERY"  # syntax, unknown column, wrong number of bindings, 2 statements
    return "DATA_STORE_UNKNOWN_ERROR"


def _psycopg_code(exc: BaseException, state: str | None) -> str:
    if state:
        return _PG_STATES.get(state) or _PG_CLASSES.get(state[:2], "DATA_STORE_UNKNOWN_ERROR")
    text, kind = str(exc).lower(), type(exc).__name__
    # Errors raised while connecting carry no SQLSTATE: read the class and the server's / libpq's text.
    if "authentication failed" in text or ("password" in text and "supplied" in text):
        return "DATA_STORE_AUTH_FAILED"
    if "permission denied for database" in text:
        return "DATA_STORE_AUTH_FAILED"
    if kind == "ConnectionTimeout" or "timeout expired" in text:
        return "DATA_STORE_TIMEOUT"
    if kind in ("OperationalError", "InterfaceError"):
        return "DATA_STORE_CONNECTION_FAILED"
    if kind in ("ProgrammingError", "DataError"):
        return "DATA_STORE_INVALID_QUERY"  # placeholder/parameter count, a value that cannot be adapted
    return "DATA_STORE_UNKNOWN_ERROR"


def map_datastore_exception(exc: BaseException) -> StepFailure | None:
    """The Data Store family's one mapper: sqlite3, psycopg and network errors to taxonomy codes.

    Args:
        exc: what opening the database or running the statement raised.

    Returns:
        The ``StepFailure`` to report, or None when ``exc`` is not a database or network error.
    """
    if isinstance(exc, sqlite3.Error) and (getattr(exc, "sqlite_errorname", "") or "") == "SQLITE_TOOBIG":
        return StepFailure("DATA_STORE_RESULT_TOO_LARGE", f"SQLite: {exc} (one value may hold at most "
                           f"{MAX_VALUE_BYTES} bytes)", retryable=False, detail="SQLITE_TOOBIG")
    if isinstance(exc, sqlite3.Error):
        final = (getattr(exc, "sqlite_errorname", "") or "") == "SQLITE_NOTADB"
        return StepFailure(_sqlite_code(exc), f"SQLite: {exc}", retryable=False if final else None,
                           detail=f"{type(exc).__name__} {getattr(exc, 'sqlite_errorname', '') or ''}".strip())
    if type(exc).__module__.split(".")[0] == "psycopg":
        state = getattr(exc, "sqlstate", None)
        final = state in _PG_FINAL or bool(_PG_MISSING_DB.search(str(exc)))
        return StepFailure(_psycopg_code(exc, state), f"PostgreSQL: {str(exc).strip()}",
                           retryable=False if final else None,
                           detail=f"{type(exc).__name__} SQLSTATE {state or '-'}")
    if isinstance(exc, TimeoutError):
        return StepFailure("DATA_STORE_TIMEOUT", f"database operation timed out: {exc}")
    if isinstance(exc, OSError):
        return StepFailure("DATA_STORE_CONNECTION_FAILED", f"database unreachable: {exc}")
    return None


@dataclass
class _Query:
    sql: str
    params: list[Any] | dict[str, Any]
    max_rows: int
    timeout_s: float
    read_only: bool
    max_bytes: int = DEFAULT_OUTPUT_LIMIT  # the step's outputBytes: rows are counted as they are fetched


MAX_VALUE_BYTES = 16 * 1024 * 1024  # one SQLite string or blob, also inside the statement (SQLITE_LIMIT_LENGTH)
FETCH_BATCH = 256


def _row_bytes(row: Any) -> int:
    """About what a row takes as JSON: its text and bytes (base64 grows them by a third), 8 per other value."""
    return sum(len(v) * 4 // 3 if isinstance(v, bytes | bytearray | memoryview) else len(v) if isinstance(v, str)
               else 8 for v in row)


class _Rows:
    """Rows as they are fetched, refused past ``max_rows`` or ``max_bytes``: a query's answer never fills the
    worker's memory before the output's size is checked (``zeroblob(10**9)`` three times, a hostile server)."""

    def __init__(self, q: _Query) -> None:
        self.q, self.rows, self.size = q, list[Any](), 0

    def add(self, batch: list[Any]) -> None:
        self.rows.extend(batch)
        self.size += sum(_row_bytes(r) for r in batch)
        if len(self.rows) > self.q.max_rows:
            raise StepFailure("DATA_STORE_RESULT_TOO_LARGE", f"the query returned more than {self.q.max_rows} rows",
                              detail="add a LIMIT (and page with OFFSET or a key) or raise the step's maxRows")
        if self.size > self.q.max_bytes:
            raise StepFailure("DATA_STORE_RESULT_TOO_LARGE", f"the query's rows are larger than the step's "
                              f"output limit of {self.q.max_bytes} bytes",
                              detail="select fewer columns or rows, or raise settings.limits.outputBytes")


def _jsonable(value: Any) -> Any:
    """A database value as JSON: bytes as base64, Decimal as its exact string, times as ISO 8601."""
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    return value


def _columns(names: list[str]) -> list[str]:
    """Column names made unique (``id``, ``id_2``) so a join's rows do not lose a value."""
    out: list[str] = []
    for name in names:
        candidate, n = name, 1
        while candidate in out:
            n += 1
            candidate = f"{name}_{n}"
        out.append(candidate)
    return out


def _result(names: list[str] | None, rows: list[Any], rowcount: int) -> dict[str, Any]:
    columns = _columns(names or [])
    data = [{c: _jsonable(v) for c, v in zip(columns, row, strict=True)} for row in rows]
    return {"rows": data, "rowCount": rowcount if rowcount >= 0 else len(data), "columns": columns}


def _sqlite_params(params: list[Any] | dict[str, Any]) -> Any:
    def bind(v: Any) -> Any:
        return json.dumps(v) if isinstance(v, dict | list) else v  # SQLite's JSON functions read text

    return {k: bind(v) for k, v in params.items()} if isinstance(params, dict) else [bind(v) for v in params]


def _sqlite_run(uri: str, q: _Query, roots: list[str]) -> dict[str, Any]:
    deadline = time.monotonic() + q.timeout_s
    conn = sqlite3.connect(uri, uri=True, timeout=min(5.0, q.timeout_s / 2), check_same_thread=False)
    guard = SqlFileGuard(roots)  # ATTACH, VACUUM INTO, load_extension: only files inside the roots
    try:
        guard.install(conn)
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)  # "string or blob too big" past it
        # The thread cannot be cancelled from outside; a progress handler past the deadline interrupts it.
        conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
        with conn:  # commit on success, roll back on any error
            cur = conn.execute(q.sql, _sqlite_params(q.params))
            rows = _Rows(q)
            while cur.description and (batch := cur.fetchmany(FETCH_BATCH)):
                rows.add(batch)
            names = [d[0] for d in cur.description] if cur.description else None
            return _result(names, rows.rows, cur.rowcount)
    except sqlite3.DatabaseError as exc:
        raise refused(guard, exc) or exc from None
    finally:
        conn.close()


def _sqlite_uri(inp: dict[str, Any], roots: list[str]) -> str:
    conn = str(inp.get("connection") or "")
    path = conn[len("sqlite:///"):] if conn else str(inp.get("path") or "")
    if path == ":memory:":
        return "file::memory:"
    real = resolve_path(path, roots)
    if not inp.get("create") and not os.path.exists(real):
        raise StepFailure("DATA_STORE_CONNECTION_FAILED", f"SQLite database {real} does not exist "
                          "(set create: true to create it)", retryable=False)
    mode = "ro" if inp.get("readOnly") else "rwc" if inp.get("create") else "rw"
    return f"file:{quote(real)}?mode={mode}"


# What a flow may set in a PostgreSQL connection string: no file (passfile, sslkey, sslrootcert, service), no
# socket directory, no option that runs something on connect.
PG_KEYS = frozenset({"host", "port", "dbname", "user", "password", "sslmode", "application_name",
                     "connect_timeout"})


async def guarded_conninfo(conninfo: str, timeout_s: float) -> str:
    """``conninfo`` pinned to an address the network guard permits (``hostaddr``), with only ``PG_KEYS``.

    Raises:
        StepFailure: ``VALIDATION_ERROR`` for a malformed string or a parameter outside ``PG_KEYS``;
            ``HTTP_DESTINATION_BLOCKED`` for a unix socket, several hosts or a refused address.
    """
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo
    try:
        params = conninfo_to_dict(conninfo)
    except (psycopg.Error, ValueError) as exc:
        raise StepFailure("VALIDATION_ERROR", f"not a PostgreSQL connection string: {exc}"[:300],
                          retryable=False) from None
    extra = sorted(set(params) - PG_KEYS)
    if extra:
        raise StepFailure("VALIDATION_ERROR", f"connection parameter(s) {', '.join(extra)} are not allowed "
                          f"(allowed: {', '.join(sorted(PG_KEYS))})", retryable=False)
    host, port = str(params.get("host") or ""), str(params.get("port") or "5432")
    if not host or host.startswith("/") or "," in host or "," in port or not port.isascii() or not port.isdigit():
        raise DestinationBlocked("a PostgreSQL connection needs one network host and port (a unix socket or a "
                                 "host list is refused)", host=host)
    permitted = await checked_addresses(host, int(port), timeout_s)
    return str(make_conninfo("", **params, hostaddr=str(permitted[0]), passfile=os.devnull))


async def _postgres_run(conninfo: str, q: _Query) -> dict[str, Any]:
    try:
        # Imported here: an optional extra, only needed by flows that use PostgreSQL.
        import psycopg
        from psycopg.types.json import Jsonb
    except ImportError:
        raise StepFailure("DATA_STORE_CONNECTION_FAILED", "PostgreSQL support is not installed on the worker: "
                          "pip install 'flowtide[postgres]'", retryable=False) from None
    conninfo = await guarded_conninfo(conninfo, q.timeout_s)  # the one network guard, like every connection
    params: Any = ({k: Jsonb(v) if isinstance(v, dict) else v for k, v in q.params.items()}
                   if isinstance(q.params, dict) else [Jsonb(v) if isinstance(v, dict) else v for v in q.params])
    conn = await psycopg.AsyncConnection.connect(conninfo, connect_timeout=max(2, int(q.timeout_s)))
    async with conn:  # commit on success, roll back on error, close
        if q.read_only:
            await conn.set_read_only(True)
        async with conn.cursor() as cur:
            # The server stops the statement itself, so it reads DATA_STORE_TIMEOUT and frees its locks.
            await cur.execute("SELECT set_config('statement_timeout', %s, true)", [str(int(q.timeout_s * 1000))])
            await cur.execute(q.sql, params)
            # libpq holds the whole answer by now (single-row mode loses an UPDATE's row count); the rows are
            # counted as they become Python values, so the JSON and base64 copies never grow past the limit
            rows = _Rows(q)
            while cur.description and (batch := await cur.fetchmany(FETCH_BATCH)):
                rows.add(batch)
            names = [d.name for d in cur.description] if cur.description else None
            return _result(names, rows.rows, cur.rowcount)


def _query(inp: dict[str, Any], ctx: StepContext) -> _Query:
    sql = inp.get("sql") or inp.get("query")
    if not isinstance(sql, str) or not sql.strip():
        raise StepFailure("VALIDATION_ERROR", "datastore.query needs 'sql' (one SQL statement)")
    params = inp.get("params")
    if params is None:
        params = []
    if not isinstance(params, list | dict):
        raise StepFailure("VALIDATION_ERROR", "'params' must be a list (positional) or an object (named)")
    # Stay under the step timeout so a slow query reads DATA_STORE_TIMEOUT, not the generic TIMEOUT.
    timeout = min(float(inp.get("timeout") or ctx.timeout_s), ctx.timeout_s * 0.9)
    return _Query(sql, params, int(inp.get("maxRows") or DEFAULT_MAX_ROWS), timeout, bool(inp.get("readOnly")),
                  int(ctx.limits.get("outputBytes") or DEFAULT_OUTPUT_LIMIT))


def _describe(connection: str) -> str:
    """The connection without its credentials, for the console."""
    parts = urlsplit(connection)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # not one port: the guard refuses the string; the console shows no port
        port = ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"


@step_activity("datastore.query", map_datastore_exception)
async def datastore_query(inp: dict[str, Any], ctx: StepContext) -> StepResult:
    """Run one SQL statement with bound parameters (see the module docstring).

    Args:
        inp: ``connection`` or ``path``, ``sql``, ``params``, ``maxRows``, ``timeout``, ``readOnly``, ``create``.
        ctx: the call's context.

    Returns:
        ``{"rows", "rowCount", "columns"}``.
    """
    q = _query(inp, ctx)
    connection = str(inp.get("connection") or "")
    if connection.startswith(("postgresql://", "postgres://")):
        ctx.log(f"PostgreSQL {_describe(connection)}")
        output = await _postgres_run(connection, q)
    elif connection.startswith("sqlite:///") or (not connection and inp.get("path")):
        roots = allowed_roots(ctx.project)  # a project's own folder of each root
        uri = _sqlite_uri(inp, roots)
        ctx.log(f"SQLite {uri}")
        output = await asyncio.to_thread(_sqlite_run, uri, q, roots)
    else:
        raise StepFailure("VALIDATION_ERROR", "'connection' must start with sqlite:///, postgresql:// or "
                          "postgres://, or give a SQLite 'path'")
    ctx.log(f"{output['rowCount']} row(s)")
    return StepResult(output)
