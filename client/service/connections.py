"""Connections in the service database: add, reconnect, remove, list, read for a worker, and their state.

A connection's non-secret settings are kept as JSON; its credential values (token, password, API key value,
client secret, refresh and access tokens) are sealed together with ``FLOWTIDE_SECRET_KEY`` (``secretbox``).
Names form one namespace per database: a step names a connection, and the CLI has no project.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection as SqlConnection
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from flowtide.client.service.connection_kinds import FIELDS, KINDS, SECRET_FIELDS
from flowtide.client.service.schema import connections
from flowtide.client.service.secretbox import seal, unseal
from flowtide.client.service.store import Store, StoreError, now, utc

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,99}$")


@dataclass
class Conn:
    """One connection as a worker uses it: settings and the opened secret values."""

    name: str
    kind: str
    config: dict[str, Any]
    secret: dict[str, Any]
    state: str = "ok"
    reason: str | None = None
    expires_at: datetime | None = None

    def secret_values(self) -> list[str]:
        """Every credential value, for redaction."""
        return [str(v) for v in self.secret.values() if isinstance(v, str) and v]


def check_name(name: str) -> None:
    """Raises StoreError for a name that is not 1-100 letters, digits, '_', '.', '-' (first a letter)."""
    if not isinstance(name, str) or not NAME.match(name):
        raise StoreError(f"connection name {name!r}: 1-100 letters, digits, '_', '.', '-', first a letter")


def split_values(kind: str, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(config, secret)`` of a complete set of ``values`` for ``kind``; StoreError names what is wrong."""
    if kind not in FIELDS:
        raise StoreError(f"connection kind {kind!r}: one of {', '.join(KINDS)}")
    required, optional = FIELDS[kind]
    missing = [f for f in required if not values.get(f)]
    if missing:
        raise StoreError(f"a {kind} connection needs {', '.join(missing)}")
    unknown = sorted(k for k, v in values.items() if v is not None and k not in required + optional)
    if unknown:
        raise StoreError(f"a {kind} connection has no {', '.join(unknown)}")
    if isinstance(values.get("scopes"), str):
        values = dict(values, scopes=values["scopes"].split())
    wrong = [k for k, v in values.items() if v is not None and not (
        isinstance(v, str) or (k == "scopes" and isinstance(v, list) and all(isinstance(s, str) for s in v)))]
    if wrong:
        raise StoreError(f"{', '.join(sorted(wrong))}: must be a string (scopes: a list of strings)")
    if kind == "oauth2" and not str(values["tokenUrl"]).startswith(("https://", "http://")):
        raise StoreError("tokenUrl must be an http(s) URL")
    config: dict[str, Any] = {}
    secret: dict[str, Any] = {}
    for key in required + optional:
        if values.get(key) is not None:
            (secret if key in SECRET_FIELDS else config)[key] = values[key]
    if kind == "oauth2":
        config["grant"] = "refresh_token" if secret.get("refreshToken") else "client_credentials"
        config["scopes"] = [str(s) for s in config.get("scopes") or []]
    return config, secret


def _public(row: Any) -> dict[str, Any]:
    return {"name": row["name"], "kind": row["kind"], "state": row["state"], "reason": row["reason"],
            "project": row["project_id"], "config": json.loads(row["config"]),
            "updatedAt": utc(row["updated_at"]).isoformat(), "stateAt": utc(row["state_at"]).isoformat(),
            "tokenExpiresAt": utc(row["expires_at"]).isoformat() if row["expires_at"] else None}


def _scope(query: Any, project: str | None) -> Any:
    # An API caller (and a run) sees the database-wide connections (made with the CLI) and its own project's;
    # "" is no project: the database-wide ones only; None (the admin CLI) sees every connection.
    if project is None:
        return query
    if project == "":
        return query.where(connections.c.project_id.is_(None))
    return query.where((connections.c.project_id.is_(None)) | (connections.c.project_id == project))


