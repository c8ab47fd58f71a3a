"""What the service's replicas share through the database: page sessions, rate-limit buckets, cancel watches.

Every function is one short transaction that is correct with several processes on one database (SQLite or
PostgreSQL alike): a token bucket is spent by one conditional ``UPDATE`` (the row lock orders concurrent
spenders), a cancel watch is claimed by one conditional ``UPDATE`` (exactly one replica gets each lease).
Nothing here holds a key: a session row keeps the hash of its id and the id of the key it signed in with.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError

from flowtide.store.database import Store, now, utc
from flowtide.store.schema import api_keys, cancel_watches, rate_buckets, service_secrets, web_sessions

SIGN_IN_LOCK = 0x466C6F7753657373  # PostgreSQL advisory lock id: one sign-in at a time on a cluster's replicas
BUCKET_IDLE_S = 3600.0  # a bucket untouched this long is full again for any sane rate: its row is dropped


class SessionsFull(Exception):  # noqa: N818 - a refusal the service answers with 429
    """Every place of the session table holds another key's live session."""


@dataclass(frozen=True)
class SessionRow:
    """A live session and the active key it signed in with (never the key itself)."""

    key_id: str
    key_name: str
    project: str
    role: str
    csrf: str


def session_hash(sid: str) -> str:
    """What the table keeps of a session id: its sha256 (the row alone signs no browser in)."""
    return hashlib.sha256(sid.encode()).hexdigest()


def create_session(store: Store, key_id: str, ttl_s: float, max_sessions: int, per_key: int) -> str:
    """A new session of ``key_id``; returns its id. The key's own oldest sessions make room for it (at most
    ``per_key``); a table of ``max_sessions`` live sessions refuses it rather than evict another key's.

    Raises:
        SessionsFull: the table is full of other keys' live sessions.
    """
    at = now()
    with store.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # the caps are counted, then kept: two replicas counting at once would both find room. Sign-ins are
            # rare; one at a time (until commit) keeps both caps exact. SQLite's first write below does the same.
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SIGN_IN_LOCK})
        conn.execute(delete(web_sessions).where(web_sessions.c.expires_at < at))
        own = list(conn.execute(select(web_sessions.c.id_hash).where(web_sessions.c.key_id == key_id)
                                .order_by(web_sessions.c.created_at)).scalars())
        total = int(conn.execute(select(func.count()).select_from(web_sessions)).scalar() or 0)
        excess = len(own) - (per_key - 1)  # to stay within its cap with the new one
        if own and total - max(0, excess) >= max_sessions:
            excess = max(excess, 1)  # the table is full: the key may still replace its own oldest
        gone = own[:max(0, excess)]
        if gone:
            conn.execute(delete(web_sessions).where(web_sessions.c.id_hash.in_(gone)))
        if total - len(gone) >= max_sessions:
            raise SessionsFull
        sid = secrets.token_urlsafe(32)
        conn.execute(insert(web_sessions).values(id_hash=session_hash(sid), key_id=key_id,
                                                 csrf=secrets.token_urlsafe(24), created_at=at,
                                                 expires_at=at + timedelta(seconds=ttl_s)))
    return sid


def session(store: Store, sid: str) -> SessionRow | None:
    """The live session ``sid`` with its key, or None (unknown, expired, or its key revoked: then dropped)."""
    query = select(web_sessions.c.csrf, web_sessions.c.expires_at, api_keys.c.id, api_keys.c.name,
                   api_keys.c.project_id, api_keys.c.role, api_keys.c.revoked_at).join(
        api_keys, api_keys.c.id == web_sessions.c.key_id).where(web_sessions.c.id_hash == session_hash(sid))
    with store.engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    if row is None:
        return None
    if row["revoked_at"] is not None or utc(row["expires_at"]) < now():
        drop_session(store, sid)
        return None
    return SessionRow(key_id=row["id"], key_name=row["name"], project=row["project_id"], role=row["role"],
                      csrf=row["csrf"])


def drop_session(store: Store, sid: str) -> None:
    """Forget session ``sid`` (signed out, expired, or its key stopped working)."""
    with store.engine.begin() as conn:
        conn.execute(delete(web_sessions).where(web_sessions.c.id_hash == session_hash(sid)))


