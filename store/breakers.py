"""Circuit breakers shared by every run and worker: in the service database, or in one machine's SQLite file.

A step with ``circuitBreaker: {failureThreshold, windowSeconds, openSeconds}`` (or the flow's
``settings.circuitBreaker``) passes through the breaker of its key: the connection's scheme and host, else
the HTTP host (``host:port``), else the step kind, within the run's project: one project's failures never
refuse another project's calls, unless the operator shares the breaker (``FLOWTIDE_BREAKERS_SHARED``).
Credentials never enter a key.

- closed: calls go through; a transient failure (classes ``transient`` and ``rate-limit``: 5xx, timeouts,
  connection errors, 429) is noted; ``failureThreshold`` of them within ``windowSeconds`` open it.
- open: calls fail at once with ``CIRCUIT_OPEN`` (transient, retried by Temporal after the remaining open
  time through ``next_retry_delay``) and the provider is not called.
- half-open: after ``openSeconds`` one call (the trial) goes through; its outcome closes or re-opens the
  breaker. Others wait ``HALF_OPEN_WAIT_S``. A trial whose worker died is given up after its step timeout.

Where the state lives: with ``FLOWTIDE_DATABASE_URL`` set, in the service database's ``breakers`` table
(``breakers_shared``: one row per key, every worker on every machine sees it, the half-open trial claimed by a
compare-and-set that exactly one worker wins); without a database, or when ``FLOWTIDE_BREAKERS_DB`` names a file,
in that SQLite file (default ``.flowtide/breakers.db``), where ``BEGIN IMMEDIATE`` makes "claim the trial" atomic
across this machine's worker processes and the file outlives their restarts (do not put it on a network share).
A call through a closed breaker reads one row and writes nothing; a success there writes nothing either. A
Temporal entity workflow per key was not chosen: it would add a server round trip and history to every step
call. A breaker's state is soft (losing it costs a few extra calls to a failing host).
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import structlog
from sqlalchemy.exc import SQLAlchemyError

from flowtide.store.breaker_logic import Ticket as Ticket  # re-exported: activities name breakers.Ticket
from flowtide.store.breaker_logic import decoded, entered, left, needs_writing, refusal

if TYPE_CHECKING:
    from flowtide.store.breakers_shared import SharedBreakers

log = structlog.get_logger("flowtide.breakers")

DEFAULT_DB = ".flowtide/breakers.db"
SHARED_ENV = "FLOWTIDE_BREAKERS_SHARED"
SCHEMA = ("CREATE TABLE IF NOT EXISTS breakers (key TEXT PRIMARY KEY, state TEXT NOT NULL, failures TEXT NOT NULL, "
          "open_until REAL NOT NULL DEFAULT 0, trial_until REAL NOT NULL DEFAULT 0, opened INTEGER NOT NULL DEFAULT 0, "
          "config TEXT NOT NULL DEFAULT '{}', updated REAL NOT NULL)")


def db_path() -> Path:
    """The breakers' SQLite file (``FLOWTIDE_BREAKERS_DB``)."""
    return Path(os.environ.get("FLOWTIDE_BREAKERS_DB") or DEFAULT_DB)


@contextmanager
def _connect() -> Iterator[sqlite3.Connection]:
    path = db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=10, isolation_level=None)  # transactions are explicit (BEGIN ...)
    try:
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(SCHEMA)
        yield conn
    finally:
        conn.close()  # an open transaction (an exception mid-way) is rolled back


def breaker_key(kind: str, inp: dict[str, Any], project: str | None = None, connection: str | None = None) -> str:
    """The key of a step's breaker: the connection's scheme and host, else the URL's host, else the kind;
    scoped to the run's ``project`` (``[acme] host:port``) unless the operator shares that breaker
    (``FLOWTIDE_BREAKERS_SHARED``). A run without a project uses the bare key: the "no project" scope."""
    base = _base_key(kind, inp)
    if not project or _shared(base, connection):
        return base
    return f"[{project}] {base}"


