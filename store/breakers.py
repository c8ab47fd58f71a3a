"""Circuit breakers shared by every run and worker process of one machine, in a SQLite file.

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

Why SQLite (``FLOWTIDE_BREAKERS_DB``, default ``.flowtide/breakers.db`` next to the dev server's
database): every call reads the state, so it must be cheap and local; ``BEGIN IMMEDIATE`` makes
"claim the trial" atomic across worker processes; the file outlives worker restarts. A Temporal entity
workflow per key would share state across machines too, but would add a server round trip (and workflow
history) to every step call and a Temporal dependency to every activity; a breaker's state is soft (losing
it costs a few extra calls), so one machine's file was chosen. Workers on several machines each keep their
own breakers (each still stops calling a failing host); do not put the file on a network share.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import structlog

from flowtide.workflows.errors import StepFailure, classify

log = structlog.get_logger("flowtide.breakers")

DEFAULT_DB = ".flowtide/breakers.db"
SHARED_ENV = "FLOWTIDE_BREAKERS_SHARED"
HALF_OPEN_WAIT_S = 1.0  # while a trial call decides, the others retry this soon
COUNTED = frozenset({"transient", "rate-limit"})
SCHEMA = ("CREATE TABLE IF NOT EXISTS breakers (key TEXT PRIMARY KEY, state TEXT NOT NULL, failures TEXT NOT NULL, "
          "open_until REAL NOT NULL DEFAULT 0, trial_until REAL NOT NULL DEFAULT 0, opened INTEGER NOT NULL DEFAULT 0, "
          "config TEXT NOT NULL DEFAULT '{}', updated REAL NOT NULL)")


@dataclass
class Ticket:
    """A call the breaker let through: its key and config, and whether it is the half-open trial."""

    key: str
    config: dict[str, Any]
    trial: bool
    started: float


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


def _row(conn: sqlite3.Connection, key: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute("SELECT * FROM breakers WHERE key = ?", (key,)).fetchone()
    return row


def _write(conn: sqlite3.Connection, key: str, state: str, failures: list[float], cfg: dict[str, Any], *,
           open_until: float = 0, trial_until: float = 0, opened: int = 0) -> None:
    conn.execute("INSERT OR REPLACE INTO breakers VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                 (key, state, json.dumps(failures), open_until, trial_until, opened, json.dumps(cfg), time.time()))


def enter(key: str, cfg: dict[str, Any], trial_timeout_s: float) -> Ticket:
    """Let a call through (closed, or as the half-open trial) or raise ``CIRCUIT_OPEN``."""
    now = time.time()
    with _connect() as conn:
        conn.execute("BEGIN IMMEDIATE")  # one process at a time decides: exactly one trial per half-open
        row = _row(conn, key)
        if row is None or row["state"] == "closed":
            conn.execute("COMMIT")
            return Ticket(key, cfg, trial=False, started=now)
        if row["state"] == "open" and now < row["open_until"]:
            wait = row["open_until"] - now
        elif row["state"] == "half-open" and now < row["trial_until"]:
            wait = HALF_OPEN_WAIT_S
        else:  # open time over (or the last trial never reported): this call is the trial
            _write(conn, key, "half-open", json.loads(row["failures"]), cfg, open_until=row["open_until"],
                   trial_until=now + trial_timeout_s, opened=row["opened"])
            conn.execute("COMMIT")
            return Ticket(key, cfg, trial=True, started=now)
        conn.execute("COMMIT")
    raise StepFailure("CIRCUIT_OPEN", f"the circuit breaker of '{key}' is {row['state']}: the call was not made",
                      detail=f"retry in {wait:.1f}s; `flowtide breakers reset {key}` closes it",
                      retry_after_s=max(0.1, wait))


def leave(ticket: Ticket, code: str | None) -> None:
    """Note the outcome of a call let through: ``code`` is its failure code, None on success."""
    now = time.time()
    counted = code is not None and classify(code) in COUNTED
    cfg = ticket.config
    with _connect() as conn:
        conn.execute("BEGIN IMMEDIATE")
        row = _row(conn, ticket.key)
        state = row["state"] if row is not None else "closed"
        failures = json.loads(row["failures"]) if row is not None else []
        opened = int(row["opened"]) if row is not None else 0
        if ticket.trial and state == "half-open":
            if counted:
                _write(conn, ticket.key, "open", failures, cfg, open_until=now + float(cfg["openSeconds"]),
                       opened=opened + 1)
            else:  # the provider answered (even a 4xx is an answer): close
                _write(conn, ticket.key, "closed", [], cfg, opened=opened)
        elif counted and state == "closed":
            failures = [t for t in failures if t > now - float(cfg["windowSeconds"])] + [now]
            if len(failures) >= int(cfg["failureThreshold"]):
                _write(conn, ticket.key, "open", failures, cfg, open_until=now + float(cfg["openSeconds"]),
                       opened=opened + 1)
            else:
                _write(conn, ticket.key, "closed", failures, cfg, opened=opened)
        conn.execute("COMMIT")


async def enter_async(key: str, cfg: dict[str, Any], trial_timeout_s: float) -> Ticket | None:
    """``enter`` off the event loop (SQLite may wait for another process's lock). A breaker store that
    cannot be used lets the call through (None): a broken breaker must not fail every step."""
    try:
        return await asyncio.to_thread(enter, key, cfg, trial_timeout_s)
    except (sqlite3.Error, OSError) as exc:
        log.warning("circuit breaker store unusable: the call goes through", key=key, db=str(db_path()),
                    error=str(exc))
        return None


async def leave_async(ticket: Ticket | None, code: str | None) -> None:
    """``leave`` off the event loop; nothing for a call without a breaker (or an unusable store)."""
    if ticket is None:
        return
    try:
        await asyncio.to_thread(leave, ticket, code)
    except (sqlite3.Error, OSError) as exc:
        log.warning("circuit breaker store unusable: outcome not noted", key=ticket.key, error=str(exc))


def list_breakers() -> list[dict[str, Any]]:
    """Every breaker of this machine with its state (``flowtide breakers list``)."""
    if not db_path().exists():
        return []
    now = time.time()
    with _connect() as conn:
        rows = conn.execute("SELECT * FROM breakers ORDER BY key").fetchall()
    out = []
    for r in rows:
        cfg = json.loads(r["config"])
        recent = [t for t in json.loads(r["failures"]) if t > now - float(cfg.get("windowSeconds") or 0)]
        project, _ = split_key(r["key"])
        out.append({"key": r["key"], "project": project, "state": r["state"], "recentFailures": len(recent),
                    "timesOpened": r["opened"],
                    "openForS": round(max(0.0, r["open_until"] - now), 1) if r["state"] == "open" else 0,
                    "config": cfg, "updatedAt": r["updated"]})
    return out


def reset_breaker(key: str) -> bool:
    """Close (forget) the breaker of ``key``; False when there is none."""
    if not db_path().exists():
        return False
    with _connect() as conn:
        return conn.execute("DELETE FROM breakers WHERE key = ?", (key,)).rowcount > 0
