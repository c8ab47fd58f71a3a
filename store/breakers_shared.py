"""Circuit breakers in the service database (``FLOWTIDE_DATABASE_URL``): one row per key, shared by every worker
of a deployment, on any number of machines.

Every change is a compare-and-set on the row's ``version`` (``UPDATE ... WHERE key = ? AND version = ?``), and
a new row is an ``INSERT`` on the primary key: of two workers (or machines) racing to claim the half-open trial,
exactly one sees its ``UPDATE`` match, on PostgreSQL and SQLite alike, with no lock held across a round trip.
A success in the closed state writes nothing, and a worker reads a closed breaker's row at most once per
``CLOSED_READ_S`` (a round trip per step would cost more CPU than the breaker saves): a breaker another worker
opens stops this worker's calls within that second; what this worker writes it sees at once, and every state
but closed (open, half-open: the trial's claim) is read afresh on every call.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from flowtide.store.breaker_logic import Ticket, decoded, entered, left, refusal
from flowtide.store.database import Store
from flowtide.store.schema import breaker_states as table

TRIES = 8  # compare-and-set rounds before giving up (each lost round means another worker just wrote the row)
CLOSED_READ_S = 1.0  # how long a worker trusts a closed row it read (or wrote)
MAX_CACHED = 10_000  # keys whose last row a worker remembers


class SharedBreakers:
    """The breakers of one database."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.where = store.engine.url.render_as_string(hide_password=True)
        self._closed: dict[str, tuple[float, dict[str, Any] | None]] = {}  # key -> (read at, closed row or None)

    def _read(self, key: str, fresh: bool = False) -> dict[str, Any] | None:
        seen = self._closed.get(key)
        if seen is not None and not fresh and time.monotonic() - seen[0] < CLOSED_READ_S:
            return seen[1]
        with self.store.engine.connect() as conn:
            found = conn.execute(select(table).where(table.c.key == key)).mappings().first()
        row = None if found is None else decoded(found)
        self._remember(key, row)
        return row

    def _remember(self, key: str, row: dict[str, Any] | None) -> None:
        if row is not None and row["state"] != "closed":
            self._closed.pop(key, None)
            return
        if len(self._closed) >= MAX_CACHED:
            self._closed.clear()
        self._closed[key] = (time.monotonic(), row)

    def _put(self, key: str, old: dict[str, Any] | None, row: dict[str, Any]) -> bool:
        """Write ``row`` if the stored row is still ``old``; False when another writer came first."""
        values = {"state": row["state"], "failures": json.dumps(row["failures"]), "open_until": row["open_until"],
                  "trial_until": row["trial_until"], "opened": row["opened"], "config": json.dumps(row["config"]),
                  "updated": time.time()}
        try:
            with self.store.engine.begin() as conn:
                if old is None:
                    conn.execute(insert(table).values(key=key, version=1, **values))
                    version = 1
                else:
                    version = old["version"] + 1
                    if not conn.execute(update(table).where(table.c.key == key, table.c.version == old["version"])
                                        .values(version=version, **values)).rowcount:
                        return False
        except IntegrityError:
            return False  # another worker made the row first
        self._remember(key, {**row, "version": version})
        return True

    def enter(self, key: str, cfg: dict[str, Any], trial_timeout_s: float) -> Ticket:
        """Let a call through (closed, or as the one half-open trial) or raise ``CIRCUIT_OPEN``."""
        for attempt in range(TRIES):
            row = self._read(key, fresh=attempt > 0)
            write, ticket, wait = entered(row, key, cfg, time.time(), trial_timeout_s)
            if ticket is None:
                raise refusal(key, row["state"] if row else "open", wait)
            if write is None or self._put(key, row, write):
                return ticket
        raise refusal(key, "half-open", 1.0)  # others kept winning the row: one of them is the trial

    def leave(self, ticket: Ticket, code: str | None) -> None:
        """Note the outcome of a call let through (``code``: its failure code, None on success)."""
        for _ in range(TRIES):
            row = self._read(ticket.key, fresh=True)  # a write starts from the stored row
            write = left(row, ticket, code, time.time())
            if write is None or self._put(ticket.key, row, write):
                return

    def rows(self) -> list[dict[str, Any]]:
        """Every breaker's row, by key."""
        with self.store.engine.connect() as conn:
            return [decoded(r) for r in conn.execute(select(table).order_by(table.c.key)).mappings()]

    def delete(self, key: str) -> bool:
        """Forget the breaker of ``key`` (closed); False when there is none."""
        self._closed.pop(key, None)
        with self.store.engine.begin() as conn:
            return bool(conn.execute(delete(table).where(table.c.key == key)).rowcount)