# A breaker the operator shares between projects answers to every project's calls, so no one project's
# settings may make it trip easily or stay open long: its settings are held to these bounds.
SHARED_MIN_FAILURES = 5
SHARED_MAX_WINDOW_S = 60.0
SHARED_MAX_OPEN_S = 60.0


def config_for(key: str, cfg: dict[str, Any], project: str | None) -> dict[str, Any]:
    """The settings a call of ``project`` applies to the breaker ``key``: the step's own, except on a breaker
    the operator shares (a project's call on an unscoped key), where they are held to the shared bounds."""
    if not project or split_key(key)[0] is not None:
        return cfg
    return {**cfg, "failureThreshold": max(SHARED_MIN_FAILURES, int(cfg["failureThreshold"])),
            "windowSeconds": min(SHARED_MAX_WINDOW_S, float(cfg["windowSeconds"])),
            "openSeconds": min(SHARED_MAX_OPEN_S, float(cfg["openSeconds"]))}


def split_key(key: str) -> tuple[str | None, str]:
    """``(project, host key)`` of a stored key; a key without ``[project]`` (older rows too) has None."""
    if key.startswith("[") and "] " in key:
        project, _, base = key[1:].partition("] ")
        return project, base
    return None, key


def shared_entries() -> frozenset[str]:
    """``FLOWTIDE_BREAKERS_SHARED``: hosts, ``host:port`` keys or ``connection:NAME`` whose breaker every
    project shares (the worker's configuration, set by the operator)."""
    return frozenset(e.strip().lower() for e in os.environ.get(SHARED_ENV, "").split(",") if e.strip())


def _shared(base: str, connection: str | None) -> bool:
    entries = shared_entries()
    if not entries:
        return False
    host = urlsplit(base if "://" in base else f"//{base}").hostname if ":" in base else base
    return bool({base.lower(), (host or "").lower()} & entries) or (
        connection is not None and f"connection:{connection.lower()}" in entries)


def _base_key(kind: str, inp: dict[str, Any]) -> str:
    for name in ("connection", "url", "baseUrl", "host"):
        value = inp.get(name)
        if isinstance(value, str) and value:
            parts = urlsplit(value if "://" in value else f"//{value}")
            host = parts.hostname or ""
            port = f":{parts.port}" if _port(parts) else ""
            if name == "connection":
                return f"{parts.scheme}://{host}{port}" if host else f"{parts.scheme}:{parts.path[:200]}"
            return f"{host}{port}" if host else kind
    return kind


def _port(parts: Any) -> int | None:
    try:
        return int(parts.port) if parts.port else None
    except ValueError:
        return None


def _row(conn: sqlite3.Connection, key: str) -> dict[str, Any] | None:
    found: sqlite3.Row | None = conn.execute("SELECT * FROM breakers WHERE key = ?", (key,)).fetchone()
    return None if found is None else decoded(found)



def _write(conn: sqlite3.Connection, key: str, row: dict[str, Any]) -> None:
    conn.execute("INSERT OR REPLACE INTO breakers VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 (key, row["state"], json.dumps(row["failures"]), row["open_until"], row["trial_until"],
                  row["opened"], json.dumps(row["config"]), time.time()))


def enter(key: str, cfg: dict[str, Any], trial_timeout_s: float) -> Ticket:
    """Let a call through (closed, or as the half-open trial) or raise ``CIRCUIT_OPEN``."""
    shared = database()
    if shared is not None:
        return shared.enter(key, cfg, trial_timeout_s)
    now = time.time()
    with _connect() as conn:
        conn.execute("BEGIN IMMEDIATE")  # one process at a time decides: exactly one trial per half-open
        row = _row(conn, key)
        write, ticket, wait = entered(row, key, cfg, now, trial_timeout_s)
        if write is not None:
            _write(conn, key, write)
        conn.execute("COMMIT")
    if ticket is None:
        raise refusal(key, row["state"] if row else "open", wait)
    return ticket