class Connections:
    """The connections of one service database."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, name: str, kind: str, values: dict[str, Any], project: str | None = None) -> dict[str, Any]:
        """Create a connection (state ``ok``); StoreError when the name is taken or the values are incomplete."""
        check_name(name)
        config, secret = split_values(kind, values)
        at = now()
        try:
            with self.store.engine.begin() as conn:
                conn.execute(insert(connections).values(
                    name=name, project_id=project, kind=kind, config=json.dumps(config), secret=seal(name, secret),
                    state="ok", reason=None, expires_at=None, created_at=at, updated_at=at, state_at=at))
        except IntegrityError:
            raise StoreError(f"connection '{name}' exists already (flowtide connections reconnect {name})") from None
        return self.show(name) or {}

    def reconnect(self, name: str, values: dict[str, Any], kind: str | None = None,
                  project: str | None = None) -> dict[str, Any]:
        """New credentials over the old ones (flags not given are kept); back to state ``ok``, token dropped."""
        old = self.get(name, project)
        if old is None:
            raise StoreError(f"no connection '{name}'")
        kind = kind or old.kind
        merged = {**old.config, **old.secret} if kind == old.kind else {}
        merged.pop("grant", None)
        merged.pop("accessToken", None)
        merged.update({k: v for k, v in values.items() if v is not None})
        config, secret = split_values(kind, merged)
        at = now()
        with self.store.engine.begin() as conn:
            conn.execute(update(connections).where(connections.c.name == name).values(
                kind=kind, config=json.dumps(config), secret=seal(name, secret), state="ok", reason=None,
                expires_at=None, updated_at=at, state_at=at))
        return self.show(name) or {}

    def remove(self, name: str, project: str | None = None) -> None:
        """Delete the connection; StoreError when there is none (within ``project``'s view)."""
        with self.store.engine.begin() as conn:
            done = conn.execute(_scope(delete(connections).where(connections.c.name == name), project)).rowcount
        if not done:
            raise StoreError(f"no connection '{name}'")

    def list(self, project: str | None = None) -> list[dict[str, Any]]:
        """Every connection without its secrets, by name."""
        with self.store.engine.connect() as conn:
            rows = conn.execute(_scope(select(connections), project).order_by(connections.c.name)).mappings().all()
        return [_public(r) for r in rows]

    def show(self, name: str, project: str | None = None) -> dict[str, Any] | None:
        """One connection without its secrets, or None."""
        with self.store.engine.connect() as conn:
            row = conn.execute(_scope(select(connections).where(connections.c.name == name), project)
                               ).mappings().first()
        return _public(row) if row else None

    def get(self, name: str, project: str | None = None, *, conn: SqlConnection | None = None,
            for_update: bool = False) -> Conn | None:
        """The connection with its opened secret, or None; ``for_update`` row-locks it on PostgreSQL."""
        query = _scope(select(connections).where(connections.c.name == name), project)
        if for_update and self.store.engine.dialect.name == "postgresql":
            query = query.with_for_update()
        if conn is None:
            with self.store.engine.connect() as own:
                row = own.execute(query).mappings().first()
        else:
            row = conn.execute(query).mappings().first()
        if row is None:
            return None
        return Conn(name=name, kind=row["kind"], config=json.loads(row["config"]), secret=unseal(name, row["secret"]),
                    state=row["state"], reason=row["reason"],
                    expires_at=utc(row["expires_at"]) if row["expires_at"] else None)

    def save_token(self, conn: SqlConnection, c: Conn, expires_at: datetime | None) -> None:
        """Store ``c.secret`` (with its new access token) and the expiry, inside the caller's transaction."""
        conn.execute(update(connections).where(connections.c.name == c.name).values(
            secret=seal(c.name, c.secret), expires_at=expires_at, updated_at=now()))

    def mark_error(self, name: str, reason: str, conn: SqlConnection | None = None) -> None:
        """Move the connection to state ``error`` with ``reason`` (a refused refresh: reauthorize)."""
        at = now()
        with contextlib.nullcontext(conn) if conn is not None else self.store.engine.begin() as db:
            db.execute(update(connections).where(connections.c.name == name).values(
                state="error", reason=reason[:2000], updated_at=at, state_at=at))


def connection_states(store: Store | None = None, project: str | None = None) -> list[dict[str, Any]]:
    """Name, kind, state, reason and times of every connection ``project`` can see (the runs page shows those
    in ``error`` as a reauthorization alert)."""
    return [{k: c[k] for k in ("name", "kind", "state", "reason", "stateAt", "updatedAt")}
            for c in Connections(store or Store()).list(project)]