# the refill of a bucket, computed by the database in the statement that spends it (one row lock)
_AVAILABLE = ("CASE WHEN tokens + (CASE WHEN :t > updated THEN :t - updated ELSE 0 END) * :rate > :burst "
              "THEN :burst ELSE tokens + (CASE WHEN :t > updated THEN :t - updated ELSE 0 END) * :rate END")
_SPEND = text(f"UPDATE rate_buckets SET tokens = {_AVAILABLE} - :n, updated = :t "
              f"WHERE bucket = :bucket AND {_AVAILABLE} >= :n")
_PEEK = text(f"SELECT {_AVAILABLE} FROM rate_buckets WHERE bucket = :bucket")


def spend(store: Store, bucket: str, n: int, rate: float, burst: float) -> float:
    """Spend ``n`` tokens of ``bucket`` (refilled at ``rate`` per second up to ``burst``), all or none.

    Returns:
        0.0 when spent, else the tokens the bucket holds now (fewer than ``n``).
    """
    args: dict[str, Any] = {"bucket": bucket, "n": float(n), "rate": float(rate), "burst": float(burst)}
    for _ in range(5):
        args["t"] = time.time()
        with store.engine.begin() as conn:
            if conn.execute(_SPEND, args).rowcount:
                return 0.0
            held = conn.execute(_PEEK, args).scalar()
        if held is not None:
            return max(0.0, float(held))
        if burst < n:
            return float(burst)
        try:  # a bucket seen for the first time starts full
            with store.engine.begin() as conn:
                conn.execute(delete(rate_buckets).where(rate_buckets.c.updated < args["t"] - BUCKET_IDLE_S))
                conn.execute(insert(rate_buckets).values(bucket=bucket, tokens=burst - n, updated=args["t"]))
            return 0.0
        except IntegrityError:
            continue  # another replica made it first: spend from it
    return 0.0  # the bucket kept vanishing under us (purged each time): let the request through


def shared_secret(store: Store, name: str) -> bytes:
    """The secret ``name`` every replica uses alike, made by the first replica that asks (32 random bytes)."""
    with store.engine.connect() as conn:
        found = conn.execute(select(service_secrets.c.value).where(service_secrets.c.name == name)).scalar()
    if found is None:
        try:
            with store.engine.begin() as conn:
                conn.execute(insert(service_secrets).values(name=name, value=secrets.token_hex(32)))
        except IntegrityError:
            pass  # another replica made it: use theirs
        with store.engine.connect() as conn:
            found = conn.execute(select(service_secrets.c.value).where(service_secrets.c.name == name)).scalar()
    return bytes.fromhex(str(found))


# ---- cancel watches ---------------------------------------------------------------------------------
def watch_cancel(store: Store, workflow_id: str, run_id: str, due: datetime, lease_until: datetime) -> None:
    """Note a cancelled run to settle by ``due``, leased by the caller until ``lease_until``."""
    with store.engine.begin() as conn:
        conn.execute(delete(cancel_watches).where(cancel_watches.c.workflow_id == workflow_id))
        conn.execute(insert(cancel_watches).values(workflow_id=workflow_id, run_id=run_id, due_at=due,
                                                   claimed_until=lease_until))


def claim_cancel_watches(store: Store, lease_until: datetime, limit: int = 20) -> list[tuple[str, str, datetime]]:
    """Claim watches whose lease ran out (their replica died or gave up): ``(workflow id, run id, due)``,
    each claimed by exactly one caller until ``lease_until``."""
    at = now()
    with store.engine.connect() as conn:
        rows = conn.execute(select(cancel_watches).where(cancel_watches.c.claimed_until < at)
                            .order_by(cancel_watches.c.due_at).limit(limit)).mappings().all()
    claimed = []
    for r in rows:
        with store.engine.begin() as conn:
            won = conn.execute(update(cancel_watches).where(
                cancel_watches.c.workflow_id == r["workflow_id"], cancel_watches.c.claimed_until < at)
                .values(claimed_until=lease_until)).rowcount
        if won:
            claimed.append((str(r["workflow_id"]), str(r["run_id"]), utc(r["due_at"])))
    return claimed


def forget_cancel_watch(store: Store, workflow_id: str, run_id: str) -> None:
    """The watch of this run is done (the run ended, was terminated, or is cancelling its steps)."""
    with store.engine.begin() as conn:
        conn.execute(delete(cancel_watches).where(cancel_watches.c.workflow_id == workflow_id,
                                                  cancel_watches.c.run_id == run_id))