def leave(ticket: Ticket, code: str | None) -> None:
    """Note the outcome of a call let through: ``code`` is its failure code, None on success."""
    if not needs_writing(ticket, code):
        return
    shared = database()
    if shared is not None:
        shared.leave(ticket, code)
        return
    with _connect() as conn:
        conn.execute("BEGIN IMMEDIATE")
        write = left(_row(conn, ticket.key), ticket, code, time.time())
        if write is not None:
            _write(conn, ticket.key, write)
        conn.execute("COMMIT")


def database() -> SharedBreakers | None:
    """The database's breakers when ``FLOWTIDE_DATABASE_URL`` is set (unless ``FLOWTIDE_BREAKERS_DB`` names a
    file: the operator keeps them per machine), else None: this machine's SQLite file."""
    url = os.environ.get("FLOWTIDE_DATABASE_URL")
    if not url or os.environ.get("FLOWTIDE_BREAKERS_DB"):
        return None
    return _database_breakers(url)


@functools.lru_cache(maxsize=4)
def _database_breakers(url: str) -> SharedBreakers:
    from flowtide.store.breakers_shared import SharedBreakers
    from flowtide.store.database import Store
    return SharedBreakers(Store(url))  # one engine (and pool) per database and worker process


def where() -> str:
    """Where the breakers are kept, for messages (the database URL without its password, or the file)."""
    shared = database()
    return shared.where if shared is not None else str(db_path())


_UNUSABLE = (sqlite3.Error, OSError, SQLAlchemyError)


async def enter_async(key: str, cfg: dict[str, Any], trial_timeout_s: float) -> Ticket | None:
    """``enter`` off the event loop (SQLite may wait for another process's lock). A breaker store that
    cannot be used lets the call through (None): a broken breaker must not fail every step."""
    try:
        return await asyncio.to_thread(enter, key, cfg, trial_timeout_s)
    except _UNUSABLE as exc:
        log.warning("circuit breaker store unusable: the call goes through", key=key, store=where(),
                    error=str(exc)[:300])
        return None


async def leave_async(ticket: Ticket | None, code: str | None) -> None:
    """``leave`` off the event loop; nothing for a call without a breaker (or an unusable store)."""
    if ticket is None or not needs_writing(ticket, code):
        return
    try:
        await asyncio.to_thread(leave, ticket, code)
    except _UNUSABLE as exc:
        log.warning("circuit breaker store unusable: outcome not noted", key=ticket.key, error=str(exc)[:300])


def _rows() -> list[dict[str, Any]]:
    shared = database()
    if shared is not None:
        return shared.rows()
    if not db_path().exists():
        return []
    with _connect() as conn:
        return [decoded(r) for r in conn.execute("SELECT * FROM breakers ORDER BY key").fetchall()]


def list_breakers() -> list[dict[str, Any]]:
    """Every breaker with its state (``flowtide breakers list``): the deployment's, or this machine's."""
    now = time.time()
    out = []
    for r in _rows():
        cfg = r["config"]
        recent = [t for t in r["failures"] if t > now - float(cfg.get("windowSeconds") or 0)]
        project, _ = split_key(r["key"])
        out.append({"key": r["key"], "project": project, "state": r["state"], "recentFailures": len(recent),
                    "timesOpened": r["opened"],
                    "openForS": round(max(0.0, r["open_until"] - now), 1) if r["state"] == "open" else 0,
                    "config": cfg, "updatedAt": r["updated"]})
    return out


def reset_breaker(key: str) -> bool:
    """Close (forget) the breaker of ``key``; False when there is none."""
    shared = database()
    if shared is not None:
        return shared.delete(key)
    if not db_path().exists():
        return False
    with _connect() as conn:
        return conn.execute("DELETE FROM breakers WHERE key = ?", (key,)).rowcount > 0
